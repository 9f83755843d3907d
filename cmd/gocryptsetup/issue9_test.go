package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWriteTooLargeFile: a regular file on stdin larger than the payload is refused before a
// byte is written (it used to overwrite the whole payload and then fail).
func TestWriteTooLargeFile(t *testing.T) {
	dir := copyTemplates(t, "xts.img")
	in := filepath.Join(dir, "in")
	require.NoError(t, os.WriteFile(in, []byte("pass0\n"+strings.Repeat("x", 3<<20)), 0o600))
	f, err := os.Open(in)
	require.NoError(t, err)
	defer f.Close()
	before := fileSum(t, filepath.Join(dir, "xts.img"))
	cmd := exec.Command(binPath, "write", "xts.img")
	cmd.Dir = dir
	cmd.Stdin = f
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	require.True(t, ok, "%v: %s", err, out)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, string(out), "Input does not fit")
	assert.Equal(t, before, fileSum(t, filepath.Join(dir, "xts.img")), "payload unchanged")
}

// TestLuksFormatTooSmallSideBySide: luksFormat on short images, against cryptsetup 2.6.1.
func TestLuksFormatTooSmallSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	for _, detached := range []bool{false, true} {
		for _, size := range []int64{0, 1, 511, 512, 2 << 20, 2<<20 + 512} {
			run := func(prog string) (result, int64, int64) {
				dir := t.TempDir()
				require.NoError(t, os.WriteFile(filepath.Join(dir, "kf"), []byte("secret"), 0o600))
				require.NoError(t, os.WriteFile(filepath.Join(dir, "z.img"), nil, 0o600))
				require.NoError(t, os.Truncate(filepath.Join(dir, "z.img"), size))
				args := []string{"-q", "luksFormat", "--type", "luks1", iters}
				if detached {
					args = append(args, "--header", "h.img")
				}
				r := runIn(t, dir, prog, "", append(args, "z.img", "kf")...)
				fi, err := os.Stat(filepath.Join(dir, "z.img"))
				require.NoError(t, err)
				var hsize int64 = -1
				if hi, err := os.Stat(filepath.Join(dir, "h.img")); err == nil {
					hsize = hi.Size()
				}
				return r, fi.Size(), hsize
			}
			want, wantSize, wantH := run(cs)
			got, gotSize, gotH := run(binPath)
			assert.Equal(t, want.code, got.code, "size %d detached %v exit code; stderr %q", size, detached, got.stderr)
			assert.Equal(t, want.stderr, got.stderr, "size %d detached %v stderr", size, detached)
			assert.Equal(t, wantSize, gotSize, "size %d detached %v file size after", size, detached)
			assert.Equal(t, wantH, gotH, "size %d detached %v header file size", size, detached)
		}
	}
}

// luksFormat --offset used to be accepted and ignored: cryptsetup puts the payload at
// exactly that sector, gocryptsetup at its default alignment. It is refused now, before
// anything is asked or written.
func TestLuksFormatOffsetRefused(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "kf"), []byte("secret"), 0o600))
	img := filepath.Join(dir, "o.img")
	require.NoError(t, os.WriteFile(img, nil, 0o600))
	require.NoError(t, os.Truncate(img, 8<<20))
	r := runIn(t, dir, binPath, "", "-q", "luksFormat", "--type", "luks1", iters, "--offset", "8192", "o.img", "kf")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "Option --offset with luksFormat action is not supported")
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, 8<<20), b, "nothing written")
}

// TestWrongPassphraseTriesSideBySide (bug 3): at a terminal, how often each verb asks again
// after a wrong passphrase, and its exit code, against cryptsetup 2.6.1 on the same image
// (made by cryptsetup luksFormat --type luks1 --pbkdf-force-iterations 1000 -q). cryptsetup
// retries only open (--tries, default 3); the key-management verbs ask once and exit 2.
// gocryptsetup used to retry luksAddKey, luksRemoveKey, luksKillSlot and luksDump too.
func TestWrongPassphraseTriesSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	script := lookScript(t)
	const wrong = "a\nb\nc\nd\n"
	tests := []struct {
		name    string
		args    string
		typed   string
		prompt  string
		prompts int // how often cryptsetup asks
	}{
		{"open", "open --test-passphrase xts.img", wrong, "Enter passphrase for xts.img: ", 3},
		{"open -T 2", "open --test-passphrase -T 2 xts.img", wrong, "Enter passphrase for xts.img: ", 2},
		{"open --tries 4", "open --test-passphrase --tries 4 xts.img", wrong, "Enter passphrase for xts.img: ", 4},
		{"luksAddKey", "luksAddKey " + iters + " xts.img", wrong, "Enter any existing passphrase: ", 1},
		{"luksAddKey -T 3", "luksAddKey -T 3 " + iters + " xts.img", wrong, "Enter any existing passphrase: ", 1},
		{"luksRemoveKey", "luksRemoveKey xts.img", wrong, "Enter passphrase to be deleted: ", 1},
		{"luksRemoveKey --tries 3", "luksRemoveKey --tries 3 xts.img", wrong, "Enter passphrase to be deleted: ", 1},
		{"luksKillSlot", "luksKillSlot cbc.img 1", wrong, "Enter any remaining passphrase: ", 1},
		{"luksKillSlot -T 3", "luksKillSlot -T 3 cbc.img 1", wrong, "Enter any remaining passphrase: ", 1},
		{"luksChangeKey", "luksChangeKey " + iters + " xts.img", wrong, "Enter passphrase to be changed: ", 1},
		{"luksChangeKey -T 3", "luksChangeKey -T 3 " + iters + " xts.img", wrong, "Enter passphrase to be changed: ", 1},
		{"luksDump --dump-volume-key", "luksDump --dump-volume-key xts.img", "YES\n" + wrong, "Enter passphrase for xts.img: ", 1},
		{"luksDump --dump-volume-key -T 3", "luksDump --dump-volume-key -T 3 xts.img", "YES\n" + wrong, "Enter passphrase for xts.img: ", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dirA, dirB := copyTemplates(t, "xts.img", "cbc.img"), copyTemplates(t, "xts.img", "cbc.img")
			want := runPty(t, script, dirA, cs, tc.args, tc.typed, true)
			got := runPty(t, script, dirB, binPath, tc.args, tc.typed, true)
			assert.Equal(t, tc.prompts, strings.Count(want, tc.prompt), "cryptsetup's prompts: %q", want)
			assert.True(t, strings.HasSuffix(want, "rc=2\n"), "cryptsetup's exit code: %q", want)
			assert.Equal(t, want, got)
		})
	}
}

