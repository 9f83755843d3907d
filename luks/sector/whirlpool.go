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
			w.block(w.buf[:])
			w.nbuf = 0
		}
	}
	for len(p) >= whirlpoolBlockSize {
		w.block(p[:whirlpoolBlockSize])
		p = p[whirlpoolBlockSize:]
	}
	if len(p) > 0 {
		w.nbuf = copy(w.buf[:], p)
	}
	return n, nil
}

func (w *whirlpool) Sum(in []byte) []byte {
	d := *w // Sum must not change the running state
	// Pad: a 1 bit, zeros up to 32 bytes before a block end, then the 256-bit bit length.
	var pad [whirlpoolBlockSize * 2]byte
	pad[0] = 0x80
	used := d.nbuf
	padLen := whirlpoolBlockSize - 32 - used
	if padLen <= 0 {
		padLen += whirlpoolBlockSize
	}
	bitsHi, bitsLo := d.n>>61, d.n<<3
	d.Write(pad[:padLen])
	var length [32]byte
	binary.BigEndian.PutUint64(length[16:], bitsHi)
	binary.BigEndian.PutUint64(length[24:], bitsLo)
	d.Write(length[:])
	var out [whirlpoolSize]byte
	for i, v := range d.h {
		binary.BigEndian.PutUint64(out[8*i:], v)
	}
	return append(in, out[:w.size]...)
}

// whirlpoolRound computes one Whirlpool round on state s with round key k (γ, π, θ, then
// σ[k]), unrolled: row i takes byte j of row i−j.
func whirlpoolRound(s, k *[8]uint64) (t [8]uint64) {
	c0, c1, c2, c3 := &whirlpoolC[0], &whirlpoolC[1], &whirlpoolC[2], &whirlpoolC[3]
	c4, c5, c6, c7 := &whirlpoolC[4], &whirlpoolC[5], &whirlpoolC[6], &whirlpoolC[7]
	s0, s1, s2, s3, s4, s5, s6, s7 := s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
	t[0] = c0[s0>>56] ^ c1[byte(s7>>48)] ^ c2[byte(s6>>40)] ^ c3[byte(s5>>32)] ^ c4[byte(s4>>24)] ^ c5[byte(s3>>16)] ^ c6[byte(s2>>8)] ^ c7[byte(s1)] ^ k[0]
	t[1] = c0[s1>>56] ^ c1[byte(s0>>48)] ^ c2[byte(s7>>40)] ^ c3[byte(s6>>32)] ^ c4[byte(s5>>24)] ^ c5[byte(s4>>16)] ^ c6[byte(s3>>8)] ^ c7[byte(s2)] ^ k[1]
	t[2] = c0[s2>>56] ^ c1[byte(s1>>48)] ^ c2[byte(s0>>40)] ^ c3[byte(s7>>32)] ^ c4[byte(s6>>24)] ^ c5[byte(s5>>16)] ^ c6[byte(s4>>8)] ^ c7[byte(s3)] ^ k[2]
	t[3] = c0[s3>>56] ^ c1[byte(s2>>48)] ^ c2[byte(s1>>40)] ^ c3[byte(s0>>32)] ^ c4[byte(s7>>24)] ^ c5[byte(s6>>16)] ^ c6[byte(s5>>8)] ^ c7[byte(s4)] ^ k[3]
	t[4] = c0[s4>>56] ^ c1[byte(s3>>48)] ^ c2[byte(s2>>40)] ^ c3[byte(s1>>32)] ^ c4[byte(s0>>24)] ^ c5[byte(s7>>16)] ^ c6[byte(s6>>8)] ^ c7[byte(s5)] ^ k[4]
	t[5] = c0[s5>>56] ^ c1[byte(s4>>48)] ^ c2[byte(s3>>40)] ^ c3[byte(s2>>32)] ^ c4[byte(s1>>24)] ^ c5[byte(s0>>16)] ^ c6[byte(s7>>8)] ^ c7[byte(s6)] ^ k[5]
	t[6] = c0[s6>>56] ^ c1[byte(s5>>48)] ^ c2[byte(s4>>40)] ^ c3[byte(s3>>32)] ^ c4[byte(s2>>24)] ^ c5[byte(s1>>16)] ^ c6[byte(s0>>8)] ^ c7[byte(s7)] ^ k[6]
	t[7] = c0[s7>>56] ^ c1[byte(s6>>48)] ^ c2[byte(s5>>40)] ^ c3[byte(s4>>32)] ^ c4[byte(s3>>24)] ^ c5[byte(s2>>16)] ^ c6[byte(s1>>8)] ^ c7[byte(s0)] ^ k[7]
	return
}

// block runs the Miyaguchi–Preneel compression H ← W_H(m) ⊕ H ⊕ m.
func (w *whirlpool) block(p []byte) {
	var m, state [8]uint64
	for i := range m {
		m[i] = binary.BigEndian.Uint64(p[8*i:])
	}
	key := w.h
	for i := range state {
		state[i] = m[i] ^ key[i]
	}
	var rc [8]uint64
	for r := 1; r <= whirlpoolRounds; r++ {
		rc[0] = whirlpoolRC[r]
		key = whirlpoolRound(&key, &rc)
		state = whirlpoolRound(&state, &key)
	}
	for i := range w.h {
		w.h[i] ^= state[i] ^ m[i]
	}
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
