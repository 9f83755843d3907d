package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCrossFormat formats an image with one tool and uses it with the other, both ways, for
// a matrix of format parameters: the other tool opens it (stdin passphrase and positional key
// file), dumps the same text, adds a key the first tool then accepts, and header backups made
// by one are restored by the other.
func TestCrossFormat(t *testing.T) {
	cs := cryptsetup(t)
	specs := []struct {
		name string
		args []string
	}{
		{"default aes-xts-plain64 512", nil},
		{"aes-xts-plain64 256", []string{"-s", "256"}},
		{"aes-cbc-essiv:sha256 256 sha1 (seed walkthrough)", []string{"-c", "aes-cbc-essiv:sha256", "-s", "256", "-h", "sha1"}},
		{"aes-cbc-plain64 128 sha512", []string{"-c", "aes-cbc-plain64", "-s", "128", "-h", "sha512"}},
		{"aes-xts-plain64 sha1 align 3000", []string{"-h", "sha1", "--align-payload", "3000"}},
		{"given uuid", []string{"--uuid", "01234567-89ab-cdef-0123-456789abcdef"}},
		{"detached header", []string{"--header", "hdr.img"}},
	}
	tools := []struct {
		name        string
		fmtr, other string
	}{
		{"gocryptsetup formats, cryptsetup uses", binPath, cs},
		{"cryptsetup formats, gocryptsetup uses", cs, binPath},
	}
	for _, spec := range specs {
		for _, tl := range tools {
			t.Run(spec.name+"/"+tl.name, func(t *testing.T) {
				dir := t.TempDir()
				require.NoError(t, os.WriteFile(filepath.Join(dir, "data.img"), nil, 0o600))
				require.NoError(t, os.Truncate(filepath.Join(dir, "data.img"), 8<<20))
				require.NoError(t, os.WriteFile(filepath.Join(dir, "k1"), []byte("key file one"), 0o600))
				detached := false
				for _, a := range spec.args {
					detached = detached || a == "--header"
				}
				if detached && tl.fmtr == cs {
					// cryptsetup wants an existing header file; ours creates it.
					require.NoError(t, os.WriteFile(filepath.Join(dir, "hdr.img"), make([]byte, 4<<20), 0o600))
				}
				run := func(prog, stdin string, args ...string) result {
					r := runIn(t, dir, prog, stdin, args...)
					require.Equal(t, 0, r.code, "%s %v: %s", filepath.Base(prog), args, r.stderr)
					return r
				}
				hdrArgs := []string{}
				if detached {
					hdrArgs = []string{"--header", "hdr.img"}
				}
				// Format with a positional key file.
				run(tl.fmtr, "", append([]string{"-q", "luksFormat", "--type", "luks1", iters, "data.img", "k1"}, spec.args...)...)
				// Both dump the same text.
				d1 := run(tl.fmtr, "", append([]string{"luksDump", "data.img"}, hdrArgs...)...)
				d2 := run(tl.other, "", append([]string{"luksDump", "data.img"}, hdrArgs...)...)
				assert.Equal(t, d1.stdout, d2.stdout)
				// The other tool opens it with the key file, adds a stdin passphrase, and the
				// formatting tool accepts that one.
				run(tl.other, "", append([]string{"open", "--test-passphrase", "-d", "k1", "data.img"}, hdrArgs...)...)
				run(tl.other, "key file one\nsecond pass\n", append([]string{"-v", "luksAddKey", iters, "data.img"}, hdrArgs...)...)
				r := run(tl.fmtr, "second pass\n", append([]string{"-v", "open", "--test-passphrase", "data.img"}, hdrArgs...)...)
				assert.Equal(t, "Key slot 1 unlocked.\nCommand successful.\n", r.stdout)
				// The volume keys agree.
				v1 := run(tl.fmtr, "second pass\n", append([]string{"luksDump", "--dump-volume-key", "data.img"}, hdrArgs...)...)
				v2 := run(tl.other, "", append([]string{"luksDump", "--dump-volume-key", "-d", "k1", "data.img"}, hdrArgs...)...)
				assert.Equal(t, v1.stdout, v2.stdout)
				// Header backup by one tool, restored by the other onto a wiped device.
				hdev := "data.img"
				if detached {
					hdev = "hdr.img"
				}
				run(tl.fmtr, "", "luksHeaderBackup", hdev, "--header-backup-file", "backup")
				orig, err := os.ReadFile(filepath.Join(dir, hdev))
				require.NoError(t, err)
				zero := make([]byte, 4096)
				require.NoError(t, os.WriteFile(filepath.Join(dir, hdev), append(zero, orig[4096:]...), 0o600))
				run(tl.other, "", "-q", "luksHeaderRestore", hdev, "--header-backup-file", "backup")
				after, err := os.ReadFile(filepath.Join(dir, hdev))
				require.NoError(t, err)
				assert.True(t, bytes.Equal(orig, after), "restored header area equals the original")
				run(tl.other, "second pass\n", append([]string{"open", "--test-passphrase", "data.img"}, hdrArgs...)...)
				// And the removal of the first key by the other tool is seen by the first.
				run(tl.other, "", append([]string{"luksRemoveKey", "data.img", "k1"}, hdrArgs...)...)
				fail := runIn(t, dir, tl.fmtr, "", append([]string{"open", "--test-passphrase", "-d", "k1", "data.img"}, hdrArgs...)...)
				assert.Equal(t, 2, fail.code)
			})
		}
	}
}

