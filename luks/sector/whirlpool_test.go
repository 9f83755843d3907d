package sector

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"encoding/binary"
	"hash"
	"math/rand/v2"
	"testing"
)

// refWhirlpool is the previous implementation (rounds through arrays, Sum through Write),
// kept as the reference for the unrolled compression, the Sum fast path and the HMAC.
type refWhirlpool struct {
	h    [8]uint64
	buf  [whirlpoolBlockSize]byte
	nbuf int
	n    uint64
	size int
}

func (w *refWhirlpool) Size() int      { return w.size }
func (w *refWhirlpool) BlockSize() int { return whirlpoolBlockSize }
func (w *refWhirlpool) Reset()         { *w = refWhirlpool{size: w.size} }

func (w *refWhirlpool) Write(p []byte) (int, error) {
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

func (w *refWhirlpool) Sum(in []byte) []byte {
	d := *w
	var pad [whirlpoolBlockSize * 2]byte
	pad[0] = 0x80
	padLen := whirlpoolBlockSize - 32 - d.nbuf
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

func refWhirlpoolRound(s, k *[8]uint64) (t [8]uint64) {
	for i := range t {
		t[i] = k[i]
		for j := range 8 {
			t[i] ^= whirlpoolC[j][byte(s[(i-j+8)%8]>>(56-8*j))]
		}
	}
	return
}

func (w *refWhirlpool) block(p []byte) {
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
		key = refWhirlpoolRound(&key, &rc)
		state = refWhirlpoolRound(&state, &key)
	}
	for i := range w.h {
		w.h[i] ^= state[i] ^ m[i]
	}
}

// TestWhirlpoolVsReference checks the unrolled compression and the Sum fast path against the
// previous implementation on random messages of every length up to three blocks and random
// chunking, for all three digest sizes, and Sum twice (the running state is untouched).
func TestWhirlpoolVsReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 0))
	for _, size := range []int{64, 48, 32} {
		for n := range 3*whirlpoolBlockSize + 2 {
			msg := make([]byte, n)
			for i := range msg {
				msg[i] = byte(rng.Uint32())
			}
			got := &whirlpool{size: size}
			ref := &refWhirlpool{size: size}
			for rest := msg; len(rest) > 0; {
				k := rng.IntN(len(rest) + 1)
				got.Write(rest[:k])
				ref.Write(rest[:k])
				rest = rest[k:]
			}
			want := ref.Sum(nil)
			if g := got.Sum(nil); !bytes.Equal(g, want) {
				t.Fatalf("size %d, %d bytes: got %x, want %x", size, n, g, want)
			}
			if g := got.Sum([]byte{1}); !bytes.Equal(g[1:], want) {
				t.Fatalf("size %d, %d bytes: second Sum %x, want %x", size, n, g[1:], want)
			}
		}
	}
}

// TestWhirlpoolHMAC checks the hash's own HMAC against crypto/hmac over the previous
// implementation: keys shorter than, equal to and longer than a block, messages of 64 bytes
// (the fixed-layout path) split between a and b and of other lengths (the streaming path).
func TestWhirlpoolHMAC(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 1))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, size := range []int{64, 48, 32} {
		ref := func() hash.Hash { return &refWhirlpool{size: size} }
		for _, kl := range []int{0, 1, 20, 63, 64, 65, 200} {
			key := rnd(kl)
			mac, wipe := (&whirlpool{size: size}).NewHMAC(key)
			for _, ml := range []int{0, 4, 36, 63, 64, 64, 65, 128, 200} {
				msg := rnd(ml)
				split := rng.IntN(ml + 1)
				r := hmac.New(ref, key)
				r.Write(msg)
				want := r.Sum(nil)
				if got := mac([]byte{7}, msg[:split], msg[split:]); got[0] != 7 || !bytes.Equal(got[1:], want) {
					t.Fatalf("size %d, key %d, message %d split %d: got %x, want %x", size, kl, ml, split, got[1:], want)
				}
			}
			wipe()
		}
		// PBKDF2 (one output block) over the own HMAC against crypto/pbkdf2 over the reference.
		for _, it := range []int{1, 2, 1000} {
			pw, salt := rnd(17), rnd(32)
			want, err := pbkdf2.Key(ref, string(pw), salt, it, size)
			if err != nil {
				t.Fatal(err)
			}
			mac, wipe := (&whirlpool{size: size}).NewHMAC(pw)
			u := mac(nil, salt, []byte{0, 0, 0, 1})
			got := bytes.Clone(u)
			for range it - 1 {
				u = mac(u[:0], u, nil)
				for i := range got {
					got[i] ^= u[i]
				}
			}
			wipe()
			if !bytes.Equal(got, want) {
				t.Fatalf("size %d, PBKDF2 %d iterations: got %x, want %x", size, it, got, want)
			}
		}
	}
}

// TestWhirlpoolHMACWipe checks that wipe leaves nothing derived from the key: pad states,
// round keys, the streaming scratch state and the last inner digest and block.
func TestWhirlpoolHMACWipe(t *testing.T) {
	for _, kl := range []int{8, 100} {
		m := newWhirlpoolHMAC(64, bytes.Repeat([]byte{0xa5}, kl))
		m.mac(nil, make([]byte, 64), nil)
		m.mac(nil, []byte("salt"), []byte{0, 0, 0, 1})
		if *m == (whirlpoolHMAC{size: 64}) || *m == (whirlpoolHMAC{}) {
			t.Fatal("HMAC state unexpectedly empty before wipe")
		}
		m.wipe()
		if *m != (whirlpoolHMAC{}) {
			t.Fatalf("key %d bytes: key-derived state left after wipe", kl)
		}
	}
}
