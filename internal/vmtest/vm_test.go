//go:build linux

package vmtest_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/internal/vmtest"
)

const (
	nvmeSerial   = "vol0123456789abcdef0" // an EBS volume ID as Nitro shows it: 20 characters
	nvmeSerial2  = "vmtest-nvme-2"
	hostToGuest  = "written on the host before boot\n"
	guestToHost  = "written in the guest, read on the host\n"
	resultOffset = 1 << 20
)

// TestVM boots one VM and checks, inside it, everything the other packages' VM tests rely on.
// It runs inside a subtest with spaces, brackets and a non-ASCII letter in its name to show
// that exactly that subtest is selected in the guest (the sibling must not run there).
func TestVM(t *testing.T) {
	t.Run("guest é [1]", testGuest)
	t.Run("sibling", func(t *testing.T) {
		require.False(t, vmtest.InVM(), "only the selected subtest may run in the guest")
	})
}

func testGuest(t *testing.T) {
	var disks []vmtest.Disk
	if !vmtest.InVM() {
		virtio := vmtest.NewDiskImage(t, 8<<20)
		require.NoError(t, os.WriteFile(virtio, []byte(hostToGuest), 0)) // truncates…
		require.NoError(t, os.Truncate(virtio, 8<<20))                   // …so restore the size
		disks = []vmtest.Disk{
			{Path: vmtest.NewDiskImage(t, 4<<20), NVMeSerial: nvmeSerial},
			{Path: virtio},
			{Path: vmtest.NewDiskImage(t, 4<<20), NVMeSerial: nvmeSerial2},
		}
	}
	opts := vmtest.Options{
		Disks: disks,
		Tools: []string{"cryptsetup", "mkfs.ext4"},
		Env:   map[string]string{"VMTEST_PROBE": "hello-from-host/1"},
	}
	if !vmtest.Run(t, opts) {
		// Back on the host: the guest left its answer on the virtio disk.
		f, err := os.Open(disks[1].Path)
		require.NoError(t, err)
		defer f.Close()
		got := make([]byte, len(guestToHost))
		_, err = f.ReadAt(got, resultOffset)
		require.NoError(t, err)
		assert.Equal(t, guestToHost, string(got))
		return
	}

	t.Run("init", func(t *testing.T) {
		assert.Equal(t, 1, os.Getpid())
		assert.Equal(t, 0, os.Geteuid())
		assert.True(t, vmtest.InVM())
	})
	t.Run("env", func(t *testing.T) {
		assert.Equal(t, "hello-from-host/1", os.Getenv("VMTEST_PROBE"))
	})
	t.Run("device-mapper", func(t *testing.T) {
		st, err := os.Stat("/dev/mapper/control")
		require.NoError(t, err)
		assert.Equal(t, os.ModeDevice|os.ModeCharDevice, st.Mode().Type())
		_, err = os.Stat("/sys/module/dm_crypt")
		assert.NoError(t, err, "dm-crypt loaded")
	})
	t.Run("loop", func(t *testing.T) {
		_, err := os.Stat("/dev/loop-control")
		assert.NoError(t, err)
	})
	t.Run("crypto", testGuestCrypto)
	t.Run("disks", func(t *testing.T) {
		assert.Equal(t, "/dev/nvme0n1", vmtest.GuestDisk(0))
		assert.Equal(t, "/dev/vda", vmtest.GuestDisk(1))
		assert.Equal(t, "/dev/nvme1n1", vmtest.GuestDisk(2))
		serial, err := os.ReadFile("/sys/block/nvme0n1/device/serial")
		require.NoError(t, err)
		assert.Equal(t, nvmeSerial, strings.TrimSpace(string(serial)))
		serial, err = os.ReadFile("/sys/block/nvme1n1/device/serial")
		require.NoError(t, err)
		assert.Equal(t, nvmeSerial2, strings.TrimSpace(string(serial)))

		f, err := os.OpenFile(vmtest.GuestDisk(1), os.O_RDWR, 0)
		require.NoError(t, err)
		defer f.Close()
		got := make([]byte, len(hostToGuest))
		_, err = f.ReadAt(got, 0)
		require.NoError(t, err)
		assert.Equal(t, hostToGuest, string(got))
		_, err = f.WriteAt([]byte(guestToHost), resultOffset)
		require.NoError(t, err)
		require.NoError(t, f.Sync())
	})
	t.Run("tools", func(t *testing.T) {
		out, err := exec.Command("cryptsetup", "--version").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "cryptsetup 2.")
		t.Logf("guest: %s", bytes.TrimSpace(out))

		// cryptsetup drives device-mapper without udev: libdevmapper makes the node itself.
		key := filepath.Join(t.TempDir(), "key")
		require.NoError(t, os.WriteFile(key, bytes.Repeat([]byte{7}, 64), 0o600))
		out, err = exec.Command("cryptsetup", "open", "--type", "plain", "--cipher", "aes-xts-plain64",
			"--key-size", "512", "--key-file", key, vmtest.GuestDisk(0), "vmtest-plain").CombinedOutput()
		require.NoError(t, err, "%s", out)
		_, err = os.Stat("/dev/mapper/vmtest-plain")
		assert.NoError(t, err)
		out, err = exec.Command("cryptsetup", "status", "vmtest-plain").CombinedOutput()
		assert.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "cipher:  aes-xts-plain64")
		out, err = exec.Command("cryptsetup", "close", "vmtest-plain").CombinedOutput()
		require.NoError(t, err, "%s", out)

		// mkfs.ext4 is a link to mke2fs on the host; the name must survive (it selects ext4).
		dev := vmtest.GuestDisk(2)
		out, err = exec.Command("mkfs.ext4", "-q", "-F", dev).CombinedOutput()
		require.NoError(t, err, "%s", out)
		mnt := filepath.Join(t.TempDir(), "mnt")
		require.NoError(t, os.Mkdir(mnt, 0o755))
		require.NoError(t, unix.Mount(dev, mnt, "ext4", 0, ""))
		defer unix.Unmount(mnt, 0)
		_, err = os.Stat(filepath.Join(mnt, "lost+found"))
		assert.NoError(t, err)
	})
}