// TestReadWrite covers the rootless extensions: data written with "write" reads back with
// "read" at any offset, on an image cryptsetup formatted; the payload on disk is ciphertext;
// the passphrase can come first on stdin with the data after it.
func TestReadWrite(t *testing.T) {
	cs := cryptsetup(t)
	dir := copyTemplates(t, "xts.img", "zero.img", "key")
	data := make([]byte, 300000)
	_, err := rand.Read(data)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pass"), []byte("pass0"), 0o600))

	tests := []struct {
		name   string
		offset string
		stdin  []byte
		args   []string
	}{
		{name: "passphrase line then data", offset: "0", stdin: append([]byte("pass0\n"), data...)},
		{name: "key file, unaligned offset", offset: "12345", stdin: data, args: []string{"-d", "pass"}},
		{name: "key file with offset and size", offset: "1000000", stdin: data, args: []string{"-d", "key", "--keyfile-offset", "2", "-l", "5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := runIn(t, dir, binPath, string(tc.stdin), append([]string{"write", "xts.img", "--offset-bytes", tc.offset}, tc.args...)...)
			require.Equal(t, 0, w.code, w.stderr)
			r := runIn(t, dir, binPath, "", "read", "xts.img", "--offset-bytes="+tc.offset, "--size-bytes", "300000", "-d", "pass")
			require.Equal(t, 0, r.code, r.stderr)
			assert.True(t, bytes.Equal(data, []byte(r.stdout)), "read back what was written")
			raw, err := os.ReadFile(filepath.Join(dir, "xts.img"))
			require.NoError(t, err)
			assert.False(t, bytes.Contains(raw, data[:64]), "plaintext on disk")
			// The image is still a valid LUKS image for cryptsetup, header untouched.
			ok := runIn(t, dir, cs, "", "open", "--test-passphrase", "-d", "pass", "xts.img")
			assert.Equal(t, 0, ok.code, ok.stderr)
		})
	}

	bad := []struct {
		name  string
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{name: "wrong passphrase", stdin: "nope\nDATA", args: []string{"write", "xts.img"}, code: 2, msg: "No key available with this passphrase.\n"},
		{name: "read wrong passphrase", stdin: "nope\n", args: []string{"read", "xts.img"}, code: 2, msg: "No key available with this passphrase.\n"},
		{name: "write past the end", stdin: "pass0\n" + strings.Repeat("x", 3<<20), args: []string{"write", "xts.img"}, code: 1, msg: "Input does not fit"},
		{name: "offset past the end", stdin: "pass0\n", args: []string{"read", "xts.img", "--offset-bytes", "999999999"}, code: 1, msg: "beyond the end"},
		{name: "size past the end", stdin: "pass0\n", args: []string{"read", "xts.img", "--size-bytes", "999999999"}, code: 1, msg: "payload has"},
		{name: "not LUKS", stdin: "pass0\n", args: []string{"read", "zero.img"}, code: 1, msg: "Device zero.img is not a valid LUKS device.\n"},
		{name: "missing", stdin: "pass0\n", args: []string{"read", "missing.img"}, code: 4, msg: "Device missing.img does not exist or access denied.\n"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			before := fileSum(t, filepath.Join(dir, "xts.img"))
			r := runIn(t, dir, binPath, tc.stdin, tc.args...)
			assert.Equal(t, tc.code, r.code)
			assert.Contains(t, r.stderr, tc.msg)
			if tc.name != "write past the end" {
				assert.Equal(t, before, fileSum(t, filepath.Join(dir, "xts.img")), "image unchanged")
			}
		})
	}

	t.Run("whole payload size", func(t *testing.T) {
		r := runIn(t, dir, binPath, "pass0\n", "read", "xts.img")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Len(t, r.stdout, 2<<20, "4 MiB image minus the 2 MiB header area")
	})
}

