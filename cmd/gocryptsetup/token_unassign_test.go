package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTokenUnassignSideBySide runs `token unassign` (and the `token assign` that
// cryptsetup 2.6.1 does not have) with cryptsetup and with gocryptsetup, step by step on
// copies of one LUKS2 image whose token 0 is a luks2-keyring on slot 0 and token 1 an
// imported token on slots 0 and 1: after every step the exit code, stdout and stderr are
// the same and so are both images, byte for byte. The cases: success (-v), not assigned
// (any more), no such token, no such slot, slot and token out of range, the options the
// action needs, an unknown action, a LUKS1 device, a missing device.
func TestTokenUnassignSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	dirs := [2]string{t.TempDir(), t.TempDir()}
	for _, s := range []struct {
		stdin string
		args  []string
	}{
		{"pass0", []string{"luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2", iters, "img", "-"}},
		{"pass0\npass1\n", []string{"luksAddKey", "-q", "--pbkdf", "pbkdf2", iters, "img"}},
		{"", []string{"token", "add", "--key-description", "tk", "-S", "0", "img"}},
		{`{"type":"x-t","keyslots":["0","1"],"k":[1,2]}`, []string{"token", "import", "img"}},
		{"pass0", []string{"luksFormat", "-q", "--type", "luks1", "--pbkdf-force-iterations", "1000", "l1.img", "-"}},
	} {
		if s.args[0] == "luksFormat" {
			img := filepath.Join(dirs[0], s.args[len(s.args)-2])
			require.NoError(t, os.WriteFile(img, nil, 0o600))
			require.NoError(t, os.Truncate(img, 20<<20))
		}
		r := runIn(t, dirs[0], cs, s.stdin, s.args...)
		require.Equal(t, 0, r.code, "%v: %s", s.args, r.stderr)
	}
	for _, f := range []string{"img", "l1.img"} {
		copyFile(t, filepath.Join(dirs[0], f), filepath.Join(dirs[1], f))
	}
	un := func(extra ...string) []string { return append([]string{"token", "unassign"}, extra...) }
	steps := []struct {
		args  []string
		code  int
		usage bool
	}{
		{un("-v", "--token-id", "1", "-S", "1", "img"), 0, false},
		{un("--token-id", "1", "-S", "1", "img"), 1, false},
		{un("-v", "--token-id", "1", "--key-slot", "0", "img"), 0, false},
		{un("--token-id", "0", "-S", "1", "img"), 1, false},
		{un("--token-id", "5", "-S", "0", "img"), 1, false},
		{un("--token-id", "0", "-S", "7", "img"), 1, false},
		{un("--token-id", "0", "-S", "32", "img"), 1, false},
		{un("--token-id", "32", "-S", "0", "img"), 1, false},
		{un("--token-id", "-1", "-S", "0", "img"), 1, false},
		{un("-S", "0", "img"), 1, true},
		{un("--token-id", "0", "img"), 1, true},
		{[]string{"token", "assign", "--token-id", "0", "-S", "1", "img"}, 1, true},
		{un("--token-id", "0", "-S", "0", "l1.img"), 1, false},
		{un("--token-id", "0", "-S", "0", "missing.img"), 4, false},
		{un("--token-id", "0", "-S", "0", "img"), 0, false},
		{[]string{"luksDump", "img"}, 0, false},
	}
	for _, s := range steps {
		var res [2]result
		for i, prog := range []string{cs, binPath} {
			res[i] = runIn(t, dirs[i], prog, "", s.args...)
		}
		name := filepath.Join(s.args...)
		assert.Equal(t, s.code, res[0].code, "%s: cryptsetup: %s", name, res[0].stderr)
		if s.usage {
			// The usage text differs; the last line names the program (PROG: …).
			res[0].stderr, res[1].stderr = lastLine(res[0].stderr), lastLine(res[1].stderr)
		}
		assert.Equal(t, res[0], res[1], name)
		assert.Equal(t, fileSum(t, filepath.Join(dirs[0], "img")), fileSum(t, filepath.Join(dirs[1], "img")), "%s: images differ", name)
	}
}
