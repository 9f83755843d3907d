package sector

import (
	"encoding/binary"
	"errors"
	"hash"
)

// Whirlpool (Barreto, Rijmen; ISO/IEC 10118-3:2004, the final "Whirlpool" version adopted by
// NESSIE) in the usual 64-bit table form. wp256 and wp384 are the Linux kernel's truncations
// (crypto/wp512.c): the first 32 or 48 bytes of the 64-byte digest.

const (
	whirlpoolSize      = 64
	whirlpoolBlockSize = 64
	whirlpoolRounds    = 10
)

type whirlpool struct {
	h    [8]uint64
	buf  [whirlpoolBlockSize]byte
	nbuf int
	n    uint64 // bytes written; 2^64 bytes is beyond any use here (the spec allows 2^256 bits)
	size int    // output length: 64, 48 or 32
}

func newWhirlpool() hash.Hash { return &whirlpool{size: 64} }
func newWP384() hash.Hash     { return &whirlpool{size: 48} }
func newWP256() hash.Hash     { return &whirlpool{size: 32} }

func (w *whirlpool) Size() int      { return w.size }
func (w *whirlpool) BlockSize() int { return whirlpoolBlockSize }

func (w *whirlpool) Reset() {
	w.h = [8]uint64{}
	w.buf = [whirlpoolBlockSize]byte{}
	w.nbuf = 0
	w.n = 0
}

func (w *whirlpool) Write(p []byte) (int, error) {
	n := len(p)
	w.n += uint64(n)
	if w.nbuf > 0 {
		c := copy(w.buf[w.nbuf:], p)
		w.nbuf += c
		p = p[c:]
		if w.nbuf == whirlpoolBlockSize {
			whirlpoolBlock(&w.h, &w.buf)
			w.nbuf = 0
		}
	}
	for len(p) >= whirlpoolBlockSize {
		whirlpoolBlock(&w.h, (*[whirlpoolBlockSize]byte)(p))
		p = p[whirlpoolBlockSize:]
	}
	if len(p) > 0 {
		w.nbuf = copy(w.buf[:], p)
	}
	return n, nil
}

func (w *whirlpool) Sum(in []byte) []byte {
	// Pad: a 1 bit, zeros up to 32 bytes before a block end, then the 256-bit bit length;
	// one block if the buffered bytes leave room for the 33, else two. Worked on copies, as
	// Sum must not change the running state.
	h := w.h
	var pad [2 * whirlpoolBlockSize]byte
	copy(pad[:], w.buf[:w.nbuf])
	pad[w.nbuf] = 0x80
	end := whirlpoolBlockSize
	if w.nbuf >= whirlpoolBlockSize-32 {
		end += whirlpoolBlockSize
	}
	binary.BigEndian.PutUint64(pad[end-16:], w.n>>61)
	binary.BigEndian.PutUint64(pad[end-8:], w.n<<3)
	whirlpoolBlock(&h, (*[whirlpoolBlockSize]byte)(pad[:]))
	if end > whirlpoolBlockSize {
		whirlpoolBlock(&h, (*[whirlpoolBlockSize]byte)(pad[whirlpoolBlockSize:]))
	}
	var out [whirlpoolSize]byte
	for i, v := range h {
		binary.BigEndian.PutUint64(out[8*i:], v)
	}
	return append(in, out[:w.size]...)
}

