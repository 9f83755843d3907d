package luks

import "fmt"

// VolumeKey holds a decrypted LUKS volume (master) key. Its String, GoString and Format
// methods redact the bytes, so a VolumeKey printed by mistake leaks nothing — through a
// pointer, as a dereferenced value, or as a field of another struct (the methods have
// value receivers for that reason).
type VolumeKey struct {
	b []byte
}

// NewVolumeKey copies b into a new VolumeKey.
func NewVolumeKey(b []byte) *VolumeKey {
	return &VolumeKey{b: append([]byte(nil), b...)}
}

// Bytes returns the live key bytes; do not retain or modify them.
func (k *VolumeKey) Bytes() []byte { return k.b }

// Len is the key length in bytes.
func (k *VolumeKey) Len() int { return len(k.b) }

// Wipe zeroes the key (best effort: Go may have copied it during garbage collection).
func (k *VolumeKey) Wipe() {
	clear(k.b)
	k.b = nil
}

// String redacts the key.
func (k VolumeKey) String() string { return fmt.Sprintf("VolumeKey(%d bytes, redacted)", len(k.b)) }

// Format redacts the key for every verb (%v, %x, %s, %q...).
func (k VolumeKey) Format(f fmt.State, verb rune) { fmt.Fprint(f, k.String()) }

// GoString redacts the key for %#v.
func (k VolumeKey) GoString() string { return k.String() }
