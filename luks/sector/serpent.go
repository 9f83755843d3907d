package sector

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math/bits"
)

//go:generate go run gen_tables.go

// serpentBlock is Serpent (Anderson, Biham, Knudsen, 1998) in the bitsliced form with the
// Linux kernel's byte order (crypto/serpent_generic.c): key, plaintext and ciphertext are
// read as little-endian 32-bit words. The NESSIE test vectors use the reversed byte order
// (the kernel's former "tnepres").
type serpentBlock struct {
	k [33][4]uint32
}

const serpentPhi = 0x9e3779b9

// newSerpent accepts keys of 0..32 bytes, like the kernel; short keys are padded with a
// single 1 bit and zeros (Serpent specification).
func newSerpent(key []byte) (cipher.Block, error) {
	if len(key) > 32 {
		return nil, fmt.Errorf("serpent: invalid key size %d", len(key))
	}
	var kb [32]byte
	copy(kb[:], key)
	if len(key) < 32 {
		kb[len(key)] = 1
	}
	var w [140]uint32 // w[0..7] = prekey w_{-8..-1}
	for i := 0; i < 8; i++ {
		w[i] = binary.LittleEndian.Uint32(kb[4*i:])
	}
	clear(kb[:])
	for i := 8; i < 140; i++ {
		w[i] = bits.RotateLeft32(w[i-8]^w[i-5]^w[i-3]^w[i-1]^serpentPhi^uint32(i-8), 11)
	}
	s := new(serpentBlock)
	for i := 0; i < 33; i++ {
		a, b, c, d := w[8+4*i], w[9+4*i], w[10+4*i], w[11+4*i]
		var y0, y1, y2, y3 uint32
		switch (3 - i) & 7 {
		case 0:
			y0, y1, y2, y3 = serpentS0(a, b, c, d)
		case 1:
			y0, y1, y2, y3 = serpentS1(a, b, c, d)
		case 2:
			y0, y1, y2, y3 = serpentS2(a, b, c, d)
		case 3:
			y0, y1, y2, y3 = serpentS3(a, b, c, d)
		case 4:
			y0, y1, y2, y3 = serpentS4(a, b, c, d)
		case 5:
			y0, y1, y2, y3 = serpentS5(a, b, c, d)
		case 6:
			y0, y1, y2, y3 = serpentS6(a, b, c, d)
		case 7:
			y0, y1, y2, y3 = serpentS7(a, b, c, d)
		}
		s.k[i] = [4]uint32{y0, y1, y2, y3}
	}
	clear(w[:])
	return s, nil
}

func (s *serpentBlock) BlockSize() int { return 16 }

func (s *serpentBlock) wipe() { clear(s.k[:]) }

func serpentLT(x0, x1, x2, x3 uint32) (uint32, uint32, uint32, uint32) {
	x0 = bits.RotateLeft32(x0, 13)
	x2 = bits.RotateLeft32(x2, 3)
	x1 ^= x0 ^ x2
	x3 ^= x2 ^ x0<<3
	x1 = bits.RotateLeft32(x1, 1)
	x3 = bits.RotateLeft32(x3, 7)
	x0 ^= x1 ^ x3
	x2 ^= x3 ^ x1<<7
	x0 = bits.RotateLeft32(x0, 5)
	x2 = bits.RotateLeft32(x2, 22)
	return x0, x1, x2, x3
}

func serpentILT(x0, x1, x2, x3 uint32) (uint32, uint32, uint32, uint32) {
	x2 = bits.RotateLeft32(x2, -22)
	x0 = bits.RotateLeft32(x0, -5)
	x2 ^= x3 ^ x1<<7
	x0 ^= x1 ^ x3
	x3 = bits.RotateLeft32(x3, -7)
	x1 = bits.RotateLeft32(x1, -1)
	x3 ^= x2 ^ x0<<3
	x1 ^= x0 ^ x2
	x2 = bits.RotateLeft32(x2, -3)
	x0 = bits.RotateLeft32(x0, -13)
	return x0, x1, x2, x3
}

