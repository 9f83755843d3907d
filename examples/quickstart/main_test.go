package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

func TestQuickstartRun(t *testing.T) {
	tests := []struct {
		name       string
		passphrase []byte
		wantPass   string
	}{
		{name: "demo passphrase", passphrase: nil, wantPass: demoPassphrase},
		{name: "given passphrase", passphrase: []byte("from stdin 123"), wantPass: "from stdin 123"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var out bytes.Buffer
			err := run(context.Background(), &out, config{Dir: dir, Passphrase: tc.passphrase, ImageSize: 8 << 20, ForceIter: 1000})
			require.NoError(t, err, out.String())
			text := out.String()
			img := filepath.Join(dir, "quickstart.img")
			for _, want := range []string{
				"== 1. Create a 8 MiB sparse image file",
				"LUKS header information for " + img + "\n\nVersion:       \t1\n",
				"Cipher mode:   \txts-plain64\n",
				"key slot 0 unlocked",
				"wrote and read back 65536 bytes: identical",
				"does not occur anywhere in quickstart.img",
				"cryptsetup open --test-passphrase " + img,
				"sudo cryptsetup open " + img + " quickstart",
				"The image is kept in " + dir,
			} {
				assert.Contains(t, text, want)
			}
			if tc.passphrase == nil {
				assert.Contains(t, text, "DEMO passphrase")
			} else {
				assert.NotContains(t, text, string(tc.passphrase), "a passphrase given by the user is never printed")
			}

			raw, err := os.ReadFile(img)
			require.NoError(t, err)
			assert.False(t, bytes.Contains(raw, []byte("cloudluks quickstart line")), "plaintext on disk")

			// The same image, checked by the real tool: the passphrase opens it and the dump
			// printed by quickstart is cryptsetup's.
			cs := testenv.LookPath(t, "cryptsetup", "apt-get install cryptsetup-bin")
			cmd := exec.Command(cs, "open", "--test-passphrase", img)
			cmd.Stdin = strings.NewReader(tc.wantPass + "\n")
			b, err := cmd.CombinedOutput()
			require.NoError(t, err, "cryptsetup open --test-passphrase: %s", b)
			dump, err := exec.Command(cs, "luksDump", img).Output()
			require.NoError(t, err)
			assert.Contains(t, text, string(dump), "quickstart's dump equals cryptsetup luksDump")
		})
	}
}

func TestQuickstartTempDirRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, config{ImageSize: 4 << 20, ForceIter: 1000}))
	assert.Contains(t, out.String(), "The image is deleted now")
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries, "the temporary directory is cleaned up")
}

func TestHexLines(t *testing.T) {
	got := hexLines([]byte("0123456789abcdefXY"), 0x200)
	assert.Equal(t, "  00000200  30313233343536373839616263646566\n  00000210  5859\n", got)
}
