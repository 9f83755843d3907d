//go:build !linux

package dmcrypt

import (
	"context"

	"github.com/cloudluks/cloudluks/luks"
)

// On platforms without device-mapper every operation returns ErrUnsupported; ValidateName and
// the status text work everywhere.

// Open returns ErrUnsupported.
func Open(ctx context.Context, device, name string, passphrase []byte, opts OpenOptions) (*Mapping, error) {
	return nil, ErrUnsupported
}

// OpenWith returns ErrUnsupported without calling unlock.
func OpenWith(ctx context.Context, device, name string, unlock func() (*luks.Header, *luks.VolumeKey, int, error), opts OpenOptions) (*Mapping, error) {
	return nil, ErrUnsupported
}

// OpenWithKey returns ErrUnsupported.
func OpenWithKey(ctx context.Context, device, name string, h *luks.Header, vk *luks.VolumeKey, opts OpenOptions) (*Mapping, error) {
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
