package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// binPath is the gocryptsetup binary built once by TestMain; the CLI tests run it as a
// subprocess, exactly as users and scripts do.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gocryptsetup-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "gocryptsetup")
	goBin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "the CLI tests build the binary and need the go command on PATH:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	build := exec.Command(goBin, "build", "-o", binPath, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building gocryptsetup: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// runIn runs prog with args in dir, stdin from the string (nil stdin = /dev/null).
func runIn(t *testing.T, dir, prog, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "running %s %v: %v", prog, args, err)
		code = ee.ExitCode()
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func cryptsetup(t *testing.T) string {
	t.Helper()
	return testenv.LookPath(t, "cryptsetup", "apt-get install cryptsetup-bin")
}

const iters = "--pbkdf-force-iterations=1000"

// template images made once by real cryptsetup, copied into each test directory.
var (
	templatesOnce sync.Once
	templatesDir  string
	templatesErr  error
)

// templates returns a directory holding:
//
//	xts.img   4 MiB, cryptsetup luksFormat --type luks1 (aes-xts-plain64, 512-bit), passphrase "pass0"
//	cbc.img   4 MiB, aes-cbc-essiv:sha256, 256-bit, sha1; slots 0 "pass0", 1 "pass1"
//	zero.img  1 MiB of zeros; empty.img 0 bytes; magic.img LUKS magic with version 2 garbage
//	luks2.img 4 MiB, cryptsetup luksFormat --type luks2 (small metadata); luks2nomagic.img the
//	          same with the primary header's magic wiped (cryptsetup finds the secondary)
func templates(t *testing.T) string {
	t.Helper()
	cs := cryptsetup(t)
	templatesOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gocryptsetup-templates-")
		if err != nil {
			templatesErr = err
			return
		}
		templatesDir = dir
		sh := func(stdin string, args ...string) {
			if templatesErr != nil {
				return
			}
			cmd := exec.Command(cs, args...)
			cmd.Dir = dir
			cmd.Stdin = strings.NewReader(stdin)
			if out, err := cmd.CombinedOutput(); err != nil {
				templatesErr = fmt.Errorf("cryptsetup %v: %v\n%s", args, err, out)
			}
		}
		for _, n := range []string{"xts.img", "cbc.img", "luks2.img"} {
			if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
				templatesErr = err
				return
			}
			if err := os.Truncate(filepath.Join(dir, n), 4<<20); err != nil {
				templatesErr = err
				return
			}
		}
		sh("pass0\n", "-q", "luksFormat", "--type", "luks1", iters, "xts.img")
		sh("pass0\n", "-q", "luksFormat", "--type", "luks1", iters, "-c", "aes-cbc-essiv:sha256", "-s", "256", "-h", "sha1", "cbc.img")
		sh("pass0\npass1\n", "luksAddKey", iters, "cbc.img")
		sh("pass0\n", "-q", "luksFormat", "--type", "luks2", "--pbkdf", "pbkdf2", iters,
			"--luks2-metadata-size", "16k", "--luks2-keyslots-size", "1m", "luks2.img")
		must := func(err error) {
			if templatesErr == nil && err != nil {
				templatesErr = err
			}
		}
		must(os.WriteFile(filepath.Join(dir, "zero.img"), make([]byte, 1<<20), 0o600))
		must(os.WriteFile(filepath.Join(dir, "empty.img"), nil, 0o600))
		magic := make([]byte, 1<<20)
		copy(magic, "LUKS\xba\xbe\x00\x07")
		must(os.WriteFile(filepath.Join(dir, "magic.img"), magic, 0o600))
		must(os.WriteFile(filepath.Join(dir, "key"), []byte("xxpass0yy"), 0o600))
		must(os.WriteFile(filepath.Join(dir, "newkey"), []byte("new key file\n"), 0o600))
		must(os.Mkdir(filepath.Join(dir, "adir"), 0o700))
		if templatesErr == nil {
			templatesErr = makeBadImages(dir)
		}
		if templatesErr == nil {
			b, err := os.ReadFile(filepath.Join(dir, "luks2.img"))
			must(err)
			if err == nil {
				copy(b, "XXXX")
				must(os.WriteFile(filepath.Join(dir, "luks2nomagic.img"), b, 0o600))
			}
		}
	})
	require.NoError(t, templatesErr)
	return templatesDir
}

// badImages are damaged copies of xts.img (offsets from the LUKS1 on-disk format).
var badImages = []struct {
	name  string
	patch func(b []byte) []byte
}{
	{"trunc.img", func(b []byte) []byte { return b[:1024] }},                         // header only: device too small
	{"trunc1m.img", func(b []byte) []byte { return b[:1<<20] }},                      // key material cut off
	{"keybytes0.img", func(b []byte) []byte { return put32(b, 108, 0) }},             // zero key size
	{"keybyteshuge.img", func(b []byte) []byte { return put32(b, 108, ^uint32(0)) }}, // huge key size
	{"slotstate.img", func(b []byte) []byte { return put32(b, 208+48, 0x12345678) }}, // slot 1 neither enabled nor disabled
	{"stripes.img", func(b []byte) []byte { return put32(b, 208+44, 44944) }},
	{"payload.img", func(b []byte) []byte { return put32(b, 104, 100) }}, // payload inside key material
	{"unterm.img", func(b []byte) []byte { copy(b[8:40], bytes.Repeat([]byte("a"), 32)); return b }},
	{"cipherfoo.img", func(b []byte) []byte { copy(b[8:40], "foo\x00\x00\x00"); return b }},
	{"hashfoo.img", func(b []byte) []byte { copy(b[72:104], "foo\x00\x00\x00\x00"); return b }},
	{"version9.img", func(b []byte) []byte { b[6], b[7] = 0, 9; return b }},
	{"mkiter0.img", func(b []byte) []byte { return put32(b, 164, 0) }},
}