// whirlpoolBlock runs the Miyaguchi–Preneel compression H ← W_H(m) ⊕ H ⊕ m. Each round
// computes the key schedule and the state round in one pass (γ, π, θ and σ[k] through the
// table lookups, row i taking byte j of row i−j) with both kept in locals; this is a third
// faster than rounds through arrays.
func whirlpoolBlock(h *[8]uint64, p *[whirlpoolBlockSize]byte) {
	c := &whirlpoolC
	k0 := h[0]
	k1 := h[1]
	k2 := h[2]
	k3 := h[3]
	k4 := h[4]
	k5 := h[5]
	k6 := h[6]
	k7 := h[7]
	s0 := binary.BigEndian.Uint64(p[0:]) ^ k0
	s1 := binary.BigEndian.Uint64(p[8:]) ^ k1
	s2 := binary.BigEndian.Uint64(p[16:]) ^ k2
	s3 := binary.BigEndian.Uint64(p[24:]) ^ k3
	s4 := binary.BigEndian.Uint64(p[32:]) ^ k4
	s5 := binary.BigEndian.Uint64(p[40:]) ^ k5
	s6 := binary.BigEndian.Uint64(p[48:]) ^ k6
	s7 := binary.BigEndian.Uint64(p[56:]) ^ k7
	for r := 1; r <= whirlpoolRounds; r++ {
		n0 := c[0][k0>>56] ^ c[1][byte(k7>>48)] ^ c[2][byte(k6>>40)] ^ c[3][byte(k5>>32)] ^ c[4][byte(k4>>24)] ^ c[5][byte(k3>>16)] ^ c[6][byte(k2>>8)] ^ c[7][byte(k1)] ^ whirlpoolRC[r]
		n1 := c[0][k1>>56] ^ c[1][byte(k0>>48)] ^ c[2][byte(k7>>40)] ^ c[3][byte(k6>>32)] ^ c[4][byte(k5>>24)] ^ c[5][byte(k4>>16)] ^ c[6][byte(k3>>8)] ^ c[7][byte(k2)]
		n2 := c[0][k2>>56] ^ c[1][byte(k1>>48)] ^ c[2][byte(k0>>40)] ^ c[3][byte(k7>>32)] ^ c[4][byte(k6>>24)] ^ c[5][byte(k5>>16)] ^ c[6][byte(k4>>8)] ^ c[7][byte(k3)]
		n3 := c[0][k3>>56] ^ c[1][byte(k2>>48)] ^ c[2][byte(k1>>40)] ^ c[3][byte(k0>>32)] ^ c[4][byte(k7>>24)] ^ c[5][byte(k6>>16)] ^ c[6][byte(k5>>8)] ^ c[7][byte(k4)]
		n4 := c[0][k4>>56] ^ c[1][byte(k3>>48)] ^ c[2][byte(k2>>40)] ^ c[3][byte(k1>>32)] ^ c[4][byte(k0>>24)] ^ c[5][byte(k7>>16)] ^ c[6][byte(k6>>8)] ^ c[7][byte(k5)]
		n5 := c[0][k5>>56] ^ c[1][byte(k4>>48)] ^ c[2][byte(k3>>40)] ^ c[3][byte(k2>>32)] ^ c[4][byte(k1>>24)] ^ c[5][byte(k0>>16)] ^ c[6][byte(k7>>8)] ^ c[7][byte(k6)]
		n6 := c[0][k6>>56] ^ c[1][byte(k5>>48)] ^ c[2][byte(k4>>40)] ^ c[3][byte(k3>>32)] ^ c[4][byte(k2>>24)] ^ c[5][byte(k1>>16)] ^ c[6][byte(k0>>8)] ^ c[7][byte(k7)]
		n7 := c[0][k7>>56] ^ c[1][byte(k6>>48)] ^ c[2][byte(k5>>40)] ^ c[3][byte(k4>>32)] ^ c[4][byte(k3>>24)] ^ c[5][byte(k2>>16)] ^ c[6][byte(k1>>8)] ^ c[7][byte(k0)]
		t0 := c[0][s0>>56] ^ c[1][byte(s7>>48)] ^ c[2][byte(s6>>40)] ^ c[3][byte(s5>>32)] ^ c[4][byte(s4>>24)] ^ c[5][byte(s3>>16)] ^ c[6][byte(s2>>8)] ^ c[7][byte(s1)] ^ n0
		t1 := c[0][s1>>56] ^ c[1][byte(s0>>48)] ^ c[2][byte(s7>>40)] ^ c[3][byte(s6>>32)] ^ c[4][byte(s5>>24)] ^ c[5][byte(s4>>16)] ^ c[6][byte(s3>>8)] ^ c[7][byte(s2)] ^ n1
		t2 := c[0][s2>>56] ^ c[1][byte(s1>>48)] ^ c[2][byte(s0>>40)] ^ c[3][byte(s7>>32)] ^ c[4][byte(s6>>24)] ^ c[5][byte(s5>>16)] ^ c[6][byte(s4>>8)] ^ c[7][byte(s3)] ^ n2
		t3 := c[0][s3>>56] ^ c[1][byte(s2>>48)] ^ c[2][byte(s1>>40)] ^ c[3][byte(s0>>32)] ^ c[4][byte(s7>>24)] ^ c[5][byte(s6>>16)] ^ c[6][byte(s5>>8)] ^ c[7][byte(s4)] ^ n3
		t4 := c[0][s4>>56] ^ c[1][byte(s3>>48)] ^ c[2][byte(s2>>40)] ^ c[3][byte(s1>>32)] ^ c[4][byte(s0>>24)] ^ c[5][byte(s7>>16)] ^ c[6][byte(s6>>8)] ^ c[7][byte(s5)] ^ n4
		t5 := c[0][s5>>56] ^ c[1][byte(s4>>48)] ^ c[2][byte(s3>>40)] ^ c[3][byte(s2>>32)] ^ c[4][byte(s1>>24)] ^ c[5][byte(s0>>16)] ^ c[6][byte(s7>>8)] ^ c[7][byte(s6)] ^ n5
		t6 := c[0][s6>>56] ^ c[1][byte(s5>>48)] ^ c[2][byte(s4>>40)] ^ c[3][byte(s3>>32)] ^ c[4][byte(s2>>24)] ^ c[5][byte(s1>>16)] ^ c[6][byte(s0>>8)] ^ c[7][byte(s7)] ^ n6
		t7 := c[0][s7>>56] ^ c[1][byte(s6>>48)] ^ c[2][byte(s5>>40)] ^ c[3][byte(s4>>32)] ^ c[4][byte(s3>>24)] ^ c[5][byte(s2>>16)] ^ c[6][byte(s1>>8)] ^ c[7][byte(s0)] ^ n7
		k0, k1, k2, k3, k4, k5, k6, k7 = n0, n1, n2, n3, n4, n5, n6, n7
		s0, s1, s2, s3, s4, s5, s6, s7 = t0, t1, t2, t3, t4, t5, t6, t7
	}
	h[0] ^= s0 ^ binary.BigEndian.Uint64(p[0:])
	h[1] ^= s1 ^ binary.BigEndian.Uint64(p[8:])
	h[2] ^= s2 ^ binary.BigEndian.Uint64(p[16:])
	h[3] ^= s3 ^ binary.BigEndian.Uint64(p[24:])
	h[4] ^= s4 ^ binary.BigEndian.Uint64(p[32:])
	h[5] ^= s5 ^ binary.BigEndian.Uint64(p[40:])
	h[6] ^= s6 ^ binary.BigEndian.Uint64(p[48:])
	h[7] ^= s7 ^ binary.BigEndian.Uint64(p[56:])
}

