//go:build linux

package dmcrypt

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/vmtest"
)

func contextBackground() context.Context { return context.Background() }

// On a kernel without device-mapper (the development hosts' kernel) every operation must say
// so clearly, before any PBKDF2 work and without leaving anything behind.
func TestNoDeviceMapper(t *testing.T) {
	if vmtest.InVM() {
		t.Skip("the VM kernel has device-mapper; this checks kernels without it")
	}
	if _, err := os.Stat(sysControlDev); err == nil {
		t.Skip("this kernel has device-mapper (" + sysControlDev + " exists); the VM tests cover it")
	}
	_, err := OpenControl()
	require.ErrorIs(t, err, ErrNoDeviceMapper)
	_, err = Open(context.Background(), "/nonexistent", "x", []byte("pass"), OpenOptions{})
	require.ErrorIs(t, err, ErrNoDeviceMapper)
	_, err = Status("x")
	require.ErrorIs(t, err, ErrNoDeviceMapper)
	require.ErrorIs(t, Close(context.Background(), "x"), ErrNoDeviceMapper)
	_, err = List()
	require.ErrorIs(t, err, ErrNoDeviceMapper)
	// Invalid names are refused before the kernel is asked anything.
	_, err = Status("control")
	require.ErrorIs(t, err, ErrInvalidName)
}
