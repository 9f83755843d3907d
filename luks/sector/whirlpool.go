package sector

import (
	"encoding/binary"
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

// round computes one Whirlpool round on state s with round key k (γ, π, θ then σ[k]).
func whirlpoolRound(s *[8]uint64, k *[8]uint64) [8]uint64 {
	var t [8]uint64
	c := &whirlpoolC
	for i := 0; i < 8; i++ {
		t[i] = c[0][byte(s[i&7]>>56)] ^
			c[1][byte(s[(i-1)&7]>>48)] ^
			c[2][byte(s[(i-2)&7]>>40)] ^
			c[3][byte(s[(i-3)&7]>>32)] ^
			c[4][byte(s[(i-4)&7]>>24)] ^
			c[5][byte(s[(i-5)&7]>>16)] ^
			c[6][byte(s[(i-6)&7]>>8)] ^
			c[7][byte(s[(i-7)&7])] ^
			k[i]
	}
	return t
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