// TestLongPipedLineSideBySide: a passphrase piped on stdin is the whole first line, as in
// cryptsetup 2.6.1 (a 3000-byte line is kept whole); gocryptsetup used to cut it at 512
// bytes, so a volume formatted by one tool did not open with the other's key file.
func TestLongPipedLineSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	line := strings.Repeat("x", 3000)
	for _, pair := range [][2]string{{cs, binPath}, {binPath, cs}} {
		dir := copyTemplates(t, "zero.img")
		img := filepath.Join(dir, "l.img")
		require.NoError(t, os.WriteFile(img, make([]byte, 4<<20), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "k3000"), []byte(line), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "k512"), []byte(line[:512]), 0o600))
		f := runIn(t, dir, pair[0], line+"\n", "-q", "luksFormat", "--type", "luks1", iters, "l.img")
		require.Equal(t, 0, f.code, "%s luksFormat: %s", pair[0], f.stderr)
		for _, prog := range pair {
			assert.Equal(t, 0, runIn(t, dir, prog, "", "open", "--test-passphrase", "-d", "k3000", "l.img").code, "%s opens with the whole line", prog)
			assert.Equal(t, 2, runIn(t, dir, prog, "", "open", "--test-passphrase", "-d", "k512", "l.img").code, "%s refuses the first 512 bytes", prog)
			assert.Equal(t, 0, runIn(t, dir, prog, line+"\n", "open", "--test-passphrase", "l.img").code, "%s opens with the piped line", prog)
		}
	}
}

// TestVerbHelp: "help VERB" and "VERB --help" print the verb's synopsis, summary and example
// on stdout and exit 0; an unknown verb is a usage error.
func TestVerbHelp(t *testing.T) {
	const want = "Usage: gocryptsetup luksAddKey <device> [<new key file>]\n\nadd key to LUKS device\n\nExample:\n  gocryptsetup luksAddKey disk.img\n"
	for _, args := range [][]string{{"help", "luksAddKey"}, {"luksAddKey", "--help"}, {"--help", "luksAddKey"}, {"-?", "luksAddKey", "disk.img"}} {
		r := runIn(t, t.TempDir(), binPath, "", args...)
		assert.Equal(t, 0, r.code, "%v", args)
		assert.Equal(t, want, r.stdout, "%v", args)
		assert.Empty(t, r.stderr, "%v", args)
	}
	r := runIn(t, t.TempDir(), binPath, "", "help", "luksOpen")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "Usage: gocryptsetup open <device>")
	assert.Contains(t, r.stdout, "Aliases: luksOpen, plainOpen, create\n")
	r = runIn(t, t.TempDir(), binPath, "", "help")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "<action> is one of:")
	r = runIn(t, t.TempDir(), binPath, "", "help", "nope")
	assert.Equal(t, 1, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "Usage: gocryptsetup")
	assert.Contains(t, r.stderr, "gocryptsetup: Unknown action.")
	// --help with something that is not an action is the full help, exit 0, as in
	// cryptsetup (the verb table briefly made it "Unknown action.", exit 1).
	cs := cryptsetup(t)
	for _, args := range [][]string{{"--help", "nope"}, {"--help", "disk.img"}} {
		ours := runIn(t, t.TempDir(), binPath, "", args...)
		theirs := runIn(t, t.TempDir(), cs, "", args...)
		assert.Equal(t, theirs.code, ours.code, "%v", args)
		assert.Equal(t, 0, ours.code, "%v: %s", args, ours.stderr)
		assert.Contains(t, ours.stdout, "<action> is one of:", "%v", args)
	}
}
