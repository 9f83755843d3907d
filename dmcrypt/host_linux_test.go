//go:build linux

package dmcrypt

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/dmcrypt/internal/dm"
	"github.com/cloudluks/cloudluks/internal/vmtest"
)

func contextBackground() context.Context { return context.Background() }

// sysControlDev exists when the running kernel has device-mapper.
const sysControlDev = "/sys/class/misc/device-mapper/dev"

// On a kernel without device-mapper (the development hosts' kernel) every operation must say
// so clearly, before any PBKDF2 work and without leaving anything behind.
func TestNoDeviceMapper(t *testing.T) {
	if vmtest.InVM() {
		t.Skip("the VM kernel has device-mapper; this checks kernels without it")
	}
	if _, err := os.Stat(sysControlDev); err == nil {
		t.Skip("this kernel has device-mapper (" + sysControlDev + " exists); the VM tests cover it")
	}
	_, err := dm.OpenControl()
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

// TestNotRoot runs the package's operations without privileges: as is when the tests run as a
// normal user, else re-executed under uid/gid 65534. Every one must fail with ErrNotRoot
// (whether or not this kernel has device-mapper: the node's permissions are checked first).
// The VM test repeats this where device-mapper exists.
func TestNotRoot(t *testing.T) {
	if vmtest.InVM() {
		t.Skip("TestVMBehaviour/notroot covers the guest")
	}
	if _, err := os.Stat(dm.ControlPath); err != nil {
		t.Setenv(notRootEnv+"_NODM", "1")
	}
	if os.Geteuid() != 0 {
		require.Equal(t, 0, notRootChild())
		return
	}
	// A copy of the test binary that uid 65534 can execute (go test's build dir is private).
	exe, err := os.Executable()
	require.NoError(t, err)
	dir, err := os.MkdirTemp("", "dmcrypt-notroot-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "dmcrypt.test")
	src, err := os.Open(exe)
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), notRootEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	t.Logf("unprivileged child:\n%s", out)
	require.NoError(t, err)
}