// whirlpoolKeys computes the round keys of a compression from chaining value h: rk[0] = h,
// rk[r] = the key schedule's round r. They depend on h alone, so HMAC computes them once for
// each pad state and every PRF call saves half of one compression per pad.
func whirlpoolKeys(rk *[whirlpoolRounds + 1][8]uint64, h *[8]uint64) {
	c := &whirlpoolC
	k0 := h[0]
	k1 := h[1]
	k2 := h[2]
	k3 := h[3]
	k4 := h[4]
	k5 := h[5]
	k6 := h[6]
	k7 := h[7]
	rk[0] = *h
	for r := 1; r <= whirlpoolRounds; r++ {
		n0 := c[0][k0>>56] ^ c[1][byte(k7>>48)] ^ c[2][byte(k6>>40)] ^ c[3][byte(k5>>32)] ^ c[4][byte(k4>>24)] ^ c[5][byte(k3>>16)] ^ c[6][byte(k2>>8)] ^ c[7][byte(k1)] ^ whirlpoolRC[r]
		n1 := c[0][k1>>56] ^ c[1][byte(k0>>48)] ^ c[2][byte(k7>>40)] ^ c[3][byte(k6>>32)] ^ c[4][byte(k5>>24)] ^ c[5][byte(k4>>16)] ^ c[6][byte(k3>>8)] ^ c[7][byte(k2)]
		n2 := c[0][k2>>56] ^ c[1][byte(k1>>48)] ^ c[2][byte(k0>>40)] ^ c[3][byte(k7>>32)] ^ c[4][byte(k6>>24)] ^ c[5][byte(k5>>16)] ^ c[6][byte(k4>>8)] ^ c[7][byte(k3)]
		n3 := c[0][k3>>56] ^ c[1][byte(k2>>48)] ^ c[2][byte(k1>>40)] ^ c[3][byte(k0>>32)] ^ c[4][byte(k7>>24)] ^ c[5][byte(k6>>16)] ^ c[6][byte(k5>>8)] ^ c[7][byte(k4)]
		n4 := c[0][k4>>56] ^ c[1][byte(k3>>48)] ^ c[2][byte(k2>>40)] ^ c[3][byte(k1>>32)] ^ c[4][byte(k0>>24)] ^ c[5][byte(k7>>16)] ^ c[6][byte(k6>>8)] ^ c[7][byte(k5)]
		n5 := c[0][k5>>56] ^ c[1][byte(k4>>48)] ^ c[2][byte(k3>>40)] ^ c[3][byte(k2>>32)] ^ c[4][byte(k1>>24)] ^ c[5][byte(k0>>16)] ^ c[6][byte(k7>>8)] ^ c[7][byte(k6)]
		n6 := c[0][k6>>56] ^ c[1][byte(k5>>48)] ^ c[2][byte(k4>>40)] ^ c[3][byte(k3>>32)] ^ c[4][byte(k2>>24)] ^ c[5][byte(k1>>16)] ^ c[6][byte(k0>>8)] ^ c[7][byte(k7)]
		n7 := c[0][k7>>56] ^ c[1][byte(k6>>48)] ^ c[2][byte(k5>>40)] ^ c[3][byte(k4>>32)] ^ c[4][byte(k3>>24)] ^ c[5][byte(k2>>16)] ^ c[6][byte(k1>>8)] ^ c[7][byte(k0)]
		k0, k1, k2, k3, k4, k5, k6, k7 = n0, n1, n2, n3, n4, n5, n6, n7
		rk[r] = [8]uint64{k0, k1, k2, k3, k4, k5, k6, k7}
	}
}

