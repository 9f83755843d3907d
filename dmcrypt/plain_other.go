//go:build !linux

package dmcrypt

import "context"

// OpenPlain returns ErrUnsupported (or ValidateName's error).
func OpenPlain(ctx context.Context, device, name string, passphrase []byte, p PlainParams, opts OpenOptions) (*Mapping, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return nil, ErrUnsupported
}

// OpenPlainKey returns ErrUnsupported (or ValidateName's error).
func OpenPlainKey(ctx context.Context, device, name string, key []byte, p PlainParams, opts OpenOptions) (*Mapping, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return nil, ErrUnsupported
}

// OpenEphemeral returns ErrUnsupported (or ValidateName's error).
func OpenEphemeral(ctx context.Context, device, name string, p PlainParams, opts OpenOptions) (*Mapping, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return nil, ErrUnsupported
}
