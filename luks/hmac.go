package luks

import (
	"encoding"
	"hash"
)

// prfHMAC is HMAC (RFC 2104) over one hash, built here instead of with crypto/hmac so that
// every buffer derived from the key is owned by this package and wiped: crypto/hmac keeps
// key XOR 0x36 and key XOR 0x5c (the passphrase, trivially recovered) in memory it never
// clears. Where the hash can save its state (the SHA family), only the two states after
// the pad blocks are kept and the pads are wiped at once. A hash that can copy another's
// state (stateCopier: SM3) keeps those two states in two more hashes of its own, restored
// by a plain copy each iteration; PBKDF2-SM3 would otherwise spend a measurable part of
// each iteration parsing a marshalled state.
type prfHMAC struct {
	inner, outer   hash.Hash
	ipad, opad     []byte    // kept only for hashes that cannot save their state
	iState, oState []byte    // inner and outer hash state after the pad block
	iSaved, oSaved hash.Hash // the same states, for a stateCopier
	sum            []byte
	// fast and fastWipe are the hash's own HMAC where it has one (luks/sector's Whirlpool,
	// which precomputes per-key work the generic path cannot).
	fast     func(dst, a, b []byte) []byte
	fastWipe func()
}

// ownHMAC is implemented by hashes that compute HMAC themselves.
type ownHMAC interface {
	NewHMAC(key []byte) (mac func(dst, a, b []byte) []byte, wipe func())
}

// stateCopier is a hash that can become a copy of another of its kind without allocating.
type stateCopier interface {
	CopyState(src hash.Hash) bool
}

func newPRF(newHash func() hash.Hash, key []byte) *prfHMAC {
	p := &prfHMAC{inner: newHash(), outer: newHash()}
	if o, ok := p.inner.(ownHMAC); ok {
		p.fast, p.fastWipe = o.NewHMAC(key)
		return p
	}
	bs := p.inner.BlockSize()
	p.ipad = make([]byte, bs)
	p.opad = make([]byte, bs)
	if len(key) > bs {
		p.inner.Write(key)
		d := p.inner.Sum(nil)
		copy(p.ipad, d)
		clear(d)
		p.inner.Reset()
	} else {
		copy(p.ipad, key)
	}
	copy(p.opad, p.ipad)
	for i := range p.ipad {
		p.ipad[i] ^= 0x36
		p.opad[i] ^= 0x5c
	}
	p.inner.Write(p.ipad)
	p.outer.Write(p.opad)
	if _, ok := p.inner.(stateCopier); ok {
		p.iSaved, p.oSaved = newHash(), newHash()
		if p.iSaved.(stateCopier).CopyState(p.inner) && p.oSaved.(stateCopier).CopyState(p.outer) {
			clear(p.ipad)
			clear(p.opad)
			p.ipad, p.opad = nil, nil
			p.sum = make([]byte, 0, p.inner.Size())
			return p
		}
		p.iSaved, p.oSaved = nil, nil
	}
	im, iok := p.inner.(encoding.BinaryMarshaler)
	om, ook := p.outer.(encoding.BinaryMarshaler)
	_, iu := p.inner.(encoding.BinaryUnmarshaler)
	_, ou := p.outer.(encoding.BinaryUnmarshaler)
	if iok && ook && iu && ou {
		is, err1 := im.MarshalBinary()
		os, err2 := om.MarshalBinary()
		if err1 == nil && err2 == nil {
			p.iState, p.oState = is, os
			clear(p.ipad)
			clear(p.opad)
			p.ipad, p.opad = nil, nil
		} else {
			clear(is)
			clear(os)
		}
	}
	p.sum = make([]byte, 0, p.inner.Size())
	return p
}

func (p *prfHMAC) Size() int { return p.inner.Size() }

// mac appends HMAC(key, a || b) to dst.
func (p *prfHMAC) mac(dst, a, b []byte) []byte {
	if p.fast != nil {
		return p.fast(dst, a, b)
	}
	p.reset(p.inner, p.iSaved, p.iState, p.ipad)
	p.inner.Write(a)
	p.inner.Write(b)
	p.sum = p.inner.Sum(p.sum[:0])
	p.reset(p.outer, p.oSaved, p.oState, p.opad)
	p.outer.Write(p.sum)
	return p.outer.Sum(dst)
}

func (p *prfHMAC) reset(h, saved hash.Hash, state, pad []byte) {
	if saved != nil {
		// Cannot fail: saved is a hash of the same kind, checked in newPRF.
		h.(stateCopier).CopyState(saved)
		return
	}
	if state != nil {
		// Cannot fail: the state was produced by the same hash.
		_ = h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state)
		return
	}
	h.Reset()
	h.Write(pad)
}

// wipe clears every buffer derived from the key and leaves both hashes in their initial
// state, which overwrites the keyed chaining values and the buffered message bytes.
func (p *prfHMAC) wipe() {
	if p.fastWipe != nil {
		p.fastWipe()
	}
	clear(p.ipad)
	clear(p.opad)
	clear(p.iState)
	clear(p.oState)
	clear(p.sum[:cap(p.sum)])
	for _, h := range []hash.Hash{p.inner, p.outer, p.iSaved, p.oSaved} {
		if h == nil {
			continue
		}
		h.Reset()
		h.Write(make([]byte, h.BlockSize()))
		h.Reset()
	}
}
