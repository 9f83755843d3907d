//go:build !linux

package dmcrypt

import (
	"context"

	"github.com/cloudluks/cloudluks/luks"
)

// On platforms without device-mapper every operation returns ErrUnsupported; the pure parts
// (tables, escaping, status text) work everywhere.

// Control is an open handle on /dev/mapper/control (never obtainable here).
type Control struct{}

// Loop is a loop device attached by AttachLoop (never obtainable here).
type Loop struct {
	Path        string
	Index       int
	BackingFile string
	ReadOnly    bool
}

// OpenControl returns ErrUnsupported.
func OpenControl() (*Control, error) { return nil, ErrUnsupported }

// Close returns ErrUnsupported.
func (c *Control) Close() error { return ErrUnsupported }

// Version returns zeros.
func (c *Control) Version() [3]uint32 { return [3]uint32{} }

// Create returns ErrUnsupported.
func (c *Control) Create(name, uuid string) (DeviceInfo, error) { return DeviceInfo{}, ErrUnsupported }

// Load returns ErrUnsupported.
func (c *Control) Load(name string, targets []Target, opts LoadOptions) error { return ErrUnsupported }

// Resume returns ErrUnsupported.
func (c *Control) Resume(name string) (DeviceInfo, error) { return DeviceInfo{}, ErrUnsupported }

// Suspend returns ErrUnsupported.
func (c *Control) Suspend(name string) error { return ErrUnsupported }

// Info returns ErrUnsupported.
func (c *Control) Info(name string) (DeviceInfo, error) { return DeviceInfo{}, ErrUnsupported }

// Table returns ErrUnsupported.
func (c *Control) Table(name string) ([]Target, error) { return nil, ErrUnsupported }

// TargetStatus returns ErrUnsupported.
func (c *Control) TargetStatus(name string) ([]Target, error) { return nil, ErrUnsupported }

// List returns ErrUnsupported.
func (c *Control) List() ([]DeviceInfo, error) { return nil, ErrUnsupported }

// Remove returns ErrUnsupported.
func (c *Control) Remove(ctx context.Context, name string, opts RemoveOptions) error {
	return ErrUnsupported
}

// CancelDeferredRemove returns ErrUnsupported.
func (c *Control) CancelDeferredRemove(name string) error { return ErrUnsupported }

// AttachLoop returns ErrUnsupported.
func AttachLoop(file string, opts LoopOptions) (*Loop, error) { return nil, ErrUnsupported }

// Close does nothing.
func (l *Loop) Close() error { return nil }

// Detach returns ErrUnsupported.
func (l *Loop) Detach() error { return ErrUnsupported }

// DetachLoop returns ErrUnsupported.
func DetachLoop(path string) error { return ErrUnsupported }

// LoopBackingFile returns "".
func LoopBackingFile(dev string) string { return "" }

// FindLoop returns ErrUnsupported.
func FindLoop(file string) (string, error) { return "", ErrUnsupported }

// Open returns ErrUnsupported.
func Open(ctx context.Context, device, name string, passphrase []byte, opts OpenOptions) (*Mapping, error) {
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
func List() ([]DeviceInfo, error) { return nil, ErrUnsupported }

// NameFromPath returns ErrUnsupported.
func NameFromPath(path string) (string, error) { return "", ErrUnsupported }
