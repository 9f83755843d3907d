package sector

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Twofish with SIMD (AVX2, eight blocks per register; AVX-512, sixteen) needs the key
// schedule in a form x/crypto/twofish does not export: the four key-dependent S-boxes with
// the MDS matrix folded in (g(X) = s[0][X₀] ⊕ s[1][X₁] ⊕ s[2][X₂] ⊕ s[3][X₃], X_i the bytes
// of X), the same S-boxes as bytes before the matrix, and the 40 subkeys. twofishKey builds
// them from the specification (Schneier et al., "Twofish: A 128-Bit Block Cipher", 1998):
// the AVX2 code gathers words from s with VPGATHERDD, the AVX-512 code looks bytes up in b
// with VPERMT2B and applies the matrix itself (_asm/twofish.go). The same schedule is the
// portable cipher (Encrypt, Decrypt), so that Wipe clears every Twofish table a Cipher built;
// x/crypto/twofish is only the reference the tests compare against.
type twofishKey struct {
	s [4][256]uint32 // offset 0: the assembly gathers from s[i] at 1024·i
	k [40]uint32     // offset 4096: K0…K3 input whitening, K4…K7 output, K8… the rounds
	_ [24]uint32
	b [4][256]byte // offset 4352: the S-boxes before the MDS matrix, for AVX-512 VBMI
}

// twofishQ are the fixed permutations q0 and q1, built from their 4-bit t-tables (the
// specification's section 4.3.5).
var twofishQ = func() (q [2][256]byte) {
	t := [2][4][16]byte{
		{
			{0x8, 0x1, 0x7, 0xD, 0x6, 0xF, 0x3, 0x2, 0x0, 0xB, 0x5, 0x9, 0xE, 0xC, 0xA, 0x4},
			{0xE, 0xC, 0xB, 0x8, 0x1, 0x2, 0x3, 0x5, 0xF, 0x4, 0xA, 0x6, 0x7, 0x0, 0x9, 0xD},
			{0xB, 0xA, 0x5, 0xE, 0x6, 0xD, 0x9, 0x0, 0xC, 0x8, 0xF, 0x3, 0x2, 0x4, 0x7, 0x1},
			{0xD, 0x7, 0xF, 0x4, 0x1, 0x2, 0x6, 0xE, 0x9, 0xB, 0x3, 0x0, 0x8, 0x5, 0xC, 0xA},
		},
		{
			{0x2, 0x8, 0xB, 0xD, 0xF, 0x7, 0x6, 0xE, 0x3, 0x1, 0x9, 0x4, 0x0, 0xA, 0xC, 0x5},
			{0x1, 0xE, 0x2, 0xB, 0x4, 0xC, 0x3, 0x7, 0x6, 0xD, 0xA, 0x5, 0xF, 0x9, 0x0, 0x8},
			{0x4, 0xC, 0x7, 0x5, 0x1, 0x6, 0x9, 0xA, 0x0, 0xE, 0xD, 0x8, 0x2, 0xB, 0x3, 0xF},
			{0xB, 0x9, 0x5, 0x1, 0xC, 0x3, 0xD, 0xE, 0x6, 0x4, 0x7, 0xF, 0x2, 0x0, 0x8, 0xA},
		},
	}
	ror4 := func(x byte) byte { return (x>>1 | x<<3) & 15 }
	for i := range q {
		for x := 0; x < 256; x++ {
			a, b := byte(x>>4), byte(x&15)
			a, b = a^b, a^ror4(b)^(a<<3&15)
			a, b = t[i][0][a], t[i][1][b]
			a, b = a^b, a^ror4(b)^(a<<3&15)
			a, b = t[i][2][a], t[i][3][b]
			q[i][x] = b<<4 | a
		}
	}
	return q
}()

// twofishGFMul multiplies in GF(2⁸) modulo poly (0x169 for the MDS matrix, 0x14D for RS).
func twofishGFMul(a, b byte, poly uint) byte {
	var p uint
	x := uint(a)
	for ; b != 0; b >>= 1 {
		if b&1 != 0 {
			p ^= x
		}
		x <<= 1
		if x&0x100 != 0 {
			x ^= poly
		}
	}
	return byte(p)
}