// TestBenchmarkFormat checks the table has cryptsetup's lines and column layout.
func TestBenchmarkFormat(t *testing.T) {
	r := runIn(t, t.TempDir(), binPath, "", "benchmark", "--benchmark-time", "5")
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.Len(t, lines, 1+5+1+12)
	assert.Equal(t, "# Tests are approximate using memory only (no storage IO).", lines[0])
	pbkdf := regexp.MustCompile(`^PBKDF2-[a-z0-9]+ +\d+ iterations per second for 256-bit key$`)
	for i, h := range []string{"sha1", "sha256", "sha512", "ripemd160", "whirlpool"} {
		assert.Regexp(t, pbkdf, lines[1+i])
		assert.True(t, strings.HasPrefix(lines[1+i], "PBKDF2-"+h+" "), lines[1+i])
		assert.Len(t, strings.SplitN(lines[1+i], " iterations", 2)[0], len("PBKDF2-")+9+1+7, "PBKDF2-%%-9s %%7u")
	}
	assert.Equal(t, "#     Algorithm |       Key |      Encryption |      Decryption", lines[6])
	row := regexp.MustCompile(`^ {0,15}[a-z]+-(cbc|xts) {2} {0,9}\d+b {2} *\d+\.\d MiB/s {2} *\d+\.\d MiB/s$`)
	want := []string{"aes-cbc 128", "serpent-cbc 128", "twofish-cbc 128", "aes-cbc 256", "serpent-cbc 256", "twofish-cbc 256",
		"aes-xts 256", "serpent-xts 256", "twofish-xts 256", "aes-xts 512", "serpent-xts 512", "twofish-xts 512"}
	for i, w := range want {
		l := lines[7+i]
		assert.Regexp(t, row, l)
		f := strings.Fields(l)
		assert.Equal(t, w, f[0]+" "+strings.TrimSuffix(f[1], "b"))
		assert.Equal(t, 15, strings.Index(l, f[0])+len(f[0]), "cipher right-aligned in 15 columns: %q", l)
	}

	one := runIn(t, t.TempDir(), binPath, "", "benchmark", "-c", "aes-xts-plain64", "-s", "512", "--benchmark-time", "5")
	require.Equal(t, 0, one.code, one.stderr)
	l := strings.Split(strings.TrimSuffix(one.stdout, "\n"), "\n")
	require.Len(t, l, 3)
	assert.Regexp(t, `^        aes-xts        512b `, l[2])
}

