package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTokenSideBySide runs a sequence of token commands with cryptsetup 2.6.1 and with
// gocryptsetup on copies of one LUKS2 image: after every step the exit code, stdout and
// stderr match (the last line for usage errors) and both metadata copies are
// byte-identical.
func TestTokenSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	dirs := [2]string{t.TempDir(), t.TempDir()}
	for _, d := range dirs {
		require.NoError(t, os.WriteFile(filepath.Join(d, "img"), nil, 0o600))
		require.NoError(t, os.Truncate(filepath.Join(d, "img"), 32<<20))
		require.NoError(t, os.WriteFile(filepath.Join(d, "tok.json"), []byte(`{"type":"x-file","keyslots":["0"],"blob":"AJ4/","pcrs":[7]}`), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(d, "zero.img"), make([]byte, 1<<20), 0o600))
	}
	r := runIn(t, dirs[0], cs, "pw\n", "luksFormat", "--type", "luks2", "-q", "--pbkdf", "pbkdf2", iters, "img")
	require.Equal(t, 0, r.code, r.stderr)
	b, err := os.ReadFile(filepath.Join(dirs[0], "img"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dirs[1], "img"), b, 0o600))
	meta := func(d string) []byte {
		b, err := os.ReadFile(filepath.Join(d, "img"))
		require.NoError(t, err)
		return b[:2*binary.BigEndian.Uint64(b[8:16])]
	}
	steps := []struct {
		stdin   string
		args    []string
		code    int
		sameMsg bool
	}{
		{`{"type":"clevis","keyslots":["0"],"jwe":{"a":"b/c"}}`, []string{"-v", "token", "import", "img"}, 0, false},
		{"", []string{"-v", "token", "import", "--json-file", "tok.json", "--token-id", "5", "img"}, 0, false},
		{"", []string{"token", "import", "--json-file", "tok.json", "--token-id", "5", "img"}, 1, false},
		{`{"type":"x","keyslots":[]}`, []string{"token", "import", "--token-id", "5", "--token-replace", "--key-slot", "0", "img"}, 0, false},
		{`{"type":"x","keyslots":["3"]}`, []string{"token", "import", "img"}, 1, false},
		{`{"type":"x","keyslots":[]}`, []string{"token", "import", "--key-slot", "4", "img"}, 1, false},
		{`not json`, []string{"token", "import", "img"}, 1, false},
		{"", []string{"-v", "token", "add", "--key-description", "cs:vol", "img"}, 0, false},
		{"", []string{"token", "add", "img"}, 1, true},
		{"", []string{"token", "export", "img"}, 1, true},
		{"", []string{"token", "export", "--token-id", "0", "img"}, 0, false},
		{"", []string{"token", "export", "--token-id", "5", "--json-file", "out.json", "img"}, 0, false},
		{"", []string{"token", "export", "--token-id", "7", "img"}, 1, false},
		{"", []string{"-v", "token", "remove", "--token-id", "0", "img"}, 0, false},
		{"", []string{"token", "remove", "--token-id", "0", "img"}, 1, false},
		{"", []string{"token", "frob", "img"}, 1, true},
		{"", []string{"token", "import", "zero.img"}, 1, false},
		{"", []string{"token", "import", "--unbound", "img"}, 1, true},
	}
	for _, s := range steps {
		want := runIn(t, dirs[0], cs, s.stdin, s.args...)
		got := runIn(t, dirs[1], binPath, s.stdin, s.args...)
		name := strings.Join(s.args, " ")
		require.Equal(t, s.code, want.code, "%s: cryptsetup: %s", name, want.stderr)
		assert.Equal(t, want.code, got.code, "%s: exit code (ours: %s)", name, got.stderr)
		if s.sameMsg {
			assert.Equal(t, lastLine(want.stderr), strings.Replace(lastLine(got.stderr), "gocryptsetup", "cryptsetup", 1), name)
		} else {
			assert.Equal(t, want.stdout, got.stdout, "%s: stdout", name)
			assert.Equal(t, want.stderr, got.stderr, "%s: stderr", name)
		}
		assert.True(t, bytes.Equal(meta(dirs[0]), meta(dirs[1])), "%s: metadata differs", name)
	}
	a, err := os.ReadFile(filepath.Join(dirs[0], "out.json"))
	require.NoError(t, err)
	g, err := os.ReadFile(filepath.Join(dirs[1], "out.json"))
	require.NoError(t, err)
	assert.Equal(t, string(a), string(g))
}
