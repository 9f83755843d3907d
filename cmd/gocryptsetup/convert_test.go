package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConvertSideBySide converts with cryptsetup 2.6.1 and gocryptsetup on copies: same
// exit code, stdout and stderr; after a conversion to LUKS1 the images are byte-identical,
// after one to LUKS2 they dump the same and cryptsetup opens ours.
func TestConvertSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	dirs := [2]string{t.TempDir(), t.TempDir()}
	for _, d := range dirs {
		require.NoError(t, os.WriteFile(filepath.Join(d, "img"), nil, 0o600))
		require.NoError(t, os.Truncate(filepath.Join(d, "img"), 24<<20))
	}
	r := runIn(t, dirs[0], cs, "pw\n", "luksFormat", "--type", "luks1", "-q", iters, "img")
	require.Equal(t, 0, r.code, r.stderr)
	b, err := os.ReadFile(filepath.Join(dirs[0], "img"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dirs[1], "img"), b, 0o600))
	steps := []struct {
		args []string
		code int
	}{
		{[]string{"convert", "img"}, 1},
		{[]string{"convert", "--type", "luks3", "img"}, 1},
		{[]string{"convert", "--type", "luks1", "-q", "img"}, 1},
		{[]string{"-v", "convert", "--type", "luks2", "-q", "img"}, 0},
		{[]string{"convert", "--type", "luks2", "img"}, 1},
		{[]string{"convert", "--type", "luks2", "missing.img"}, 4},
		{[]string{"-v", "convert", "--type", "luks1", "img"}, 0},
	}
	for _, s := range steps {
		want := runIn(t, dirs[0], cs, "", s.args...)
		got := runIn(t, dirs[1], binPath, "", s.args...)
		require.Equal(t, s.code, want.code, "%v: cryptsetup: %s", s.args, want.stderr)
		assert.Equal(t, want.code, got.code, "%v: ours: %s", s.args, got.stderr)
		assert.Equal(t, want.stdout, got.stdout, "%v", s.args)
		assert.Equal(t, want.stderr, got.stderr, "%v", s.args)
		if want.code == 0 {
			da := runIn(t, dirs[0], cs, "", "luksDump", "img")
			db := runIn(t, dirs[1], cs, "", "luksDump", "img")
			assert.Equal(t, da.stdout, db.stdout, "%v: luksDump", s.args)
			assert.Equal(t, 0, runIn(t, dirs[1], cs, "pw\n", "open", "--test-passphrase", "img").code)
		}
	}
	a, _ := os.ReadFile(filepath.Join(dirs[0], "img"))
	g, _ := os.ReadFile(filepath.Join(dirs[1], "img"))
	assert.True(t, string(a) == string(g), "images byte-identical after the round trip")
}
