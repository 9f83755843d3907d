package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keyslotStep is one key-slot command run by both tools on their own copy of an image.
type keyslotStep struct {
	args    []string
	stdin   string
	code    int
	lastMsg bool // usage errors: compare the last stderr line only (the usage text differs)
}

// luks2KeyslotScript adds, refuses, kills, changes and removes key slots on a LUKS2
// image: --new-key-slot and -S (old and new syntax), the PBKDF options of the new slot,
// the full/invalid slot messages, luksKillSlot's passphrase of a remaining slot, the last
// slot rule.
func luks2KeyslotScript() []keyslotStep {
	F := []string{"--pbkdf", "pbkdf2", iters}
	cmd := func(code int, stdin string, args ...string) keyslotStep {
		return keyslotStep{args: args, stdin: stdin, code: code}
	}
	with := func(verb string, extra ...string) []string {
		return append(append([]string{verb, "-v"}, F...), append(extra, "img")...)
	}
	kill := func(slot string, extra ...string) []string {
		return append(append([]string{"luksKillSlot", "-v"}, extra...), "img", slot)
	}
	return []keyslotStep{
		cmd(0, "pass0\nA\n", with("luksAddKey")...),
		cmd(0, "pass0\nB\n", with("luksAddKey", "-S", "3")...),
		cmd(1, "pass0\nC\n", with("luksAddKey", "-S", "3")...),
		cmd(1, "pass0\nC\n", with("luksAddKey", "-S", "32")...),
		cmd(0, "pass0\nC\n", with("luksAddKey", "-S", "0", "--new-key-slot", "5")...),
		cmd(2, "A\nD\n", with("luksAddKey", "-S", "0", "--new-key-slot", "6")...),
		cmd(2, "wrong\nD\n", with("luksAddKey")...),
		cmd(0, "pass0\nE\n", "luksAddKey", "-v", "--pbkdf", "argon2id", "--pbkdf-force-iterations", "4", "--pbkdf-memory", "32", "--pbkdf-parallel", "1", "img"),
		cmd(0, "A\nI\n", "luksAddKey", "-v", "--pbkdf", "argon2i", "--pbkdf-force-iterations", "5", "--pbkdf-memory", "64", "--pbkdf-parallel", "2", "--new-key-slot", "9", "img"),
		{args: []string{"luksAddKey", "--pbkdf", "scrypt", "img"}, stdin: "pass0\nE\n", code: 1, lastMsg: true},
		cmd(1, "pass0\nE\n", "luksAddKey", "-v", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "10", "img"),
		cmd(1, "pass0\nE\n", "luksAddKey", "-v", "--pbkdf", "argon2id", "--pbkdf-force-iterations", "3", "img"),
		cmd(0, "", with("luksAddKey", "-d", "kf", "--new-keyfile", "nk")...),
		cmd(0, "A\n", append(with("luksAddKey", "-S", "12"), "nk")...),
		cmd(2, "B\n", kill("3")...),
		cmd(0, "A\n", kill("3")...),
		cmd(1, "A\n", kill("3")...),
		cmd(1, "A\n", kill("32")...),
		cmd(1, "A\n", kill("40")...),
		cmd(0, "", kill("12", "-d", "nk")...),
		cmd(0, "C\nC2\n", with("luksChangeKey")...),
		cmd(0, "C2\nC3\n", with("luksChangeKey", "-S", "5")...),
		cmd(2, "C3\nX\n", with("luksChangeKey", "-S", "1")...),
		cmd(2, "nothing\nX\n", with("luksChangeKey")...),
		cmd(0, "I\nI2\n", "luksChangeKey", "-v", "--pbkdf", "argon2id", "--pbkdf-force-iterations", "4", "--pbkdf-memory", "32", "--pbkdf-parallel", "1", "img"),
		cmd(0, "C3\n", "luksRemoveKey", "-v", "img"),
		cmd(2, "C3\n", "luksRemoveKey", "-v", "img"),
		cmd(0, "", "luksRemoveKey", "-v", "img", "nk"),
		cmd(1, "pass0\n", "luksAddKey", "-v", "--type", "luks1", "img"),
	}
}

// The script's end state: passphrase → slot it opens.
var luks2KeyslotFinal = map[string]string{"pass0": "0", "A": "1", "E": "2", "I2": "9"}

