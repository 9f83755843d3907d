package luks

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// cryptsetupBin finds the real cryptsetup (the oracle for every compatibility test).
func cryptsetupBin(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("cryptsetup"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/cryptsetup", "/sbin/cryptsetup"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return testenv.LookPath(t, "cryptsetup", "apt-get install cryptsetup-bin")
}

type csResult struct {
	stdout, stderr string
	code           int
}

// runCS runs cryptsetup with args, feeding stdin; secrets go through stdin or key files,
// never the command line.
func runCS(t testing.TB, stdin []byte, args ...string) csResult {
	t.Helper()
	cmd := exec.Command(cryptsetupBin(t), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running cryptsetup %s: %v", strings.Join(args, " "), err)
	}
	return csResult{out.String(), errb.String(), code}
}

// mustCS runs cryptsetup and fails the test on a non-zero exit.
func mustCS(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	r := runCS(t, stdin, args...)
	require.Equalf(t, 0, r.code, "cryptsetup %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r.stdout
}

// newImage makes a zero-filled sparse image file of size bytes.
func newImage(t testing.TB, dir, name string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
	return p
}

// writeKeyFile writes a passphrase to a 0600 file for cryptsetup -d.
func writeKeyFile(t testing.TB, dir, name string, pass []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, pass, 0o600))
	return p
}

func openRW(t testing.TB, p string) *os.File {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func fileHash(t testing.TB, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return sha256.Sum256(b)
}
