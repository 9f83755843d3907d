package luks

import (
	"encoding/binary"
	"fmt"
	"hash"
	"io"
)

// The anti-forensic information splitter of LUKS1 (spec 1.2.3 §2.4, cryptsetup
// lib/luks1/af.c): the volume key is spread over 4000 stripes so that destroying any part of
// the key material destroys the key.

// diffuse replaces buf with H(BE32(i) || block_i) for each digest-sized block; a partial
// tail block hashes to its own length with the index of that partial block as counter.
func diffuse(h hash.Hash, buf []byte) {
	ds := h.Size()
	var iv [4]byte
	var sum []byte
	blocks := len(buf) / ds
	for i := 0; i <= blocks; i++ {
		start := i * ds
		if start >= len(buf) {
			break
		}
		end := min(start+ds, len(buf))
		h.Reset()
		binary.BigEndian.PutUint32(iv[:], uint32(i))
		h.Write(iv[:])
		h.Write(buf[start:end])
		sum = h.Sum(sum[:0])
		copy(buf[start:end], sum)
	}
	clear(sum)
}

func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// afSplit splits key into stripes blocks of len(key) bytes using random stripes from rnd.
// The result is stripes*len(key) bytes.
func afSplit(key []byte, stripes int, newHash func() hash.Hash, rnd io.Reader) ([]byte, error) {
	bs := len(key)
	if bs == 0 || stripes < 1 {
		return nil, fmt.Errorf("%w: AF split of %d bytes into %d stripes", ErrInvalidParameter, bs, stripes)
	}
	out := make([]byte, bs*stripes)
	d := make([]byte, bs)
	defer clear(d)
	h := newHash()
	for i := 0; i < stripes-1; i++ {
		s := out[i*bs : (i+1)*bs]
		if _, err := io.ReadFull(rnd, s); err != nil {
			clear(out)
			return nil, fmt.Errorf("reading random stripes: %w", err)
		}
		xorInto(d, s)
		diffuse(h, d)
	}
	last := out[(stripes-1)*bs:]
	copy(last, key)
	xorInto(last, d)
	return out, nil
}

// afMerge recovers a bs-byte key from stripes blocks in src.
func afMerge(src []byte, bs, stripes int, newHash func() hash.Hash) []byte {
	d := make([]byte, bs)
	h := newHash()
	for i := 0; i < stripes-1; i++ {
		xorInto(d, src[i*bs:(i+1)*bs])
		diffuse(h, d)
	}
	xorInto(d, src[(stripes-1)*bs:stripes*bs])
	return d
}