// TestLuks2KeyslotVerbsSideBySide runs the key-slot verbs with cryptsetup 2.6.1 and with
// gocryptsetup, step by step, each on its own copy of the same LUKS2 image — one made by
// cryptsetup, one made by gocryptsetup luksFormat: same exit code, stdout and stderr at
// every step; the same luksDump at the end (salts and digests masked); each tool then
// opens the other's result with every passphrase left, through the same slot.
func TestLuks2KeyslotVerbsSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	const uuid = "--uuid=9d3c1b52-7a4e-4f10-b2c3-d4e5f6a7b8c9"
	for _, maker := range []string{"cryptsetup", "gocryptsetup"} {
		t.Run("made by "+maker, func(t *testing.T) {
			prog := map[string]string{"cryptsetup": cs, "gocryptsetup": binPath}[maker]
			dirs := [2]string{t.TempDir(), t.TempDir()}
			for _, d := range dirs {
				require.NoError(t, os.WriteFile(filepath.Join(d, "kf"), []byte("pass0"), 0o600))
				require.NoError(t, os.WriteFile(filepath.Join(d, "nk"), []byte("newkey"), 0o600))
				require.NoError(t, os.WriteFile(filepath.Join(d, "img"), nil, 0o600))
				require.NoError(t, os.Truncate(filepath.Join(d, "img"), 24<<20))
			}
			mk := runIn(t, dirs[0], prog, "pass0\n", "luksFormat", "-q", uuid, "--pbkdf", "pbkdf2", iters, "img")
			require.Equal(t, 0, mk.code, mk.stderr)
			copyFile(t, filepath.Join(dirs[0], "img"), filepath.Join(dirs[1], "img"))

			for i, st := range luks2KeyslotScript() {
				want := runIn(t, dirs[0], cs, st.stdin, st.args...)
				got := runIn(t, dirs[1], binPath, st.stdin, st.args...)
				require.Equal(t, st.code, want.code, "step %d %v: cryptsetup: %s", i, st.args, want.stderr)
				assert.Equal(t, want.code, got.code, "step %d %v: exit code (ours: %s)", i, st.args, got.stderr)
				if st.lastMsg {
					assert.Equal(t, lastLine(want.stderr), lastLine(got.stderr), "step %d %v", i, st.args)
				} else {
					assert.Equal(t, want.stdout, got.stdout, "step %d %v: stdout", i, st.args)
					assert.Equal(t, want.stderr, got.stderr, "step %d %v: stderr", i, st.args)
				}
				if t.Failed() {
					return
				}
			}
			var dumps [2]string
			for i, d := range dirs {
				r := runIn(t, d, cs, "", "luksDump", "img")
				require.Equal(t, 0, r.code, r.stderr)
				dumps[i] = luks2Random.ReplaceAllString(r.stdout, "${1}<random>\n")
			}
			assert.Equal(t, dumps[0], dumps[1], "luksDump (cryptsetup) of both results")
			for pass, slot := range luks2KeyslotFinal {
				// Each tool opens the other's image.
				for i, p := range []string{binPath, cs} {
					r := runIn(t, dirs[i], p, pass+"\n", "open", "-v", "--test-passphrase", "img")
					assert.Equal(t, 0, r.code, "%s opens %q: %s", p, pass, r.stderr)
					assert.Equal(t, "No usable token is available.\nKey slot "+slot+" unlocked.\nCommand successful.\n", r.stdout, "%s, passphrase %q", p, pass)
				}
			}
			for _, gone := range []string{"B", "C", "C2", "C3", "I"} {
				r := runIn(t, dirs[1], cs, gone+"\n", "open", "--test-passphrase", "img")
				assert.Equal(t, 2, r.code, "passphrase %q no longer opens ours", gone)
			}
			// The last slot: removed with -q after the others are killed, then nothing opens.
			for i, d := range dirs {
				p := []string{cs, binPath}[i]
				for _, s := range []string{"9", "2", "1"} {
					r := runIn(t, d, p, "pass0\n", "luksKillSlot", "img", s)
					require.Equal(t, 0, r.code, "%s kill %s: %s", p, s, r.stderr)
				}
				r := runIn(t, d, p, "pass0\n", "luksRemoveKey", "-v", "-q", "img")
				require.Equal(t, 0, r.code, r.stderr)
				assert.Equal(t, "Key slot 0 unlocked.\nKeyslot 0 is selected for deletion.\nKey slot 0 removed.\nCommand successful.\n", r.stdout)
				r = runIn(t, d, cs, "pass0\n", "open", "--test-passphrase", "img")
				assert.Equal(t, 1, r.code, "no slot left: %s", r.stderr)
				assert.True(t, strings.Contains(r.stderr, "No usable keyslot is available."), r.stderr)
			}
		})
	}
}
