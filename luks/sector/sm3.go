package sector

import (
	"encoding/binary"
	"errors"
	"hash"
	"math/bits"
)

// SM3 is the hash of GB/T 32905-2016 (also ISO/IEC 10118-3:2018 and
// draft-sca-cfrg-sm3): a Merkle–Damgård hash over 512-bit blocks with a 256-bit state,
// padded as SHA-256 pads. cryptsetup reaches it through OpenSSL ("sm3", OID
// 1.2.156.10197.1.401) for PBKDF2, AF and digests; it is written here from the standard's
// text, sections 4 (constants and functions) and 5 (padding, expansion, compression).

const (
	sm3Size      = 32
	sm3BlockSize = 64
	sm3Magic     = "sm3\x01" // tags a marshalled state, as crypto/sha256 tags its own
	sm3Marshaled = len(sm3Magic) + 8*4 + sm3BlockSize + 8
)

// sm3IV is the initial value IV of section 4.1.
var sm3IV = [8]uint32{
	0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600,
	0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e,
}

// sm3T holds the constants T_j of section 4.2 already rotated left by j mod 32, as the
// compression function uses them.
var sm3T = func() (t [64]uint32) {
	for j := range t {
		c := uint32(0x79cc4519)
		if j >= 16 {
			c = 0x7a879d8a
		}
		t[j] = bits.RotateLeft32(c, j%32)
	}
	return t
}()

type sm3 struct {
	v   [8]uint32
	buf [sm3BlockSize]byte
	n   int    // bytes in buf
	len uint64 // bytes hashed so far
}

// newSM3 returns an SM3 hash.Hash. Its state can be saved and restored
// (encoding.BinaryMarshaler), which the PBKDF2 HMAC uses to keep no key pads in memory.
func newSM3() hash.Hash {
	d := new(sm3)
	d.Reset()
	return d
}

func (d *sm3) Reset() {
	d.v = sm3IV
	clear(d.buf[:])
	d.n, d.len = 0, 0
}

func (d *sm3) Size() int      { return sm3Size }
func (d *sm3) BlockSize() int { return sm3BlockSize }

func (d *sm3) Write(p []byte) (int, error) {
	n := len(p)
	d.len += uint64(n)
	if d.n > 0 {
		c := copy(d.buf[d.n:], p)
		d.n += c
		p = p[c:]
		if d.n < sm3BlockSize {
			return n, nil
		}
		sm3Blocks(&d.v, d.buf[:])
		d.n = 0
	}
	if full := len(p) &^ (sm3BlockSize - 1); full > 0 {
		sm3Blocks(&d.v, p[:full])
		p = p[full:]
	}
	d.n = copy(d.buf[:], p)
	return n, nil
}

// Sum pads as section 5.2 says (a 1 bit, zeros to 448 mod 512, the bit length as 64
// bits big-endian) on a copy, so the hash can go on.
func (d *sm3) Sum(in []byte) []byte {
	var out [sm3Size]byte
	if d.n < sm3BlockSize-8 {
		// The padding fits in the buffered block, the case of every PBKDF2 iteration
		// (a pad block then a 32-byte digest): one compression on a copy of the chaining
		// value, no Write.
		v := d.v
		var blk [sm3BlockSize]byte
		copy(blk[:], d.buf[:d.n])
		blk[d.n] = 0x80
		binary.BigEndian.PutUint64(blk[sm3BlockSize-8:], d.len<<3)
		sm3Blocks(&v, blk[:])
		clear(blk[:])
		for i, w := range v {
			binary.BigEndian.PutUint32(out[4*i:], w)
		}
		clear(v[:])
		return append(in, out[:]...)
	}
	c := *d
	var pad [sm3BlockSize + 8]byte
	pad[0] = 0x80
	k := (55 - int(c.len%64) + 64) % 64 // zero bytes after 0x80
	binary.BigEndian.PutUint64(pad[1+k:], c.len<<3)
	c.Write(pad[:1+k+8])
	for i, w := range c.v {
		binary.BigEndian.PutUint32(out[4*i:], w)
	}
	clear(c.buf[:])
	clear(c.v[:])
	return append(in, out[:]...)
}