// testGuestCrypto checks that the crypto the project's cipher specs need is usable in the
// kernel: each algorithm is instantiated through AF_ALG, which fails with ENOENT when a
// template or cipher module is missing (there is no modprobe to fill the gap).
func testGuestCrypto(t *testing.T) {
	for _, tc := range []struct{ typ, name string }{
		{"skcipher", "xts(aes)"},
		{"skcipher", "cbc(aes)"},
		{"skcipher", "essiv(cbc(aes),sha256)"},
		{"skcipher", "lrw(aes)"},
		{"skcipher", "ecb(aes)"},
		{"skcipher", "xts(twofish)"},
		{"skcipher", "cbc(serpent)"},
		{"skcipher", "xts(serpent)"},
		{"hash", "sha512"},
		{"hash", "wp512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd, err := unix.Socket(unix.AF_ALG, unix.SOCK_SEQPACKET, 0)
			require.NoError(t, err)
			defer unix.Close(fd)
			require.NoError(t, unix.Bind(fd, &unix.SockaddrALG{Type: tc.typ, Name: tc.name}))
		})
	}
	crypto, err := os.ReadFile("/proc/crypto")
	require.NoError(t, err)
	for _, want := range []string{"name         : xts(aes)", "name         : essiv(cbc(aes),sha256)", "driver       : xts-aes-aesni"} {
		assert.Contains(t, string(crypto), want)
	}
}

// TestGuestFailureFailsHost runs a guest test that fails, in a child test process, and checks
// that the host side of that test fails too and says why.
func TestGuestFailureFailsHost(t *testing.T) {
	if os.Getenv("VMTEST_WANT_FAILURE") == "1" {
		if !vmtest.Run(t, vmtest.Options{Env: map[string]string{"VMTEST_WANT_FAILURE": "1"}}) {
			return
		}
		t.Fatal("deliberate failure inside the guest")
	}
	if vmtest.InVM() {
		t.Fatal("the parent of the failure test must not run in the guest")
	}
	if testing.Short() {
		t.Skip("boots a second VM; skipped in -short mode")
	}
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(self, "-test.run=^TestGuestFailureFailsHost$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "VMTEST_WANT_FAILURE=1")
	out, err := cmd.CombinedOutput()
	t.Logf("child output:\n%s", out)
	if strings.Contains(string(out), "SKIP") && !strings.Contains(string(out), "FAIL") {
		t.Skip("the child skipped (qemu or kernel missing)")
	}
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "the child test process must fail")
	assert.Contains(t, string(out), "deliberate failure inside the guest")
	assert.Contains(t, string(out), "the test failed in the guest (exit code 1)")
}