// whirlpoolBlockKeyed is whirlpoolBlock with the round keys of h (= rk[0]) precomputed by
// whirlpoolKeys.
func whirlpoolBlockKeyed(h *[8]uint64, rk *[whirlpoolRounds + 1][8]uint64, p *[whirlpoolBlockSize]byte) {
	c := &whirlpoolC
	s0 := binary.BigEndian.Uint64(p[0:]) ^ rk[0][0]
	s1 := binary.BigEndian.Uint64(p[8:]) ^ rk[0][1]
	s2 := binary.BigEndian.Uint64(p[16:]) ^ rk[0][2]
	s3 := binary.BigEndian.Uint64(p[24:]) ^ rk[0][3]
	s4 := binary.BigEndian.Uint64(p[32:]) ^ rk[0][4]
	s5 := binary.BigEndian.Uint64(p[40:]) ^ rk[0][5]
	s6 := binary.BigEndian.Uint64(p[48:]) ^ rk[0][6]
	s7 := binary.BigEndian.Uint64(p[56:]) ^ rk[0][7]
	for r := 1; r <= whirlpoolRounds; r++ {
		k := &rk[r]
		t0 := c[0][s0>>56] ^ c[1][byte(s7>>48)] ^ c[2][byte(s6>>40)] ^ c[3][byte(s5>>32)] ^ c[4][byte(s4>>24)] ^ c[5][byte(s3>>16)] ^ c[6][byte(s2>>8)] ^ c[7][byte(s1)] ^ k[0]
		t1 := c[0][s1>>56] ^ c[1][byte(s0>>48)] ^ c[2][byte(s7>>40)] ^ c[3][byte(s6>>32)] ^ c[4][byte(s5>>24)] ^ c[5][byte(s4>>16)] ^ c[6][byte(s3>>8)] ^ c[7][byte(s2)] ^ k[1]
		t2 := c[0][s2>>56] ^ c[1][byte(s1>>48)] ^ c[2][byte(s0>>40)] ^ c[3][byte(s7>>32)] ^ c[4][byte(s6>>24)] ^ c[5][byte(s5>>16)] ^ c[6][byte(s4>>8)] ^ c[7][byte(s3)] ^ k[2]
		t3 := c[0][s3>>56] ^ c[1][byte(s2>>48)] ^ c[2][byte(s1>>40)] ^ c[3][byte(s0>>32)] ^ c[4][byte(s7>>24)] ^ c[5][byte(s6>>16)] ^ c[6][byte(s5>>8)] ^ c[7][byte(s4)] ^ k[3]
		t4 := c[0][s4>>56] ^ c[1][byte(s3>>48)] ^ c[2][byte(s2>>40)] ^ c[3][byte(s1>>32)] ^ c[4][byte(s0>>24)] ^ c[5][byte(s7>>16)] ^ c[6][byte(s6>>8)] ^ c[7][byte(s5)] ^ k[4]
		t5 := c[0][s5>>56] ^ c[1][byte(s4>>48)] ^ c[2][byte(s3>>40)] ^ c[3][byte(s2>>32)] ^ c[4][byte(s1>>24)] ^ c[5][byte(s0>>16)] ^ c[6][byte(s7>>8)] ^ c[7][byte(s6)] ^ k[5]
		t6 := c[0][s6>>56] ^ c[1][byte(s5>>48)] ^ c[2][byte(s4>>40)] ^ c[3][byte(s3>>32)] ^ c[4][byte(s2>>24)] ^ c[5][byte(s1>>16)] ^ c[6][byte(s0>>8)] ^ c[7][byte(s7)] ^ k[6]
		t7 := c[0][s7>>56] ^ c[1][byte(s6>>48)] ^ c[2][byte(s5>>40)] ^ c[3][byte(s4>>32)] ^ c[4][byte(s3>>24)] ^ c[5][byte(s2>>16)] ^ c[6][byte(s1>>8)] ^ c[7][byte(s0)] ^ k[7]
		s0, s1, s2, s3, s4, s5, s6, s7 = t0, t1, t2, t3, t4, t5, t6, t7
	}
	h[0] = rk[0][0] ^ s0 ^ binary.BigEndian.Uint64(p[0:])
	h[1] = rk[0][1] ^ s1 ^ binary.BigEndian.Uint64(p[8:])
	h[2] = rk[0][2] ^ s2 ^ binary.BigEndian.Uint64(p[16:])
	h[3] = rk[0][3] ^ s3 ^ binary.BigEndian.Uint64(p[24:])
	h[4] = rk[0][4] ^ s4 ^ binary.BigEndian.Uint64(p[32:])
	h[5] = rk[0][5] ^ s5 ^ binary.BigEndian.Uint64(p[40:])
	h[6] = rk[0][6] ^ s6 ^ binary.BigEndian.Uint64(p[48:])
	h[7] = rk[0][7] ^ s7 ^ binary.BigEndian.Uint64(p[56:])
}