var twofishMDS = [4][4]byte{
	{0x01, 0xEF, 0x5B, 0x5B},
	{0x5B, 0xEF, 0xEF, 0x01},
	{0xEF, 0x5B, 0x01, 0xEF},
	{0xEF, 0x01, 0xEF, 0x5B},
}

var twofishRS = [4][8]byte{
	{0x01, 0xA4, 0x55, 0x87, 0x5A, 0x58, 0xDB, 0x9E},
	{0xA4, 0x56, 0x82, 0xF3, 0x1E, 0xC6, 0x68, 0xE5},
	{0x02, 0xA1, 0xFC, 0xC1, 0x47, 0xAE, 0x3D, 0x19},
	{0xA4, 0x55, 0x87, 0x5A, 0x58, 0xDB, 0x9E, 0x03},
}

// twofishQOrder[s][j] is which q byte j passes through before it is XORed with byte j of
// L_s in h (s = 3 only for 256-bit keys, s = 2 from 192 bits), twofishQLast the q after L_0.
var (
	twofishQOrder = [4][4]byte{{0, 0, 1, 1}, {0, 1, 0, 1}, {1, 1, 0, 0}, {1, 0, 0, 1}}
	twofishQLast  = [4]byte{1, 0, 1, 0}
)

// twofishSbox is byte j of h before the MDS matrix: y through the q chain keyed by l.
func twofishSbox(y byte, j int, l []uint32) byte {
	for s := len(l) - 1; s >= 0; s-- {
		y = twofishQ[twofishQOrder[s][j]][y] ^ byte(l[s]>>(8*j))
	}
	return twofishQ[twofishQLast[j]][y]
}

// twofishMDSColumn is column j of the MDS matrix times y, as a little-endian word.
func twofishMDSColumn(y byte, j int) uint32 {
	var w uint32
	for i := 0; i < 4; i++ {
		w |= uint32(twofishGFMul(twofishMDS[i][j], y, 0x169)) << (8 * i)
	}
	return w
}

func twofishH(x uint32, l []uint32) uint32 {
	var z uint32
	for j := 0; j < 4; j++ {
		z ^= twofishMDSColumn(twofishSbox(byte(x>>(8*j)), j, l), j)
	}
	return z
}

// newTwofishKey expands a 16-, 24- or 32-byte key (the sizes x/crypto/twofish accepts).
func newTwofishKey(key []byte) (*twofishKey, error) {
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("%w: twofish: %d-byte key", ErrInvalidKeySize, len(key))
	}
	k := len(key) / 8
	var me, mo, s [4]uint32
	for i := 0; i < k; i++ {
		me[i] = binary.LittleEndian.Uint32(key[8*i:])
		mo[i] = binary.LittleEndian.Uint32(key[8*i+4:])
		var w uint32
		for r := 0; r < 4; r++ {
			var b byte
			for c := 0; c < 8; c++ {
				b ^= twofishGFMul(twofishRS[r][c], key[8*i+c], 0x14D)
			}
			w |= uint32(b) << (8 * r)
		}
		// The S-box key list is S_{k−1}, …, S_0: L_s = S_{k−1−s}.
		s[k-1-i] = w
	}
	tk := new(twofishKey)
	const rho = 0x01010101
	for i := uint32(0); i < 20; i++ {
		a := twofishH(2*i*rho, me[:k])
		b := bits.RotateLeft32(twofishH((2*i+1)*rho, mo[:k]), 8)
		tk.k[2*i] = a + b
		tk.k[2*i+1] = bits.RotateLeft32(a+2*b, 9)
	}
	for j := 0; j < 4; j++ {
		for x := 0; x < 256; x++ {
			tk.b[j][x] = twofishSbox(byte(x), j, s[:k])
			tk.s[j][x] = twofishMDSColumn(tk.b[j][x], j)
		}
	}
	clear(me[:])
	clear(mo[:])
	clear(s[:])
	return tk, nil
}

