package luks

import (
	"fmt"
	"strings"

	"github.com/cloudluks/cloudluks/luks/sector"
)

// FormatParams are the header parameters a FormatOptions value resolves to: the defaults
// filled in, the cipher spec split the way the LUKS1 header stores it.
type FormatParams struct {
	CipherName string // e.g. "aes"
	CipherMode string // e.g. "xts-plain64"
	KeySize    int    // bits
	Hash       string // lower-case, e.g. "sha256"
}

// Check validates the cipher spec, key size and hash of o and returns what Format would
// write for them, without deriving, reading or writing anything. Programs call it before
// their first side effect (creating a cloud volume, say), so a request Format would refuse
// is refused before anything exists. Format runs the same checks, and one more that needs
// the passphrase: a null cipher ("cipher_null", CipherName in the result) takes only an
// empty one.
func (o FormatOptions) Check() (FormatParams, error) {
	spec := o.Cipher
	if spec == "" {
		spec = "aes-xts-plain64"
	}
	name, mode, err := sector.SplitSpec(spec)
	if err != nil {
		return FormatParams{}, fmt.Errorf("cipher %q: %w", spec, err)
	}
	ps, err := sector.ParseSpec(name, mode)
	if err != nil {
		return FormatParams{}, fmt.Errorf("cipher %q: %w", spec, err)
	}
	bits := o.KeySize
	if bits == 0 {
		bits = 256
		if ps.Chain == "xts" {
			bits = 512
		}
		if len(o.VolumeKey) > 0 {
			bits = 8 * len(o.VolumeKey)
		}
	}
	if bits < 0 || bits%8 != 0 {
		return FormatParams{}, fmt.Errorf("%w: key size %d bits is not a multiple of 8", ErrInvalidParameter, bits)
	}
	keyBytes := bits / 8
	if err := ps.CheckKeySize(keyBytes); err != nil {
		return FormatParams{}, fmt.Errorf("cipher %s with %d-bit key: %w", spec, bits, err)
	}
	if o.VolumeKey != nil && len(o.VolumeKey) != keyBytes {
		return FormatParams{}, fmt.Errorf("%w: volume key has %d bytes, key size is %d bits", ErrInvalidParameter, len(o.VolumeKey), bits)
	}
	hashName := o.Hash
	if hashName == "" {
		hashName = "sha256"
	}
	hashName = strings.ToLower(hashName) // LUKS_fix_header_compatible
	if len(hashName) > hashSpecLen-1 {
		return FormatParams{}, fmt.Errorf("%w: hash name %q too long", ErrUnsupportedHash, hashName)
	}
	if err := checkHash(hashName); err != nil {
		return FormatParams{}, err
	}
	if len(name) > cipherNameLen-1 || len(mode) > cipherModeLen-1 {
		return FormatParams{}, fmt.Errorf("%w: cipher %q too long for a LUKS1 header", ErrInvalidParameter, spec)
	}
	return FormatParams{CipherName: name, CipherMode: mode, KeySize: bits, Hash: hashName}, nil
}