// CopyState makes d a copy of src, another SM3, without allocating: the PBKDF2 HMAC
// restores its keyed inner and outer states this way on every iteration, where
// UnmarshalBinary would cost a parse. It reports false when src is not an SM3.
func (d *sm3) CopyState(src hash.Hash) bool {
	s, ok := src.(*sm3)
	if ok {
		*d = *s
	}
	return ok
}

func sm3P0(x uint32) uint32 { return x ^ bits.RotateLeft32(x, 9) ^ bits.RotateLeft32(x, 17) }
func sm3P1(x uint32) uint32 { return x ^ bits.RotateLeft32(x, 15) ^ bits.RotateLeft32(x, 23) }

// sm3Blocks runs the compression function CF (section 5.3) over whole 64-byte blocks.
func sm3Blocks(v *[8]uint32, p []byte) {
	var w [68]uint32
	for ; len(p) >= sm3BlockSize; p = p[sm3BlockSize:] {
		for j := 0; j < 16; j++ {
			w[j] = binary.BigEndian.Uint32(p[4*j:])
		}
		for j := 16; j < 68; j++ {
			w[j] = sm3P1(w[j-16]^w[j-9]^bits.RotateLeft32(w[j-3], 15)) ^ bits.RotateLeft32(w[j-13], 7) ^ w[j-6]
		}
		a, b, c, dd, e, f, g, h := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		// Rounds 0..15 use FF = GG = x^y^z, rounds 16..63 the majority and choice
		// functions; two loops keep the branch out of the round.
		for j := 0; j < 16; j++ {
			a12 := bits.RotateLeft32(a, 12)
			ss1 := bits.RotateLeft32(a12+e+sm3T[j], 7)
			tt1 := (a ^ b ^ c) + dd + (ss1 ^ a12) + (w[j] ^ w[j+4]) // W'_j = W_j xor W_{j+4}
			tt2 := (e ^ f ^ g) + h + ss1 + w[j]
			dd, c, b, a = c, bits.RotateLeft32(b, 9), a, tt1
			h, g, f, e = g, bits.RotateLeft32(f, 19), e, sm3P0(tt2)
		}
		for j := 16; j < 64; j++ {
			a12 := bits.RotateLeft32(a, 12)
			ss1 := bits.RotateLeft32(a12+e+sm3T[j], 7)
			tt1 := ((a & b) | (a & c) | (b & c)) + dd + (ss1 ^ a12) + (w[j] ^ w[j+4])
			tt2 := ((e & f) | (^e & g)) + h + ss1 + w[j]
			dd, c, b, a = c, bits.RotateLeft32(b, 9), a, tt1
			h, g, f, e = g, bits.RotateLeft32(f, 19), e, sm3P0(tt2)
		}
		v[0] ^= a
		v[1] ^= b
		v[2] ^= c
		v[3] ^= dd
		v[4] ^= e
		v[5] ^= f
		v[6] ^= g
		v[7] ^= h
	}
	clear(w[:])
}

func (d *sm3) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, sm3Marshaled)
	b = append(b, sm3Magic...)
	for _, x := range d.v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	b = append(b, d.buf[:d.n]...)
	b = append(b, make([]byte, sm3BlockSize-d.n)...)
	return binary.BigEndian.AppendUint64(b, d.len), nil
}

func (d *sm3) UnmarshalBinary(b []byte) error {
	if len(b) != sm3Marshaled || string(b[:len(sm3Magic)]) != sm3Magic {
		return errors.New("sector: invalid sm3 hash state")
	}
	b = b[len(sm3Magic):]
	for i := range d.v {
		d.v[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	b = b[32:]
	copy(d.buf[:], b[:sm3BlockSize])
	d.len = binary.BigEndian.Uint64(b[sm3BlockSize:])
	d.n = int(d.len % sm3BlockSize)
	return nil
}