// TestHelpVersion: --help and --version print on stdout and exit 0.
func TestHelpVersion(t *testing.T) {
	h := runIn(t, t.TempDir(), binPath, "", "--help")
	assert.Equal(t, 0, h.code)
	for _, v := range verbTable() {
		assert.Contains(t, h.stdout, "\t"+v.Name)
	}
	for _, flag := range []string{"-V", "--version"} {
		v := runIn(t, t.TempDir(), binPath, "", flag)
		assert.Equal(t, 0, v.code)
		assert.Regexp(t, `^gocryptsetup \S+( rev [0-9a-f]{1,7}(-dirty)?)? \(cryptsetup 2\.6\.1 compatible\)\n$`, v.stdout)
		assert.Empty(t, v.stderr)
	}
	// The compiled-in defaults are cryptsetup 2.6.1's (LUKS2 by default, argon2id), less the
	// token plugin and loop-AES lines (no plugins, no loop-AES here).
	defaults := func(help string) string {
		i := strings.Index(help, "Default compiled-in metadata format")
		require.GreaterOrEqual(t, i, 0, help)
		var out []string
		for _, l := range strings.Split(help[i:], "\n") {
			if !strings.Contains(l, "token plugin") && !strings.Contains(l, "loop-AES") && (l != "" || (len(out) > 0 && out[len(out)-1] != "")) {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	ch := runIn(t, t.TempDir(), cryptsetup(t), "", "--help")
	assert.Equal(t, defaults(ch.stdout), defaults(h.stdout))
	assert.NotContains(t, h.stdout, "LUKS1 only")
	// No arguments at all: the usage on stderr, nothing on stdout, exit 1 (as cryptsetup).
	n := runIn(t, t.TempDir(), binPath, "")
	assert.Equal(t, 1, n.code)
	assert.Empty(t, n.stdout)
	assert.Contains(t, n.stderr, "Usage: gocryptsetup")
	// --type luks2 is a type the key-slot verbs take, as cryptsetup does.
	dir := t.TempDir()
	want := runIn(t, dir, cryptsetup(t), "", "--type", "luks2", "luksAddKey", "x")
	u := runIn(t, dir, binPath, "", "--type", "luks2", "luksAddKey", "x")
	assert.Equal(t, want.code, u.code)
	assert.Equal(t, want.stderr, u.stderr)
}

// TestTerminalPrompts runs both tools under a pseudo-terminal (util-linux script) with the same
// typed input and compares what the terminal shows and the exit codes: the luksFormat
// confirmation, the passphrase asked twice, "Passphrases do not match.", the three tries on a
// wrong passphrase, and the last-key-slot warning.
func TestTerminalPrompts(t *testing.T) {
	cs := cryptsetup(t)
	script := lookScript(t)
	tests := []struct {
		name  string
		typed string
		args  string
		code  string
	}{
		{name: "format confirmed", typed: "YES\npw\npw\n", args: "luksFormat --type luks1 " + iters + " zero.img", code: "0"},
		{name: "format aborted", typed: "no\n", args: "luksFormat --type luks1 " + iters + " zero.img", code: "1"},
		{name: "format mismatch", typed: "YES\npw\npx\n", args: "luksFormat --type luks1 " + iters + " zero.img", code: "2"},
		// Both answers are cut at 512 characters before they are compared.
		{name: "format long verify", typed: "YES\n" + strings.Repeat("t", 600) + "\n" + strings.Repeat("t", 700) + "\n", args: "luksFormat --type luks1 " + iters + " zero.img", code: "0"},
		{name: "format existing LUKS", typed: "YES\npw\npw\n", args: "luksFormat --type luks1 " + iters + " xts.img", code: "0"},
		{name: "three tries", typed: "a\nb\nc\n", args: "open --test-passphrase xts.img", code: "2"},
		{name: "second try right", typed: "a\npass0\n", args: "open --test-passphrase -v xts.img", code: "0"},
		{name: "tries 1", typed: "a\n", args: "open --test-passphrase --tries 1 xts.img", code: "2"},
		{name: "dump volume key confirmed", typed: "YES\npass0\n", args: "luksDump --dump-volume-key xts.img", code: "0"},
		{name: "dump volume key refused", typed: "no\n", args: "luksDump --dump-volume-key xts.img", code: "2"},
		{name: "add key verified", typed: "pass0\nnew\nnew\n", args: "luksAddKey -v " + iters + " xts.img", code: "0"},
		{name: "remove last key refused", typed: "pass0\nno\n", args: "luksRemoveKey xts.img", code: "2"},
		{name: "kill last slot refused", typed: "no\n", args: "luksKillSlot xts.img 0", code: "2"},
		{name: "change uuid refused", typed: "no\n", args: "luksUUID --uuid 12345678-1234-1234-1234-123456789abc xts.img", code: "2"},
		{name: "restore refused", typed: "no\n", args: "luksHeaderRestore xts.img --header-backup-file xts.img", code: "1"},
		{name: "luks2 add key verified", typed: "pass0\nnew\nnew\n", args: "luksAddKey -v --pbkdf pbkdf2 " + iters + " luks2.img", code: "0"},
		{name: "luks2 add key mismatch", typed: "pass0\nnew\nold\n", args: "luksAddKey -v --pbkdf pbkdf2 " + iters + " luks2.img", code: "2"},
		{name: "luks2 change key", typed: "pass0\nnew\nnew\n", args: "luksChangeKey -v --pbkdf pbkdf2 " + iters + " luks2.img", code: "0"},
		{name: "luks2 remove last key refused", typed: "pass0\nno\n", args: "luksRemoveKey -v luks2.img", code: "2"},
		{name: "luks2 remove last key confirmed", typed: "pass0\nYES\n", args: "luksRemoveKey -v luks2.img", code: "0"},
		{name: "luks2 kill last slot refused", typed: "no\n", args: "luksKillSlot luks2.img 0", code: "2"},
		{name: "luks2 restore refused", typed: "no\n", args: "luksHeaderRestore luks2.img --header-backup-file luks2.img", code: "1"},
		{name: "luks2 restore confirmed", typed: "YES\n", args: "luksHeaderRestore -v luks2.img --header-backup-file luks2.img", code: "0"},
		{name: "luks2 change uuid refused", typed: "no\n", args: "luksUUID --uuid 12345678-1234-1234-1234-123456789abc luks2.img", code: "2"},
		{name: "luks2 change uuid confirmed", typed: "YES\n", args: "luksUUID -v --uuid 12345678-1234-1234-1234-123456789abc luks2.img", code: "0"},
		{name: "luks2 kill last slot confirmed", typed: "YES\npass0\n", args: "luksKillSlot -v luks2.img 0", code: "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dirA, dirB := copyTemplates(t, "xts.img", "zero.img", "luks2.img"), copyTemplates(t, "xts.img", "zero.img", "luks2.img")
			want := underPty(t, script, dirA, cs, tc.args, tc.typed)
			got := underPty(t, script, dirB, binPath, tc.args, tc.typed)
			assert.Equal(t, want, got)
			assert.True(t, strings.HasSuffix(got, "rc="+tc.code+"\n"), "exit code: %q", got)
		})
	}
}

func lookScript(t *testing.T) string {
	t.Helper()
	// util-linux's script(1) is essential on Debian; elsewhere the prompt tests skip locally
	// and fail under CI like every other missing tool.
	return testenv.LookPath(t, "script", "apt-get install bsdutils")
}

// underPty runs "prog args" with a pseudo-terminal as stdin, stdout and stderr and types each
// input line when the program shows a prompt (output ending in ": "), the way a person would:
// cryptsetup flushes type-ahead input (TCSAFLUSH) when it turns echo off, so lines must not
// arrive early. It returns what the terminal showed, CRs and the echo of typed lines removed,
// plus "rc=N".
func underPty(t *testing.T, script, dir, prog, args, typed string) string {
	t.Helper()
	return runPty(t, script, dir, prog, args, typed, false)
}

// runPty is underPty; with mayExit the program may end before every line is typed (the lines
// left over are what it did not ask for).
func runPty(t *testing.T, script, dir, prog, args, typed string, mayExit bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "-qec", prog+" "+args+"; echo rc=$?", "/dev/null")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	outPipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	var (
		mu    sync.Mutex
		out   []byte
		grown = make(chan struct{}, 1)
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := outPipe.Read(buf)
			mu.Lock()
			out = append(out, buf[:n]...)
			mu.Unlock()
			select {
			case grown <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	lines := strings.SplitAfter(typed, "\n")
	answeredAt := 0
typing:
	for _, l := range lines {
		if l == "" {
			continue
		}
		for {
			mu.Lock()
			s := strings.ReplaceAll(string(out), "\r", "")
			ready := len(out) > answeredAt && strings.HasSuffix(s, ": ")
			mu.Unlock()
			if ready {
				break
			}
			select {
			case <-grown:
			case <-done:
				if mayExit {
					break typing
				}
				t.Fatalf("%s exited before reading %q; terminal: %q", prog, l, s)
			case <-ctx.Done():
				t.Fatalf("no prompt for %q; terminal: %q", l, s)
			}
		}
		// Let the program switch echo off after printing its prompt.
		time.Sleep(150 * time.Millisecond)
		mu.Lock()
		answeredAt = len(out)
		mu.Unlock()
		_, err := io.WriteString(in, l)
		require.NoError(t, err)
	}
	<-done
	in.Close()
	require.NoError(t, cmd.Wait())
	s := strings.ReplaceAll(string(out), "\r", "")
	for _, l := range lines {
		if l != "" {
			s = strings.Replace(s, l, "", 1) // the echo of a visible answer (YES, no)
		}
	}
	return s
}
