package sector

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"math/bits"
)

// lrwTweakKeySize is the length of LRW's tweak key K2, appended to the cipher key as in the
// kernel's crypto/lrw.c.
const lrwTweakKeySize = 16

// gf128 is an element of GF(2^128) in LRW's big-endian convention ("bbe" in the kernel's
// gf128mul.h): the 16 bytes read as a big-endian integer, bit 0 of the last byte is x^0,
// reduction polynomial x^128 + x^7 + x^2 + x + 1.
type gf128 struct{ hi, lo uint64 }

func gfLoad(b []byte) gf128 {
	return gf128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:16])}
}

func (a gf128) store(b []byte) {
	binary.BigEndian.PutUint64(b[:8], a.hi)
	binary.BigEndian.PutUint64(b[8:16], a.lo)
}

func (a gf128) mulX() gf128 {
	carry := a.hi >> 63
	return gf128{a.hi<<1 | a.lo>>63, a.lo<<1 ^ (0x87 & -carry)}
}

func gfMul(a, b gf128) gf128 {
	var r gf128
	for i := 127; i >= 0; i-- {
		r = r.mulX()
		var bit uint64
		if i >= 64 {
			bit = b.hi >> (i - 64) & 1
		} else {
			bit = b.lo >> i & 1
		}
		m := -bit
		r.hi ^= a.hi & m
		r.lo ^= a.lo & m
	}
	return r
}

// lrwKey holds K2 and K2⊗(2^(k+1)−1) for k = 0..127: going from block index I to I+1 flips
// the trailing ones of I and the zero above them, so T(I+1) = T(I) ⊕ K2⊗(2^(k+1)−1) with k the
// number of trailing ones (the kernel's "mulinc" table).
type lrwKey struct {
	k2     gf128
	mulinc [128]gf128
}

func newLRWKey(k []byte) *lrwKey {
	l := &lrwKey{k2: gfLoad(k)}
	var m gf128 // 2^(k+1) − 1
	for i := range l.mulinc {
		if i < 64 {
			m.lo |= 1 << i
		} else {
			m.hi |= 1 << (i - 64)
		}
		l.mulinc[i] = gfMul(l.k2, m)
	}
	return l
}

func (l *lrwKey) wipe() { *l = lrwKey{} }

// advance moves block index idx to idx+1 and tweak t = K2⊗idx along with it.
func (l *lrwKey) advance(idx, t *gf128) {
	var k int
	if idx.lo == ^uint64(0) {
		k = 64 + bits.TrailingZeros64(^idx.hi)
	} else {
		k = bits.TrailingZeros64(^idx.lo)
	}
	if k > 127 { // idx = 2^128 − 1 wraps to 0, and K2⊗(2^128 − 1) clears t
		k = 127
	}
	inc := l.mulinc[k]
	t.hi ^= inc.hi
	t.lo ^= inc.lo
	var c uint64
	idx.lo, c = bits.Add64(idx.lo, 1, 0)
	idx.hi += c
}

// tweaks writes the tweak of every block of a run starting at block index iv into tw.
func (l *lrwKey) tweaks(tw []byte, iv *[16]byte) {
	idx := gfLoad(iv[:])
	t := gfMul(l.k2, idx)
	for j := 0; j < len(tw); j += 16 {
		t.store(tw[j : j+16])
		l.advance(&idx, &t)
	}
}

// lrw implements LRW (IEEE P1619 draft / kernel crypto/lrw.c): the IV is the 128-bit
// big-endian index I of the first block, block j uses T = K2 ⊗ (I+j), C = E(P ⊕ T) ⊕ T.
func lrw(b cipher.Block, l *lrwKey, d, x []byte, iv *[16]byte, enc bool) {
	idx := gfLoad(iv[:])
	t := gfMul(l.k2, idx)
	var tb, buf [16]byte
	for i := 0; i < len(x); i += 16 {
		t.store(tb[:])
		subtle.XORBytes(buf[:], x[i:i+16], tb[:])
		if enc {
			b.Encrypt(buf[:], buf[:])
		} else {
			b.Decrypt(buf[:], buf[:])
		}
		subtle.XORBytes(d[i:i+16], buf[:], tb[:])
		l.advance(&idx, &t)
	}
}