const whirlpoolMagic = "wpl\x01"

// MarshalBinary saves the running state; crypto/hmac uses it to precompute the padded keys,
// which halves the cost of PBKDF2-Whirlpool.
func (w *whirlpool) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, len(whirlpoolMagic)+1+8*8+whirlpoolBlockSize+8)
	b = append(b, whirlpoolMagic...)
	b = append(b, byte(w.size))
	for _, v := range w.h {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	b = append(b, w.buf[:w.nbuf]...)
	b = append(b, make([]byte, whirlpoolBlockSize-w.nbuf)...)
	b = binary.BigEndian.AppendUint64(b, w.n)
	return b, nil
}

// UnmarshalBinary restores a state saved by MarshalBinary of the same digest size.
func (w *whirlpool) UnmarshalBinary(b []byte) error {
	if len(b) != len(whirlpoolMagic)+1+8*8+whirlpoolBlockSize+8 || string(b[:len(whirlpoolMagic)]) != whirlpoolMagic {
		return errors.New("whirlpool: invalid hash state")
	}
	b = b[len(whirlpoolMagic):]
	if int(b[0]) != w.size {
		return errors.New("whirlpool: hash state of a different digest size")
	}
	b = b[1:]
	for i := range w.h {
		w.h[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	b = b[64:]
	copy(w.buf[:], b[:whirlpoolBlockSize])
	w.n = binary.BigEndian.Uint64(b[whirlpoolBlockSize:])
	w.nbuf = int(w.n % whirlpoolBlockSize)
	return nil
}

// whirlpoolHMAC is HMAC-Whirlpool for PBKDF2, where every PRF call after the first MACs one
// 64-byte block: the inner and the outer hash each compress that block under the state after
// their pad block, whose round keys are fixed for the key and computed once, then the same
// constant padding block (a 128-byte message). Other lengths take the streaming path.
type whirlpoolHMAC struct {
	size         int
	inner, outer whirlpool // states after the pad blocks
	iKeys, oKeys [whirlpoolRounds + 1][8]uint64
	w            whirlpool // scratch for the streaming path
	sum          [whirlpoolSize]byte
	block        [whirlpoolBlockSize]byte
}

// whirlpoolHMACPad is the padding block of a 128-byte message: the 1 bit, zeros, and the
// 256-bit length 1024.
var whirlpoolHMACPad = [whirlpoolBlockSize]byte{0: 0x80, 62: 0x04}

// NewHMAC returns HMAC over this Whirlpool variant keyed with key, as mac(dst, a, b) appending
// HMAC(key, a‖b) to dst, and wipe, which clears every key-derived value. luks's PBKDF2 finds
// it by interface assertion; nothing derived from key is kept elsewhere.
func (w *whirlpool) NewHMAC(key []byte) (mac func(dst, a, b []byte) []byte, wipe func()) {
	m := newWhirlpoolHMAC(w.size, key)
	return m.mac, m.wipe
}

func newWhirlpoolHMAC(size int, key []byte) *whirlpoolHMAC {
	m := &whirlpoolHMAC{size: size}
	var pad [whirlpoolBlockSize]byte
	if len(key) > whirlpoolBlockSize {
		m.w = whirlpool{size: size}
		m.w.Write(key)
		m.w.Sum(pad[:0])
		clear(m.w.buf[:])
	} else {
		copy(pad[:], key)
	}
	for i := range pad {
		pad[i] ^= 0x36
	}
	m.inner = whirlpool{size: size, n: whirlpoolBlockSize}
	whirlpoolBlock(&m.inner.h, &pad)
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
	m.outer = whirlpool{size: size, n: whirlpoolBlockSize}
	whirlpoolBlock(&m.outer.h, &pad)
	clear(pad[:])
	whirlpoolKeys(&m.iKeys, &m.inner.h)
	whirlpoolKeys(&m.oKeys, &m.outer.h)
	return m
}

func (m *whirlpoolHMAC) mac(dst, a, b []byte) []byte {
	if len(a)+len(b) != whirlpoolBlockSize || m.size != whirlpoolSize {
		m.w = m.inner
		m.w.Write(a)
		m.w.Write(b)
		s := m.w.Sum(m.sum[:0])
		m.w = m.outer
		m.w.Write(s)
		return m.w.Sum(dst)
	}
	p := &m.block
	copy(p[copy(p[:], a):], b)
	var h [8]uint64
	whirlpoolBlockKeyed(&h, &m.iKeys, p)
	whirlpoolBlock(&h, &whirlpoolHMACPad)
	for i, v := range h {
		binary.BigEndian.PutUint64(p[8*i:], v)
	}
	whirlpoolBlockKeyed(&h, &m.oKeys, p)
	whirlpoolBlock(&h, &whirlpoolHMACPad)
	for _, v := range h {
		dst = binary.BigEndian.AppendUint64(dst, v)
	}
	return dst
}

func (m *whirlpoolHMAC) wipe() {
	*m = whirlpoolHMAC{}
}
