//go:build linux

package dmcrypt

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/dmcrypt/internal/dm"
	"github.com/cloudluks/cloudluks/dmcrypt/internal/loop"
	"github.com/cloudluks/cloudluks/luks"
)

// Helpers for the tests that run inside the VM (as root, on the Debian cloud kernel).

const testIterations = 1000 // the LUKS1 minimum cryptsetup accepts; keeps PBKDF2 cheap under TCG

type runResult struct {
	stdout, stderr string
	code           int
}

// run executes a program in the guest with stdin, returning its output and exit code.
func run(t *testing.T, stdin []byte, name string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %v", name, strings.Join(args[:min(2, len(args))], " "), time.Since(start).Round(time.Millisecond))
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err, "%s %v", name, args)
	}
	return runResult{out.String(), errb.String(), code}
}

// mustRun runs a program that must succeed and returns its stdout.
func mustRun(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	r := run(t, stdin, name, args...)
	require.Equal(t, 0, r.code, "%s %v: %s%s", name, args, r.stdout, r.stderr)
	return r.stdout
}

// newImage creates a zero-filled image file of size bytes.
func newImage(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
	return p
}

func keyBitsFor(spec string) int {
	if strings.Contains(spec, "-xts-") {
		return 512
	}
	return 256
}

// formatOurs formats path with the luks package.
func formatOurs(t *testing.T, path, spec string, pass []byte) *luks.Header {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	h, vk, err := luks.Format(context.Background(), f, pass, luks.FormatOptions{Cipher: spec, KeySize: keyBitsFor(spec), ForceIterations: testIterations})
	require.NoError(t, err)
	vk.Wipe()
	require.NoError(t, f.Sync())
	return h
}

// formatCryptsetup formats path with the real cryptsetup.
func formatCryptsetup(t *testing.T, path, spec string, pass []byte) {
	t.Helper()
	mustRun(t, pass, "cryptsetup", "luksFormat", "--type", "luks1", "-q", "-c", spec, "-s", strconv.Itoa(keyBitsFor(spec)),
		"--pbkdf-force-iterations", strconv.Itoa(testIterations), "--key-file", "-", path)
}

// userspaceRW reads (data == nil) or writes the payload of an image through luks.Volume.
func userspaceRW(t *testing.T, path string, pass []byte, off int64, data []byte, n int) []byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	h, vk, _, err := luks.Unlock(context.Background(), f, pass, luks.UnlockOptions{})
	require.NoError(t, err)
	defer vk.Wipe()
	v, err := luks.NewVolume(f, h, vk)
	require.NoError(t, err)
	defer v.Close()
	if data != nil {
		_, err = v.WriteAt(data, off)
		require.NoError(t, err)
		require.NoError(t, f.Sync())
		return nil
	}
	buf := make([]byte, n)
	_, err = v.ReadAt(buf, off)
	require.NoError(t, err)
	return buf
}

// devRW reads (data == nil) or writes a block device directly (O_DIRECT-free but synced).
func devRW(t *testing.T, dev string, off int64, data []byte, n int) []byte {
	t.Helper()
	flag := os.O_RDONLY
	if data != nil {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(dev, flag, 0)
	require.NoError(t, err)
	defer f.Close()
	if data != nil {
		_, err = f.WriteAt(data, off)
		require.NoError(t, err)
		require.NoError(t, f.Sync())
		return nil
	}
	buf := make([]byte, n)
	_, err = f.ReadAt(buf, off)
	require.NoError(t, err)
	return buf
}

func randBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// ourStatusText is what Status+Format print for name.
func ourStatusText(t *testing.T, name string) string {
	t.Helper()
	s, err := Status(name)
	require.NoError(t, err)
	var b strings.Builder
	require.NoError(t, s.Dump(&b, name))
	return b.String()
}

// boundLoops lists loop devices that have a backing file.
func boundLoops(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/sys/block")
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "loop") && loop.BackingFile(e.Name()) != "" {
			out = append(out, e.Name())
		}
	}
	return out
}

// dmDevices lists the dm-N block devices.
func dmDevices(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/sys/block")
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "dm-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// ourKeys returns the /proc/keys lines naming this package's keys.
func ourKeys(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/keys")
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "cloudluks:") {
			out = append(out, l)
		}
	}
	return out
}

// liveKeys returns the /proc/keys lines naming this package's keys that are neither
// invalidated, revoked nor dead (those wait only for the kernel's garbage collector).
func liveKeys(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, l := range ourKeys(t) {
		f := strings.Fields(l)
		if len(f) > 1 && !strings.ContainsAny(f[1], "iRD") {
			out = append(out, l)
		}
	}
	return out
}

// assertNothingLeft checks that no mapping, no bound loop device, no /dev/mapper node and no
// keyring key remain. Deferred removal, autoclear detach and key garbage collection finish
// asynchronously in the kernel, so the state is polled for a moment first.
func assertNothingLeft(t *testing.T) {
	t.Helper()
	for i := 0; i < 200 && (len(dmDevices(t)) > 0 || len(boundLoops(t)) > 0 || len(ourKeys(t)) > 0); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	assert.Empty(t, dmDevices(t), "dm devices left")
	assert.Empty(t, boundLoops(t), "loop devices left")
	l, err := List()
	require.NoError(t, err)
	assert.Empty(t, l, "device-mapper list")
	ents, _ := os.ReadDir(dm.MapperDir)
	for _, e := range ents {
		assert.Equal(t, "control", e.Name(), "stray node in /dev/mapper")
	}
	assert.Empty(t, ourKeys(t), "keyring keys left")
}
