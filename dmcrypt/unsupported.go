//go:build !linux

package dmcrypt

import (
	"context"

	"github.com/cloudluks/cloudluks/luks"
)

// On platforms without device-mapper every operation returns ErrUnsupported; ValidateName and
// the status text work everywhere, and the verbs that take a mapping name check it first, so
// a bad name gets the same error on every platform.

// Open returns ErrUnsupported (or ValidateName's error).
func Open(ctx context.Context, device, name string, passphrase []byte, opts OpenOptions) (*Mapping, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return nil, ErrUnsupported
}

// OpenWith returns ErrUnsupported (or ValidateName's error) without calling unlock.
func OpenWith(ctx context.Context, device, name string, unlock func() (*luks.Header, *luks.VolumeKey, int, error), opts OpenOptions) (*Mapping, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return nil, ErrUnsupported
}

// OpenWithAny returns ErrUnsupported (or ValidateName's error) without calling unlock.
func OpenWithAny(ctx context.Context, device, name string, unlock func() (luks.Metadata, *luks.VolumeKey, int, error), opts OpenOptions) (*Mapping, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return nil, ErrUnsupported
}

// OpenWithKey returns ErrUnsupported (or ValidateName's error).
func OpenWithKey(ctx context.Context, device, name string, h luks.Metadata, vk *luks.VolumeKey, opts OpenOptions) (*Mapping, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return nil, ErrUnsupported
}

// Close returns ErrUnsupported.
func Close(ctx context.Context, name string) error { return ErrUnsupported }

// CloseWithOptions returns ErrUnsupported.
func CloseWithOptions(ctx context.Context, name string, opts CloseOptions) error {
	return ErrUnsupported
}

// Status returns ErrUnsupported.
func Status(name string) (*MappingStatus, error) { return nil, ErrUnsupported }

// List returns ErrUnsupported.
func List() ([]Mapping, error) { return nil, ErrUnsupported }

// NameFromPath returns ErrUnsupported.
func NameFromPath(path string) (string, error) { return "", ErrUnsupported }
