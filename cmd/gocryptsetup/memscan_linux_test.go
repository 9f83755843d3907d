package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/cloudluks/cloudluks/luks"
)

// TestNoSecretLeftInMemory runs the CLI paths that take a passphrase and, after each run()
// returns, scans this process's writable memory for the passphrase, the volume key and their
// HMAC pad transforms (XOR 0x36 / 0x5c followed by the pad bytes). The audit found, after
// run(): the raw passphrase in the bufio.Reader on the piped-stdin path, and the pads kept
// by crypto/hmac. The test holds both secrets only masked (testenv.Mask), so the scan never
// finds the test's own copy; the image is formatted before the first scan, and that scan
// must be clean too.
func TestNoSecretLeftInMemory(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	require.NoError(t, os.WriteFile(img, make([]byte, 4<<20), 0o600))

	raw := make([]byte, 24)
	_, err := rand.Read(raw)
	require.NoError(t, err)
	for i := range raw { // a printable, newline-free passphrase
		raw[i] = 'a' + raw[i]%26
	}
	pass := testenv.Mask(raw, 0xa5)
	clear(raw)
	rawKey := make([]byte, 32)
	_, err = rand.Read(rawKey)
	require.NoError(t, err)
	vkey := testenv.Mask(rawKey, 0x5a)
	clear(rawKey)

	f, err := os.OpenFile(img, os.O_RDWR, 0)
	require.NoError(t, err)
	p, k := pass.Plain(), vkey.Plain()
	_, vk, err := luks.Format(context.Background(), f, p, luks.FormatOptions{
		Cipher: "aes-xts-plain64", KeySize: 256, ForceIterations: 1000, VolumeKey: k,
	})
	clear(p)
	clear(k)
	require.NoError(t, err)
	vk.Wipe()
	require.NoError(t, f.Close())

	// The key file holds the passphrase on disk by the user's choice; what matters is that
	// the bytes read from it do not stay in memory.
	kf := filepath.Join(dir, "keyfile")
	p = pass.Plain()
	require.NoError(t, os.WriteFile(kf, p, 0o600))
	clear(p)

	check := func(t *testing.T, when string) {
		t.Helper()
		// No runtime.GC() first: it can return freed spans to the kernel, which would hide
		// garbage that still holds a secret until the memory is reused.
		assert.Zero(t, testenv.MemCount(t, pass, 0, 0), "%s: the passphrase is in memory", when)
		assert.Zero(t, testenv.MemCount(t, vkey, 0, 0), "%s: the volume key is in memory", when)
		for _, pad := range []byte{0x36, 0x5c} {
			assert.Zero(t, testenv.MemCount(t, pass, pad, 4), "%s: passphrase XOR %#x", when, pad)
			assert.Zero(t, testenv.MemCount(t, vkey, pad, 4), "%s: volume key XOR %#x", when, pad)
		}
	}
	check(t, "after luks.Format")

	// Each path's stdin is a buffer the test clears after run, as the kernel's pipe buffer
	// is gone once read.
	paths := []struct {
		name  string
		args  []string
		stdin func() []byte
	}{
		{"piped stdin line", []string{"open", "--test-passphrase", img}, func() []byte {
			p := pass.Plain()
			line := append(make([]byte, 0, len(p)+1), p...) // not append(p, …): that would leave p's copy
			clear(p)
			return append(line, '\n')
		}},
		{"-d -", []string{"open", "--test-passphrase", "-d", "-", img}, pass.Plain},
		{"key file", []string{"open", "--test-passphrase", "--key-file", kf, img}, func() []byte { return nil }},
		{"wrong passphrase", []string{"open", "--test-passphrase", img}, func() []byte { return []byte("wrong\n") }},
	}
	for _, pc := range paths {
		t.Run(pc.name, func(t *testing.T) {
			in := pc.stdin()
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"gocryptsetup"}, pc.args...), bytes.NewReader(in), &stdout, &stderr, &fakeTerm{})
			clear(in)
			if pc.name == "wrong passphrase" {
				assert.Equal(t, exitPermission, code, stderr.String())
			} else {
				assert.Equal(t, exitOK, code, stderr.String())
			}
			check(t, "after "+pc.name)
		})
	}
}