func put32(b []byte, off int, v uint32) []byte {
	b[off], b[off+1], b[off+2], b[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	return b
}

func makeBadImages(dir string) error {
	for _, bi := range badImages {
		b, err := os.ReadFile(filepath.Join(dir, "xts.img"))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, bi.name), bi.patch(b), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// copyTemplates copies the template files into a fresh directory: all of them, or with
// names given only those (the directory adir is always created).
func copyTemplates(t *testing.T, names ...string) string {
	t.Helper()
	src := templates(t)
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, e := range entries {
		if e.IsDir() {
			require.NoError(t, os.Mkdir(filepath.Join(dst, e.Name()), 0o700))
			continue
		}
		if len(names) > 0 && !want[e.Name()] {
			continue
		}
		copyFile(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
	}
	return dst
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return [32]byte{}
	}
	require.NoError(t, err)
	return sha256.Sum256(b)
}

var progPrefix = regexp.MustCompile(`^\S*cryptsetup:`)

// lastLine drops popt's usage block: the message is the last line of stderr, with the
// program name normalised.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return progPrefix.ReplaceAllString(lines[len(lines)-1], "PROG:")
}

// TestSideBySide runs the same command line with real cryptsetup and with gocryptsetup on two
// identical copies of the same files and compares exit codes and output.
func TestSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	type cmp int
	const (
		sameAll     cmp = iota // identical stdout and stderr
		sameStdout             // identical stdout; stderr only non-empty on both or neither
		sameMessage            // identical last stderr line (after the usage block)
		sameCode               // identical exit code and stdout; our stderr may say more
	)
	badOpen := func(img string) cmp {
		// cryptsetup cannot decrypt key slots of ciphers its userspace lacks and then needs
		// device-mapper ("Cannot initialize device-mapper"); ours names the cipher instead.
		switch img {
		case "unterm.img", "cipherfoo.img":
			return sameStdout
		case "mkiter0.img":
			// cryptsetup fails silently on MK digest iterations 0; ours says why.
			return sameCode
		}
		return sameAll
	}
	tests := []struct {
		name      string
		stdin     string
		args      []string
		code      int // -1: whatever cryptsetup returns (bad-image cases)
		cmp       cmp
		unchanged []string // files that must be byte-identical after the command
		wantErr   string   // a substring our stderr must contain (for sameMessage/sameStdout)
	}{
		// luksDump, luksUUID, isLuks.
		{name: "luksDump xts", args: []string{"luksDump", "xts.img"}, cmp: sameAll},
		{name: "luksDump cbc 2 slots", args: []string{"luksDump", "cbc.img"}, cmp: sameAll},
		{name: "luksDump -v", args: []string{"-v", "luksDump", "cbc.img"}, cmp: sameAll},
		{name: "luksDump with --header", args: []string{"luksDump", "zero.img", "--header", "xts.img"}, cmp: sameAll},
		{name: "luksDump --dump-volume-key", stdin: "pass0\n", args: []string{"luksDump", "--dump-volume-key", "xts.img"}, cmp: sameAll},
		{name: "luksDump --dump-master-key -v slot 1", stdin: "pass1\n", args: []string{"luksDump", "--dump-master-key", "-v", "cbc.img"}, cmp: sameAll},
		{name: "luksDump --dump-volume-key wrong", stdin: "nope\n", args: []string{"luksDump", "--dump-volume-key", "xts.img"}, code: 2, cmp: sameAll},
		{name: "luksDump --dump-volume-key --volume-key-file", stdin: "pass0\n", args: []string{"-q", "luksDump", "--dump-volume-key", "--volume-key-file", "vk.bin", "xts.img"}, cmp: sameAll},
		{name: "luksDump not LUKS", args: []string{"luksDump", "zero.img"}, code: 1, cmp: sameAll},
		{name: "luksDump wrong version", args: []string{"luksDump", "magic.img"}, code: 1, cmp: sameStdout, wantErr: "magic.img"},
		{name: "luksDump empty file", args: []string{"luksDump", "empty.img"}, code: 1, cmp: sameAll},
		{name: "luksDump missing", args: []string{"luksDump", "missing.img"}, code: 4, cmp: sameAll},
		{name: "luksDump directory", args: []string{"luksDump", "adir"}, code: 4, cmp: sameAll},
		{name: "luksDump /dev/null", args: []string{"luksDump", "/dev/null"}, code: 4, cmp: sameAll},
		{name: "luksUUID", args: []string{"luksUUID", "xts.img"}, cmp: sameAll},
		{name: "luksUUID not LUKS", args: []string{"luksUUID", "zero.img"}, code: 1, cmp: sameAll},
		{name: "luksUUID -v not LUKS", args: []string{"-v", "luksUUID", "zero.img"}, code: 1, cmp: sameAll},
		{name: "luksUUID set", args: []string{"luksUUID", "--uuid", "12345678-1234-1234-1234-123456789abc", "xts.img"}, cmp: sameAll},
		{name: "luksUUID set bad", args: []string{"luksUUID", "--uuid", "bad", "xts.img"}, code: 1, cmp: sameAll, unchanged: []string{"xts.img"}},
		{name: "isLuks good", args: []string{"isLuks", "xts.img"}, cmp: sameAll},
		{name: "isLuks -v good", args: []string{"-v", "isLuks", "cbc.img"}, cmp: sameAll},
		{name: "isLuks zeros", args: []string{"isLuks", "zero.img"}, code: 1, cmp: sameAll},
		{name: "isLuks empty", args: []string{"isLuks", "empty.img"}, code: 1, cmp: sameAll},
		{name: "isLuks wrong version", args: []string{"isLuks", "magic.img"}, code: 1, cmp: sameAll},
		// A LUKS2 device is LUKS (exit 0) unless --type luks1 asks for LUKS1 only: a script's
		// "isLuks DEV || luksFormat DEV" must not format over it.
		{name: "isLuks LUKS2", args: []string{"-v", "isLuks", "luks2.img"}, cmp: sameAll},
		{name: "isLuks LUKS2 secondary header", args: []string{"isLuks", "luks2nomagic.img"}, cmp: sameAll},
		{name: "isLuks --type luks1 LUKS2", args: []string{"-v", "isLuks", "--type", "luks1", "luks2.img"}, code: 1, cmp: sameAll, unchanged: []string{"luks2.img"}},
		{name: "isLuks --type luks2 LUKS2", args: []string{"-v", "isLuks", "--type", "luks2", "luks2.img"}, cmp: sameAll},
		{name: "isLuks --type luks2 LUKS1", args: []string{"isLuks", "--type", "luks2", "xts.img"}, code: 1, cmp: sameAll},
		// LUKS2 read verbs (issue 11).
		{name: "luksDump LUKS2", args: []string{"luksDump", "luks2.img"}, cmp: sameAll},
		{name: "luksDump --type luks2 LUKS2", args: []string{"luksDump", "--type", "luks2", "luks2.img"}, cmp: sameAll},
		{name: "luksDump --type luks2 LUKS1", args: []string{"luksDump", "--type", "luks2", "xts.img"}, code: 1, cmp: sameAll},
		{name: "luksDump --type luks1 LUKS2", args: []string{"luksDump", "--type", "luks1", "luks2.img"}, code: 1, cmp: sameAll},
		{name: "luksDump LUKS2 --dump-volume-key -v", stdin: "pass0\n", args: []string{"-v", "luksDump", "--dump-volume-key", "luks2.img"}, cmp: sameAll},
		{name: "luksDump LUKS2 --dump-volume-key wrong", stdin: "nope\n", args: []string{"luksDump", "--dump-volume-key", "luks2.img"}, code: 2, cmp: sameAll},
		{name: "luksUUID LUKS2", args: []string{"luksUUID", "luks2.img"}, cmp: sameAll},
		{name: "open --test-passphrase LUKS2", stdin: "pass0\n", args: []string{"open", "-v", "--test-passphrase", "luks2.img"}, cmp: sameAll},
		{name: "open --test-passphrase --type luks2", stdin: "pass0\n", args: []string{"open", "--type", "luks2", "--test-passphrase", "luks2.img"}, cmp: sameAll},
		{name: "open --test-passphrase LUKS2 wrong", stdin: "wrong\n", args: []string{"open", "--test-passphrase", "luks2.img"}, code: 2, cmp: sameAll},
		{name: "open --test-passphrase LUKS2 -S 0", stdin: "pass0\n", args: []string{"open", "-v", "-S", "0", "--test-passphrase", "luks2.img"}, cmp: sameAll},
		{name: "open --test-passphrase LUKS2 -S 5 empty", stdin: "pass0\n", args: []string{"open", "-S", "5", "--test-passphrase", "luks2.img"}, code: -1, cmp: sameAll},
		{name: "isLuks missing", args: []string{"isLuks", "missing.img"}, code: 4, cmp: sameAll},
		{name: "isLuks -v missing", args: []string{"isLuks", "-v", "missing.img"}, code: 4, cmp: sameAll},
		{name: "isLuks directory", args: []string{"isLuks", "adir"}, code: 4, cmp: sameAll},
		{name: "isLuks /dev/null", args: []string{"isLuks", "/dev/null"}, code: 4, cmp: sameAll},

		// open --test-passphrase and key input.
		{name: "open stdin line", stdin: "pass0\n", args: []string{"open", "--test-passphrase", "xts.img"}, cmp: sameAll},
		{name: "luksOpen -v slot 1", stdin: "pass1\n", args: []string{"luksOpen", "-v", "--test-passphrase", "cbc.img"}, cmp: sameAll},
		{name: "open wrong passphrase", stdin: "wrong\n", args: []string{"open", "--test-passphrase", "xts.img"}, code: 2, cmp: sameAll},
		{name: "open -v wrong passphrase", stdin: "wrong\n", args: []string{"open", "-v", "--test-passphrase", "xts.img"}, code: 2, cmp: sameAll},
		{name: "open line stops at newline", stdin: "pass0\ntrailing junk\n", args: []string{"open", "--test-passphrase", "xts.img"}, cmp: sameAll},
		{name: "open key file offset size", args: []string{"open", "--test-passphrase", "-d", "key", "--keyfile-offset", "2", "-l", "5", "xts.img"}, cmp: sameAll},
		{name: "open key file attached values", args: []string{"--keyfile-offset=2", "open", "xts.img", "-dkey", "-l5", "--test-passphrase"}, cmp: sameAll},
		{name: "open key file whole is wrong", args: []string{"open", "--test-passphrase", "-d", "key", "xts.img"}, code: 2, cmp: sameAll},
		{name: "open key file stdin", stdin: "pass0", args: []string{"open", "--test-passphrase", "-d", "-", "xts.img"}, cmp: sameAll},
		{name: "open key file stdin keeps newline", stdin: "pass0\n", args: []string{"open", "--test-passphrase", "-d", "-", "xts.img"}, code: 2, cmp: sameAll},
		{name: "open missing key file", args: []string{"open", "--test-passphrase", "-d", "nokey", "xts.img"}, code: 1, cmp: sameAll},
		// Key-file read failures in cryptsetup's words.
		{name: "open key file offset beyond end", args: []string{"open", "--test-passphrase", "-d", "key", "--keyfile-offset", "1000", "xts.img"}, code: 1, cmp: sameAll},
		{name: "open key file shorter than -l", args: []string{"open", "--test-passphrase", "-d", "key", "-l", "1000", "xts.img"}, code: 1, cmp: sameAll},
		{name: "open key file endless without -l", args: []string{"open", "--test-passphrase", "-d", "/dev/zero", "xts.img"}, code: 1, cmp: sameAll},
		{name: "open key file directory", args: []string{"open", "--test-passphrase", "-d", "adir", "xts.img"}, code: 1, cmp: sameAll},
		{name: "open key file /dev/null", args: []string{"open", "--test-passphrase", "-d", "/dev/null", "-l", "3", "xts.img"}, code: 1, cmp: sameAll},
		{name: "open stdin key shorter than -l", stdin: "pass0", args: []string{"open", "--test-passphrase", "-d", "-", "-l", "100", "xts.img"}, code: 1, cmp: sameAll},
		{name: "open stdin key offset beyond end", stdin: "pass0", args: []string{"open", "--test-passphrase", "-d", "-", "--keyfile-offset", "100", "xts.img"}, code: 1, cmp: sameAll},
		{name: "open stdin key offset at end", stdin: "pass0", args: []string{"open", "--test-passphrase", "-d", "-", "--keyfile-offset", "5", "xts.img"}, code: 1, cmp: sameAll},
		{name: "luksAddKey new key file offset beyond end", stdin: "pass0\n", args: []string{"luksAddKey", iters, "--new-keyfile-offset", "1000", "xts.img", "newkey"}, code: 1, cmp: sameAll, unchanged: []string{"xts.img"}},
		{name: "open nothing on stdin", args: []string{"open", "--test-passphrase", "xts.img"}, code: 1, cmp: sameAll},
		{name: "open -S right slot", stdin: "pass1\n", args: []string{"open", "--test-passphrase", "-S", "1", "cbc.img"}, cmp: sameAll},
		{name: "open -S inactive slot", stdin: "pass0\n", args: []string{"open", "--test-passphrase", "-S", "3", "cbc.img"}, code: 1, cmp: sameAll},
		{name: "open -S 8", stdin: "pass0\n", args: []string{"open", "--test-passphrase", "-S", "8", "cbc.img"}, code: 1, cmp: sameAll},
		{name: "open not LUKS", stdin: "pass0\n", args: []string{"open", "--test-passphrase", "zero.img"}, code: 1, cmp: sameAll},
		{name: "open missing", stdin: "pass0\n", args: []string{"open", "--test-passphrase", "missing.img"}, code: 4, cmp: sameAll},
		{name: "open mapping without device-mapper", stdin: "pass0\n", args: []string{"open", "xts.img", "nm"}, code: 1, cmp: sameStdout,
			wantErr: "Cannot initialize device-mapper. Is dm_mod kernel module loaded?\n"},

		// Key slots.
		{name: "luksAddKey positional", stdin: "pass0\n", args: []string{"-v", "luksAddKey", iters, "xts.img", "newkey"}, cmp: sameAll},
		{name: "luksAddKey two lines", stdin: "pass0\nsecond\n", args: []string{"-v", "luksAddKey", iters, "cbc.img"}, cmp: sameAll},
		{name: "luksAddKey key file", args: []string{"-v", "luksAddKey", iters, "-d", "key", "--keyfile-offset", "2", "-l", "5", "xts.img", "newkey"}, cmp: sameAll},
		{name: "luksAddKey wrong", stdin: "wrong\n", args: []string{"luksAddKey", iters, "xts.img", "newkey"}, code: 2, cmp: sameAll, unchanged: []string{"xts.img"}},
		{name: "luksAddKey -S full", stdin: "pass0\n", args: []string{"luksAddKey", iters, "-S", "1", "cbc.img", "newkey"}, code: 1, cmp: sameAll, unchanged: []string{"cbc.img"}},
		{name: "luksAddKey -S 9", stdin: "pass0\n", args: []string{"luksAddKey", iters, "-S", "9", "cbc.img", "newkey"}, code: 1, cmp: sameAll, unchanged: []string{"cbc.img"}},
		{name: "luksAddKey -S 5", stdin: "pass0\n", args: []string{"-v", "luksAddKey", iters, "-S", "5", "cbc.img", "newkey"}, cmp: sameAll},
		{name: "luksAddKey new key missing", stdin: "pass0\n", args: []string{"-v", "luksAddKey", iters, "cbc.img"}, code: 1, cmp: sameAll, unchanged: []string{"cbc.img"}},
		{name: "luksAddKey iterations too low", stdin: "pass0\n", args: []string{"luksAddKey", "--pbkdf-force-iterations", "999", "cbc.img", "newkey"}, code: 1, cmp: sameAll, unchanged: []string{"cbc.img"}},
		{name: "luksRemoveKey", stdin: "pass1", args: []string{"-v", "luksRemoveKey", "cbc.img"}, cmp: sameAll},
		{name: "luksRemoveKey positional key file", args: []string{"-v", "luksRemoveKey", "xts.img", "key", "--keyfile-offset", "2", "-l", "5"}, cmp: sameAll},
		{name: "luksRemoveKey wrong", stdin: "wrong\n", args: []string{"luksRemoveKey", "cbc.img"}, code: 2, cmp: sameAll, unchanged: []string{"cbc.img"}},
		{name: "luksChangeKey", stdin: "pass0\nchanged\n", args: []string{"-v", "luksChangeKey", iters, "cbc.img"}, cmp: sameAll},
		{name: "luksChangeKey positional", stdin: "pass1\n", args: []string{"-v", "luksChangeKey", iters, "cbc.img", "newkey"}, cmp: sameAll},
		{name: "luksChangeKey wrong", stdin: "wrong\nx\n", args: []string{"luksChangeKey", iters, "cbc.img"}, code: 2, cmp: sameAll, unchanged: []string{"cbc.img"}},
		// -S N rewrites slot N in place (the header shape after the command shows where the
		// new key went); without -S the key moves to the first free slot.
		{name: "luksChangeKey -S 0 in place", stdin: "pass0\nchanged\n", args: []string{"-v", "luksChangeKey", iters, "-S", "0", "cbc.img"}, cmp: sameAll},
		{name: "luksChangeKey -S 1 positional in place", stdin: "pass1\n", args: []string{"-v", "luksChangeKey", iters, "-S", "1", "cbc.img", "newkey"}, cmp: sameAll},
		{name: "luksChangeKey -S other slot", stdin: "pass0\nchanged\n", args: []string{"luksChangeKey", iters, "-S", "1", "cbc.img"}, code: 2, cmp: sameAll, unchanged: []string{"cbc.img"}},
		{name: "luksChangeKey -S inactive", stdin: "pass0\nchanged\n", args: []string{"luksChangeKey", iters, "-S", "3", "cbc.img"}, code: 1, cmp: sameAll, unchanged: []string{"cbc.img"}},
		{name: "luksChangeKey -S 9", stdin: "pass0\nchanged\n", args: []string{"luksChangeKey", iters, "-S", "9", "cbc.img"}, code: 1, cmp: sameAll, unchanged: []string{"cbc.img"}},
		{name: "luksKillSlot unused", args: []string{"-q", "luksKillSlot", "cbc.img", "5"}, code: 1, cmp: sameAll, unchanged: []string{"cbc.img"}},
		{name: "luksKillSlot with passphrase", stdin: "pass0\n", args: []string{"-v", "luksKillSlot", "cbc.img", "1"}, cmp: sameAll},
		{name: "luksKillSlot wrong passphrase", stdin: "wrong\n", args: []string{"luksKillSlot", "cbc.img", "1"}, code: 2, cmp: sameAll, unchanged: []string{"cbc.img"}},
		{name: "luksKillSlot nothing on stdin", args: []string{"luksKillSlot", "cbc.img", "1"}, cmp: sameAll},
		// A short or over-skipped stdin key is an error, not "nothing to read": the slot stays.
		{name: "luksKillSlot stdin key shorter than -l", stdin: "pass0", args: []string{"luksKillSlot", "-d", "-", "-l", "100", "cbc.img", "1"}, code: 1, cmp: sameAll, unchanged: []string{"cbc.img"}},
		{name: "luksKillSlot stdin key offset beyond end", stdin: "pass0", args: []string{"luksKillSlot", "-d", "-", "--keyfile-offset", "100", "cbc.img", "1"}, code: 1, cmp: sameAll, unchanged: []string{"cbc.img"}},
		{name: "luksKillSlot 8", args: []string{"-v", "-q", "luksKillSlot", "cbc.img", "8"}, code: 1, cmp: sameAll, unchanged: []string{"cbc.img"}},
		{name: "luksKillSlot 8 missing device", args: []string{"-q", "luksKillSlot", "missing.img", "8"}, code: 4, cmp: sameAll},
		{name: "luksKillSlot missing argument", args: []string{"luksKillSlot", "cbc.img"}, code: 1, cmp: sameMessage, unchanged: []string{"cbc.img"}},

		// Header backup and restore.
		{name: "luksHeaderBackup", args: []string{"luksHeaderBackup", "cbc.img", "--header-backup-file", "hb"}, cmp: sameAll},
		{name: "luksHeaderBackup exists", args: []string{"luksHeaderBackup", "cbc.img", "--header-backup-file", "key"}, code: 1, cmp: sameAll, unchanged: []string{"key"}},
		{name: "luksHeaderBackup no file option", args: []string{"luksHeaderBackup", "cbc.img"}, code: 1, cmp: sameAll},
		{name: "luksHeaderBackup not LUKS", args: []string{"luksHeaderBackup", "zero.img", "--header-backup-file", "hb"}, code: 1, cmp: sameAll},
		{name: "luksHeaderRestore missing backup", args: []string{"luksHeaderRestore", "zero.img", "--header-backup-file", "nothere"}, code: 1, cmp: sameAll, unchanged: []string{"zero.img"}},
		{name: "luksHeaderRestore not a backup", args: []string{"-q", "luksHeaderRestore", "zero.img", "--header-backup-file", "key"}, code: 1, cmp: sameAll, unchanged: []string{"zero.img"}},
		{name: "luksHeaderRestore mismatch", args: []string{"-q", "luksHeaderRestore", "xts.img", "--header-backup-file", "cbc.img"}, code: 1, cmp: sameAll, unchanged: []string{"xts.img"}},
		{name: "luksHeaderRestore missing device", args: []string{"-q", "luksHeaderRestore", "missing.img", "--header-backup-file", "cbc.img"}, code: 4, cmp: sameAll},

		// luksFormat parameter errors: nothing is written.
		{name: "luksFormat missing device", stdin: "p\n", args: []string{"-q", "luksFormat", "--type", "luks1", iters, "missing.img"}, code: 4, cmp: sameAll},
		{name: "luksFormat directory", stdin: "p\n", args: []string{"-q", "luksFormat", "--type", "luks1", iters, "adir"}, code: 4, cmp: sameAll},
		{name: "luksFormat /dev/null", stdin: "p\n", args: []string{"-q", "luksFormat", "--type", "luks1", iters, "/dev/null"}, code: 4, cmp: sameAll},
		{name: "luksFormat empty file", stdin: "p\n", args: []string{"-q", "luksFormat", "--type", "luks1", iters, "empty.img"}, code: 1, cmp: sameAll, unchanged: []string{"empty.img"}},
		{name: "luksFormat iterations too low", stdin: "p\n", args: []string{"-q", "luksFormat", "--type", "luks1", "--pbkdf-force-iterations", "999", "zero.img"}, code: 1, cmp: sameAll, unchanged: []string{"zero.img"}},
		{name: "luksFormat bad uuid", stdin: "p\n", args: []string{"-q", "luksFormat", "--type", "luks1", iters, "--uuid", "nope", "zero.img"}, code: 1, cmp: sameAll, unchanged: []string{"zero.img"}},
		{name: "luksFormat md5", stdin: "p\n", args: []string{"-q", "luksFormat", "--type", "luks1", iters, "-h", "md5", "zero.img"}, code: 1, cmp: sameStdout, unchanged: []string{"zero.img"}, wantErr: "md5"},
		{name: "luksFormat nothing on stdin", args: []string{"-q", "luksFormat", "--type", "luks1", iters, "zero.img"}, code: 1, cmp: sameAll, unchanged: []string{"zero.img"}},
		{name: "luksFormat missing key file", args: []string{"-q", "luksFormat", "--type", "luks1", iters, "zero.img", "nokey"}, code: 1, cmp: sameAll, unchanged: []string{"zero.img"}},
		{name: "luksFormat key size", stdin: "p\n", args: []string{"-q", "luksFormat", "--type", "luks1", iters, "-s", "100", "zero.img"}, code: 1, cmp: sameMessage, unchanged: []string{"zero.img"}},
		{name: "luksFormat force and iter-time", stdin: "p\n", args: []string{"-q", "luksFormat", "--type", "luks1", iters, "-i", "10", "zero.img"}, code: 1, cmp: sameMessage, unchanged: []string{"zero.img"}},
		{name: "luksFormat existing LUKS, piped stdin", stdin: "pass0\n", args: []string{"luksFormat", "--type", "luks1", iters, "xts.img"}, cmp: sameAll},
		{name: "luksFormat -v existing LUKS", stdin: "pass0\n", args: []string{"-v", "-q", "luksFormat", "--type", "luks1", iters, "cbc.img"}, cmp: sameAll},
		{name: "luksFormat -s 0 is 256 bits", stdin: "pass0\n", args: []string{"-q", "luksFormat", "--type", "luks1", iters, "-s", "0", "zero.img"}, cmp: sameAll},
		{name: "luksFormat short image", stdin: "pass0\n", args: []string{"-q", "luksFormat", "--type", "luks1", iters, "zero.img"}, cmp: sameAll},

		// Command-line errors.
		{name: "unknown action", args: []string{"frobnicate", "xts.img"}, code: 1, cmp: sameMessage},
		{name: "no action", args: nil, code: 1, cmp: sameMessage},
		{name: "unknown option", args: []string{"--frob", "luksDump", "xts.img"}, code: 1, cmp: sameMessage},
		{name: "missing option value", args: []string{"luksDump", "xts.img", "--cipher"}, code: 1, cmp: sameMessage},
		{name: "bool option with value", args: []string{"luksDump", "xts.img", "--batch-mode=3"}, code: 1, cmp: sameMessage},
		{name: "bad number", args: []string{"luksDump", "xts.img", "-s", "abc"}, code: 1, cmp: sameMessage},
		{name: "missing device", args: []string{"luksDump"}, code: 1, cmp: sameMessage},
		{name: "missing device, alias", args: []string{"luksOpen"}, code: 1, cmp: sameMessage},
		{name: "missing device and key file", args: []string{"luksChangeKey"}, code: 1, cmp: sameMessage},
		// Options an action does not take (cryptsetup's per-action option lists).
		{name: "luksRemoveKey -S not allowed", stdin: "pass1\n", args: []string{"luksRemoveKey", "-S", "1", "cbc.img"}, code: 1, cmp: sameMessage, unchanged: []string{"cbc.img"}},
		{name: "luksKillSlot -S not allowed", args: []string{"-q", "luksKillSlot", "-S", "1", "cbc.img", "1"}, code: 1, cmp: sameMessage, unchanged: []string{"cbc.img"}},
		{name: "luksDump --uuid not allowed", args: []string{"luksDump", "--uuid", "12345678-1234-1234-1234-123456789abc", "xts.img"}, code: 1, cmp: sameMessage},
		{name: "luksOpen --uuid not allowed", stdin: "pass0\n", args: []string{"luksOpen", "--test-passphrase", "--uuid", "x", "xts.img"}, code: 1, cmp: sameMessage},
		{name: "isLuks first disallowed option in table order", args: []string{"isLuks", "--uuid", "x", "--align-payload", "8", "xts.img"}, code: 1, cmp: sameMessage},
		{name: "luksDump --deferred not allowed", args: []string{"luksDump", "--deferred", "xts.img"}, code: 1, cmp: sameMessage},
		{name: "open --cancel-deferred not allowed", stdin: "pass0\n", args: []string{"open", "--test-passphrase", "--cancel-deferred", "xts.img"}, code: 1, cmp: sameMessage},
		{name: "open --offset", stdin: "pass0\n", args: []string{"open", "--test-passphrase", "--offset", "1", "xts.img"}, code: 1, cmp: sameMessage},
		{name: "luksDump force and iter-time", args: []string{"luksDump", "--pbkdf-force-iterations", "1000", "-i", "10", "xts.img"}, code: 1, cmp: sameMessage},
		{name: "luksAddKey -S on a missing device", stdin: "pass0\n", args: []string{"luksAddKey", iters, "-S", "5", "missing.img"}, code: 4, cmp: sameAll},
		{name: "luksUUID bad uuid on a missing device", args: []string{"luksUUID", "--uuid", "bad", "missing.img"}, code: 4, cmp: sameAll},
		{name: "luksFormat bad uuid on a missing device", stdin: "p\n", args: []string{"-q", "luksFormat", "--type", "luks1", iters, "--uuid", "bad", "missing.img"}, code: 4, cmp: sameAll},
		// Numbers parse as cryptsetup 2.6 parses them: base 10 into the option's C type, so a
		// --keyfile-size beyond uint32 is refused before any key is read (an endless key file
		// cannot exhaust memory), while any size within range is read in full.
		{name: "keyfile-size beyond uint32 on /dev/zero", args: []string{"open", "--test-passphrase", "-d", "/dev/zero", "-l", "4294967296", "xts.img"}, code: 1, cmp: sameMessage},
		{name: "keyfile-size huge on /dev/zero", args: []string{"open", "--test-passphrase", "-d", "/dev/zero", "--keyfile-size=1099511627776", "xts.img"}, code: 1, cmp: sameMessage},
		{name: "new-keyfile-size beyond uint32", stdin: "pass0\n", args: []string{"luksAddKey", iters, "--new-keyfile-size", "4294967296", "xts.img", "/dev/zero"}, code: 1, cmp: sameMessage, unchanged: []string{"xts.img"}},
		{name: "keyfile-size above 8 MiB on /dev/zero", args: []string{"open", "--test-passphrase", "-d", "/dev/zero", "-l", "9000000", "xts.img"}, code: 2, cmp: sameAll},
		{name: "keyfile-size negative", args: []string{"open", "--test-passphrase", "-d", "key", "-l", "-1", "xts.img"}, code: 1, cmp: sameMessage},
		{name: "key slot hex", stdin: "pass0\n", args: []string{"open", "--test-passphrase", "-S", "0x0", "xts.img"}, code: 1, cmp: sameMessage},
		{name: "key slot beyond int32", stdin: "pass0\n", args: []string{"open", "--test-passphrase", "-S", "2147483648", "xts.img"}, code: 1, cmp: sameMessage},
		{name: "key slot leading space and sign", stdin: "pass0\n", args: []string{"open", "--test-passphrase", "-S", " +0", "xts.img"}, cmp: sameAll},
		{name: "key size trailing space", stdin: "p\n", args: []string{"-q", "luksFormat", "--type", "luks1", iters, "-s", "256 ", "zero.img"}, code: 1, cmp: sameMessage, unchanged: []string{"zero.img"}},
		{name: "iterations beyond uint32", stdin: "p\n", args: []string{"-q", "luksFormat", "--type", "luks1", "--pbkdf-force-iterations", "4294967296", "zero.img"}, code: 1, cmp: sameMessage, unchanged: []string{"zero.img"}},
	}
	// Every damaged image through the read-only verbs and the verbs that would write to it:
	// same exit code and messages as cryptsetup, and the image is never modified.
	for _, bi := range badImages {
		img := bi.name
		tests = append(tests, []struct {
			name      string
			stdin     string
			args      []string
			code      int
			cmp       cmp
			unchanged []string
			wantErr   string
		}{
			{name: "bad " + img + " luksDump", args: []string{"luksDump", img}, code: -1, cmp: sameAll, unchanged: []string{img}},
			{name: "bad " + img + " isLuks", args: []string{"isLuks", img}, code: -1, cmp: sameAll, unchanged: []string{img}},
			{name: "bad " + img + " luksUUID", args: []string{"luksUUID", img}, code: -1, cmp: sameAll, unchanged: []string{img}},
			{name: "bad " + img + " open", stdin: "pass0\n", args: []string{"open", "--test-passphrase", img}, code: -1, cmp: badOpen(img), unchanged: []string{img}},
			{name: "bad " + img + " luksAddKey", stdin: "pass0\nnew\n", args: []string{"luksAddKey", iters, img}, code: -1, cmp: badOpen(img), unchanged: []string{img}},
			{name: "bad " + img + " luksKillSlot", args: []string{"-q", "luksKillSlot", img, "3"}, code: -1, cmp: sameAll, unchanged: []string{img}},
			{name: "bad " + img + " luksUUID set", args: []string{"-q", "luksUUID", "--uuid", "12345678-1234-1234-1234-123456789abc", img}, code: -1, cmp: sameAll, unchanged: []string{img}},
			{name: "bad " + img + " luksHeaderBackup", args: []string{"luksHeaderBackup", img, "--header-backup-file", "hb"}, code: -1, cmp: sameAll, unchanged: []string{img}},
		}...)
	}
	badDecisions, badMatch := 0, 0
	defer func() {
		t.Logf("%d hostile LUKS1 headers × 8 verbs: %d decisions, %d match cryptsetup (exit code)", len(badImages), badDecisions, badMatch)
	}()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Only the files the command line names (all others are absent in both).
			names := append(append([]string{}, tc.args...), tc.unchanged...)
			for _, a := range tc.args {
				if len(a) > 2 && a[0] == '-' && a[1] != '-' {
					names = append(names, a[2:]) // attached short-option values ("-dkey")
				}
			}
			dirA := copyTemplates(t, names...)
			dirB := copyTemplates(t, names...)
			before := map[string][32]byte{}
			for _, f := range tc.unchanged {
				before[f] = fileSum(t, filepath.Join(dirA, f))
			}
			want := runIn(t, dirA, cs, tc.stdin, tc.args...)
			got := runIn(t, dirB, binPath, tc.stdin, tc.args...)
			if tc.code >= 0 {
				assert.Equal(t, tc.code, want.code, "cryptsetup's exit code (stderr %q)", want.stderr)
			}
			sameCodeOK := assert.Equal(t, want.code, got.code, "exit code (ours: stderr %q)", got.stderr)
			if strings.HasPrefix(tc.name, "bad ") && strings.Contains(tc.name, ".img ") {
				badDecisions++
				if sameCodeOK {
					badMatch++
				}
			}
			switch tc.cmp {
			case sameAll:
				assert.Equal(t, want.stdout, got.stdout, "stdout")
				assert.Equal(t, want.stderr, got.stderr, "stderr")
			case sameStdout:
				assert.Equal(t, want.stdout, got.stdout, "stdout")
				assert.Equal(t, want.stderr == "", got.stderr == "", "stderr %q vs %q", want.stderr, got.stderr)
			case sameCode:
				assert.Equal(t, want.stdout, got.stdout, "stdout")
			case sameMessage:
				assert.Equal(t, want.stdout, got.stdout, "stdout")
				assert.Equal(t, lastLine(want.stderr), lastLine(got.stderr), "message")
				assert.Contains(t, got.stderr, "Usage: gocryptsetup")
			}
			if tc.wantErr != "" {
				assert.Contains(t, got.stderr, tc.wantErr)
			}
			// Passphrases typed on stdin never appear in our output.
			for _, l := range strings.Split(tc.stdin, "\n") {
				if len(l) >= 4 {
					assert.NotContains(t, got.stdout+got.stderr, l, "passphrase echoed")
				}
			}
			if tc.code < 0 && want.code == 0 {
				tc.unchanged = nil // a damaged image cryptsetup still accepts may change
			}
			for _, f := range tc.unchanged {
				assert.Equal(t, before[f], fileSum(t, filepath.Join(dirA, f)), "cryptsetup changed %s", f)
				assert.Equal(t, before[f], fileSum(t, filepath.Join(dirB, f)), "gocryptsetup changed %s", f)
			}
			// When the command changed something, both tools leave headers that dump the
			// same (modulo random salts, digests and UUIDs).
			if want.code != 0 {
				return
			}
			for _, img := range []string{"xts.img", "cbc.img", "zero.img"} {
				if _, err := os.Stat(filepath.Join(dirA, img)); err != nil {
					continue
				}
				da := runIn(t, dirA, cs, "", "luksDump", img)
				db := runIn(t, dirB, cs, "", "luksDump", img)
				assert.Equal(t, da.code, db.code, "%s: luksDump exit code after the command", img)
				assert.Equal(t, shape(da.stdout), shape(db.stdout), "%s: header shape after the command", img)
			}
		})
	}
}

// shape keeps the lines of a luksDump that do not depend on randomness (salts, digests,
// UUIDs, iteration counts for MK digest are kept since both use 1000).
func shape(dump string) string {
	var keep []string
	for _, l := range strings.Split(dump, "\n") {
		switch {
		case strings.HasPrefix(l, "MK digest:"), strings.HasPrefix(l, "MK salt:"), strings.HasPrefix(l, "UUID:"),
			strings.HasPrefix(l, "\tSalt:"), strings.HasPrefix(l, "               \t"), strings.HasPrefix(l, "\t                      \t"):
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}