func (t *twofishKey) wipe() {
	clear(t.s[:])
	clear(t.k[:])
	clear(t.b[:])
}

func (t *twofishKey) g(x uint32) uint32 {
	return t.s[0][byte(x)] ^ t.s[1][byte(x>>8)] ^ t.s[2][byte(x>>16)] ^ t.s[3][x>>24]
}

// Encrypt is one block with the tables (the assembly's algorithm, written once in Go): for
// batches too small for a SIMD step.
func (t *twofishKey) Encrypt(dst, src []byte) {
	a := binary.LittleEndian.Uint32(src[0:]) ^ t.k[0]
	b := binary.LittleEndian.Uint32(src[4:]) ^ t.k[1]
	c := binary.LittleEndian.Uint32(src[8:]) ^ t.k[2]
	d := binary.LittleEndian.Uint32(src[12:]) ^ t.k[3]
	for r := 0; r < 16; r += 2 {
		t0, t1 := t.g(a), t.g(bits.RotateLeft32(b, 8))
		c = bits.RotateLeft32(c^(t0+t1+t.k[2*r+8]), -1)
		d = bits.RotateLeft32(d, 1) ^ (t0 + 2*t1 + t.k[2*r+9])
		t0, t1 = t.g(c), t.g(bits.RotateLeft32(d, 8))
		a = bits.RotateLeft32(a^(t0+t1+t.k[2*r+10]), -1)
		b = bits.RotateLeft32(b, 1) ^ (t0 + 2*t1 + t.k[2*r+11])
	}
	binary.LittleEndian.PutUint32(dst[0:], c^t.k[4])
	binary.LittleEndian.PutUint32(dst[4:], d^t.k[5])
	binary.LittleEndian.PutUint32(dst[8:], a^t.k[6])
	binary.LittleEndian.PutUint32(dst[12:], b^t.k[7])
}

// Decrypt is Encrypt's inverse.
func (t *twofishKey) Decrypt(dst, src []byte) {
	c := binary.LittleEndian.Uint32(src[0:]) ^ t.k[4]
	d := binary.LittleEndian.Uint32(src[4:]) ^ t.k[5]
	a := binary.LittleEndian.Uint32(src[8:]) ^ t.k[6]
	b := binary.LittleEndian.Uint32(src[12:]) ^ t.k[7]
	for r := 14; r >= 0; r -= 2 {
		t0, t1 := t.g(c), t.g(bits.RotateLeft32(d, 8))
		a = bits.RotateLeft32(a, 1) ^ (t0 + t1 + t.k[2*r+10])
		b = bits.RotateLeft32(b^(t0+2*t1+t.k[2*r+11]), -1)
		t0, t1 = t.g(a), t.g(bits.RotateLeft32(b, 8))
		c = bits.RotateLeft32(c, 1) ^ (t0 + t1 + t.k[2*r+8])
		d = bits.RotateLeft32(d^(t0+2*t1+t.k[2*r+9]), -1)
	}
	binary.LittleEndian.PutUint32(dst[0:], a^t.k[0])
	binary.LittleEndian.PutUint32(dst[4:], b^t.k[1])
	binary.LittleEndian.PutUint32(dst[8:], c^t.k[2])
	binary.LittleEndian.PutUint32(dst[12:], d^t.k[3])
}

func (t *twofishKey) BlockSize() int { return 16 }

// twofishKeys are the SIMD schedules of one Cipher: the data key, the XTS tweak key and the
// ESSIV key (nil when the spec has none), the same objects as its block, tweak and essiv,
// held by concrete type.
type twofishKeys struct {
	data, tweak, essiv *twofishKey
}

func (t *twofishKeys) wipe() {
	for _, k := range []*twofishKey{t.data, t.tweak, t.essiv} {
		if k != nil {
			k.wipe()
		}
	}
}