func (s *serpentBlock) Encrypt(dst, src []byte) {
	if len(src) < 16 || len(dst) < 16 {
		panic("serpent: block too short")
	}
	x0 := binary.LittleEndian.Uint32(src[0:])
	x1 := binary.LittleEndian.Uint32(src[4:])
	x2 := binary.LittleEndian.Uint32(src[8:])
	x3 := binary.LittleEndian.Uint32(src[12:])
	for r := 0; r < 32; r += 8 {
		k := &s.k
		x0, x1, x2, x3 = serpentS0(x0^k[r][0], x1^k[r][1], x2^k[r][2], x3^k[r][3])
		x0, x1, x2, x3 = serpentLT(x0, x1, x2, x3)
		x0, x1, x2, x3 = serpentS1(x0^k[r+1][0], x1^k[r+1][1], x2^k[r+1][2], x3^k[r+1][3])
		x0, x1, x2, x3 = serpentLT(x0, x1, x2, x3)
		x0, x1, x2, x3 = serpentS2(x0^k[r+2][0], x1^k[r+2][1], x2^k[r+2][2], x3^k[r+2][3])
		x0, x1, x2, x3 = serpentLT(x0, x1, x2, x3)
		x0, x1, x2, x3 = serpentS3(x0^k[r+3][0], x1^k[r+3][1], x2^k[r+3][2], x3^k[r+3][3])
		x0, x1, x2, x3 = serpentLT(x0, x1, x2, x3)
		x0, x1, x2, x3 = serpentS4(x0^k[r+4][0], x1^k[r+4][1], x2^k[r+4][2], x3^k[r+4][3])
		x0, x1, x2, x3 = serpentLT(x0, x1, x2, x3)
		x0, x1, x2, x3 = serpentS5(x0^k[r+5][0], x1^k[r+5][1], x2^k[r+5][2], x3^k[r+5][3])
		x0, x1, x2, x3 = serpentLT(x0, x1, x2, x3)
		x0, x1, x2, x3 = serpentS6(x0^k[r+6][0], x1^k[r+6][1], x2^k[r+6][2], x3^k[r+6][3])
		x0, x1, x2, x3 = serpentLT(x0, x1, x2, x3)
		x0, x1, x2, x3 = serpentS7(x0^k[r+7][0], x1^k[r+7][1], x2^k[r+7][2], x3^k[r+7][3])
		if r+8 < 32 {
			x0, x1, x2, x3 = serpentLT(x0, x1, x2, x3)
		}
	}
	k := &s.k[32]
	binary.LittleEndian.PutUint32(dst[0:], x0^k[0])
	binary.LittleEndian.PutUint32(dst[4:], x1^k[1])
	binary.LittleEndian.PutUint32(dst[8:], x2^k[2])
	binary.LittleEndian.PutUint32(dst[12:], x3^k[3])
}

func (s *serpentBlock) Decrypt(dst, src []byte) {
	if len(src) < 16 || len(dst) < 16 {
		panic("serpent: block too short")
	}
	k := &s.k
	x0 := binary.LittleEndian.Uint32(src[0:]) ^ k[32][0]
	x1 := binary.LittleEndian.Uint32(src[4:]) ^ k[32][1]
	x2 := binary.LittleEndian.Uint32(src[8:]) ^ k[32][2]
	x3 := binary.LittleEndian.Uint32(src[12:]) ^ k[32][3]
	for r := 24; r >= 0; r -= 8 {
		if r+8 < 32 {
			x0, x1, x2, x3 = serpentILT(x0, x1, x2, x3)
		}
		x0, x1, x2, x3 = serpentSI7(x0, x1, x2, x3)
		x0, x1, x2, x3 = serpentILT(x0^k[r+7][0], x1^k[r+7][1], x2^k[r+7][2], x3^k[r+7][3])
		x0, x1, x2, x3 = serpentSI6(x0, x1, x2, x3)
		x0, x1, x2, x3 = serpentILT(x0^k[r+6][0], x1^k[r+6][1], x2^k[r+6][2], x3^k[r+6][3])
		x0, x1, x2, x3 = serpentSI5(x0, x1, x2, x3)
		x0, x1, x2, x3 = serpentILT(x0^k[r+5][0], x1^k[r+5][1], x2^k[r+5][2], x3^k[r+5][3])
		x0, x1, x2, x3 = serpentSI4(x0, x1, x2, x3)
		x0, x1, x2, x3 = serpentILT(x0^k[r+4][0], x1^k[r+4][1], x2^k[r+4][2], x3^k[r+4][3])
		x0, x1, x2, x3 = serpentSI3(x0, x1, x2, x3)
		x0, x1, x2, x3 = serpentILT(x0^k[r+3][0], x1^k[r+3][1], x2^k[r+3][2], x3^k[r+3][3])
		x0, x1, x2, x3 = serpentSI2(x0, x1, x2, x3)
		x0, x1, x2, x3 = serpentILT(x0^k[r+2][0], x1^k[r+2][1], x2^k[r+2][2], x3^k[r+2][3])
		x0, x1, x2, x3 = serpentSI1(x0, x1, x2, x3)
		x0, x1, x2, x3 = serpentILT(x0^k[r+1][0], x1^k[r+1][1], x2^k[r+1][2], x3^k[r+1][3])
		x0, x1, x2, x3 = serpentSI0(x0, x1, x2, x3)
		x0, x1, x2, x3 = x0^k[r][0], x1^k[r][1], x2^k[r][2], x3^k[r][3]
	}
	binary.LittleEndian.PutUint32(dst[0:], x0)
	binary.LittleEndian.PutUint32(dst[4:], x1)
	binary.LittleEndian.PutUint32(dst[8:], x2)
	binary.LittleEndian.PutUint32(dst[12:], x3)
}
