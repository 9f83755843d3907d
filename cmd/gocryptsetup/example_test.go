package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/luks"
)

// Example_exitCodes runs the CLI in-process: a missing device is cryptsetup's exit code 4 with
// its message, and -v adds the status line on stdout.
func Example_exitCodes() {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"gocryptsetup", "-v", "isLuks", "/nonexistent/disk.img"},
		strings.NewReader(""), &stdout, &stderr, &fakeTerm{})
	fmt.Printf("exit %d\nstdout: %sstderr: %s", code, stdout.String(), stderr.String())
	// Output:
	// exit 4
	// stdout: Command failed with code -4 (wrong device or file specified).
	// stderr: Device /nonexistent/disk.img does not exist or access denied.
}

// TestVolumeKeyFile: --volume-key-file writes the raw key (mode 0400) and prints the header
// lines with "Key stored to file F." like cryptsetup; an existing file is refused.
func TestVolumeKeyFile(t *testing.T) {
	cs := cryptsetup(t)
	dirA, dirB := copyTemplates(t, "cbc.img", "key"), copyTemplates(t, "cbc.img", "key")
	args := []string{"-v", "luksDump", "--dump-volume-key", "--volume-key-file", "vk", "cbc.img"}
	want := runIn(t, dirA, cs, "pass1\n", args...)
	got := runIn(t, dirB, binPath, "pass1\n", args...)
	require.Equal(t, 0, want.code, want.stderr)
	assert.Equal(t, want, got)
	vkA, err := os.ReadFile(filepath.Join(dirA, "vk"))
	require.NoError(t, err)
	vkB, err := os.ReadFile(filepath.Join(dirB, "vk"))
	require.NoError(t, err)
	assert.Equal(t, vkA, vkB, "same volume key")
	assert.Len(t, vkB, 32)
	fi, err := os.Stat(filepath.Join(dirB, "vk"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o400), fi.Mode().Perm())

	exists := []string{"luksDump", "--dump-volume-key", "--volume-key-file", "key", "cbc.img"}
	want = runIn(t, dirA, cs, "pass1\n", exists...)
	got = runIn(t, dirB, binPath, "pass1\n", exists...)
	assert.Equal(t, 1, got.code)
	assert.Equal(t, want, got)
}

// BenchmarkReadVerb measures the CLI's data path: unlock once (1000 iterations), then decrypt
// a 16 MiB payload (aes-xts-plain64, 512-bit key) to io.Discard through the read extension.
func BenchmarkReadVerb(b *testing.B) {
	dir := b.TempDir()
	img := filepath.Join(dir, "bench.img")
	f, err := os.Create(img)
	require.NoError(b, err)
	require.NoError(b, f.Truncate(18<<20))
	_, vk, err := luks.Format(context.Background(), f, []byte("pw"), luks.FormatOptions{ForceIterations: 1000})
	require.NoError(b, err)
	vk.Wipe()
	require.NoError(b, f.Close())
	key := filepath.Join(dir, "key")
	require.NoError(b, os.WriteFile(key, []byte("pw"), 0o600))
	b.SetBytes(16 << 20)
	b.ResetTimer()
	for b.Loop() {
		code := run(context.Background(), []string{"gocryptsetup", "read", img, "-d", key},
			strings.NewReader(""), io.Discard, io.Discard, &fakeTerm{})
		if code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}
