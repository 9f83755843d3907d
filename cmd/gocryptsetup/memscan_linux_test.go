package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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

// TestNoSecretLeftInMemoryEveryPath runs every CLI path that handles a passphrase or a volume
// key — luksFormat (with --volume-key-file, so the test knows the key), open
// --test-passphrase from stdin and from a key file, luksAddKey, luksChangeKey,
// luksRemoveKey, luksKillSlot, luksDump --dump-volume-key, write and read through the
// userspace volume (LUKS1: the only kind they serve) — on LUKS1 and LUKS2 images with aes-xts-plain64 and
// aes-cbc-essiv:sha256, and open --type plain; after each run() it scans this process's
// memory for the three passphrases, the volume key and their HMAC pad transforms, and
// reports every hit with its mapping and neighbourhood. Secrets printed on purpose (the
// key luksDump prints, in hex) are in the stdout buffer, which the test clears as a
// terminal would have consumed it: the scan looks at memory, not at output.
func TestNoSecretLeftInMemoryEveryPath(t *testing.T) {
	dir := t.TempDir()
	secret := func(n int, printable bool) testenv.Masked {
		b := make([]byte, n)
		_, err := rand.Read(b)
		require.NoError(t, err)
		if printable {
			for i := range b {
				b[i] = 'a' + b[i]%26
			}
		}
		m := testenv.Mask(b, 0xa5)
		clear(b)
		return m
	}
	pass, pass2, pass3 := secret(24, true), secret(24, true), secret(24, true)
	vkey := secret(32, false)
	write := func(name string, m testenv.Masked) string {
		p := filepath.Join(dir, name)
		b := m.Plain()
		require.NoError(t, os.WriteFile(p, b, 0o600))
		clear(b)
		return p
	}
	vkf, kf := write("vk.bin", vkey), write("keyfile", pass)
	// line joins passphrases into one stdin, each followed by a newline.
	line := func(ms ...testenv.Masked) func() []byte {
		return func() []byte {
			out := make([]byte, 0, 25*len(ms)+len("DATA")) // 24-byte passphrases and newlines
			for _, m := range ms {
				p := m.Plain()
				out = append(append(out, p...), '\n')
				clear(p)
			}
			return out
		}
	}
	var needles []testenv.Needle
	for _, s := range []struct {
		name string
		m    testenv.Masked
	}{{"passphrase", pass}, {"passphrase 2", pass2}, {"passphrase 3", pass3}, {"volume key", vkey}} {
		needles = append(needles,
			testenv.Needle{Name: s.name, Secret: s.m},
			testenv.Needle{Name: s.name + " XOR 0x36 (HMAC ipad)", Secret: s.m, Xor: 0x36, Tail: 4},
			testenv.Needle{Name: s.name + " XOR 0x5c (HMAC opad)", Secret: s.m, Xor: 0x5c, Tail: 4})
	}

	type path struct {
		name  string
		args  []string
		stdin func() []byte
		code  int // -1: any exit code
	}
	var paths []path
	for _, typ := range []string{"luks1", "luks2"} {
		for _, cipher := range []string{"aes-xts-plain64", "aes-cbc-essiv:sha256"} {
			img := filepath.Join(dir, typ+"-"+strings.ReplaceAll(cipher, ":", "_")+".img")
			f, err := os.Create(img)
			require.NoError(t, err)
			require.NoError(t, f.Truncate(20<<20))
			require.NoError(t, f.Close())
			format := []string{"-q", "luksFormat", "--type", typ, "-c", cipher, "-s", "256", "--volume-key-file", vkf}
			kdf := []string{iters}
			if typ == "luks2" {
				kdf = append(kdf, "--pbkdf", "pbkdf2") // argon2's 1 GiB would make each scan slow
			}
			slot := func(verb string) []string { return append(append([]string{verb}, kdf...), img) }
			p := func(name string, stdin func() []byte, args ...string) path {
				return path{name: typ + " " + cipher + " " + name, args: args, stdin: stdin}
			}
			paths = append(paths,
				p("luksFormat", line(pass), append(append(format, kdf...), img)...),
				p("open --test-passphrase stdin", line(pass), "open", "--test-passphrase", img),
				p("open --test-passphrase --key-file", nil, "open", "--test-passphrase", "--key-file", kf, img),
				p("luksAddKey", line(pass, pass2), slot("luksAddKey")...),
				p("luksChangeKey", line(pass2, pass3), slot("luksChangeKey")...),
				p("luksRemoveKey", line(pass3), "luksRemoveKey", img),
				p("luksAddKey again", line(pass, pass2), slot("luksAddKey")...),
				p("luksKillSlot", line(pass), "luksKillSlot", img, "1"),
				p("luksDump --dump-volume-key", line(pass), "luksDump", "--dump-volume-key", img),
			)
			if typ == "luks1" { // write and read serve LUKS1 images only
				paths = append(paths,
					p("write", func() []byte { return append(line(pass)(), "DATA"...) }, "write", img, "--offset-bytes", "1000"),
					p("read", nil, "read", img, "--offset-bytes", "1000", "--size-bytes", "4", "-d", kf))
			}
		}
	}
	plainImg := filepath.Join(dir, "plain.img")
	require.NoError(t, os.WriteFile(plainImg, make([]byte, 1<<20), 0o600))
	// The host has no device-mapper: the mapping fails after the key was derived, which is
	// the part that handles the passphrase.
	paths = append(paths, path{name: "open --type plain", args: []string{"open", "--type", "plain", "-q", "-c", "aes-cbc-essiv:sha256", "-s", "256", plainImg, "memscan-plain"}, stdin: line(pass), code: -1})

	probes, remnants := 0, 0
	for _, pc := range paths {
		var in []byte
		if pc.stdin != nil {
			in = pc.stdin()
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"gocryptsetup"}, pc.args...), bytes.NewReader(in), &stdout, &stderr, &fakeTerm{})
		clear(in)
		clear(stdout.Bytes())
		if pc.code >= 0 {
			require.Equal(t, pc.code, code, "%s: %s", pc.name, stderr.String())
		}
		hits := testenv.MemFind(t, needles...)
		probes++
		if len(hits) > 0 {
			remnants++
		}
		for _, h := range hits {
			t.Errorf("after %s: %v", pc.name, h)
		}
	}
	t.Logf("%d paths × %d needles: %d probes with a remnant", probes, len(needles), remnants)
}

// memscanChildEnv makes the test binary the child of TestNoGeneratedKeyLeftInMemory: its
// value is the CLI's arguments separated by U+001F (none of them secret).
const memscanChildEnv = "GOCRYPTSETUP_MEMSCAN_CHILD"

// TestNoGeneratedKeyLeftInMemory runs luksFormat without --volume-key-file, so that the
// program generates the volume key, and scans for that key afterwards. The test cannot know
// the key before the scan without holding a copy itself, so the work is split: a child
// (this test binary again) runs run() with the passphrase on a pipe, reports the exit code
// on fd 3 and stops itself with SIGSTOP; only then does the parent learn the key, with
// luksDump --dump-volume-key --volume-key-file in a third process, and scan the stopped
// child's memory through /proc/PID/mem. The audit found the key on the system stack, where
// Go's vDSO getrandom (crypto/rand, and unix.Getrandom too) had put it.
func TestNoGeneratedKeyLeftInMemory(t *testing.T) {
	if args := os.Getenv(memscanChildEnv); args != "" {
		memscanChild(strings.Split(args, "\x1f"))
	}
	dir := t.TempDir()
	raw := make([]byte, 24)
	_, err := rand.Read(raw)
	require.NoError(t, err)
	for i := range raw {
		raw[i] = 'a' + raw[i]%26
	}
	pass := testenv.Mask(raw, 0xa5)
	clear(raw)

	for _, typ := range []string{"luks1", "luks2"} {
		t.Run(typ, func(t *testing.T) {
			img := filepath.Join(dir, typ+".img")
			require.NoError(t, os.WriteFile(img, make([]byte, 20<<20), 0o600))
			args := []string{"-q", "luksFormat", "--type", typ, iters}
			if typ == "luks2" {
				args = append(args, "--pbkdf", "pbkdf2") // argon2's 1 GiB would make the scan slow
			}
			args = append(args, img)

			status, statusW, err := os.Pipe()
			require.NoError(t, err)
			defer status.Close()
			p := pass.Plain()
			stdin := append(append(make([]byte, 0, len(p)+1), p...), '\n')
			clear(p)
			var stderr bytes.Buffer
			cmd := exec.Command(os.Args[0], "-test.run=^TestNoGeneratedKeyLeftInMemory$")
			cmd.Env = append(os.Environ(), memscanChildEnv+"="+strings.Join(args, "\x1f"))
			cmd.Stdin = bytes.NewReader(stdin)
			cmd.Stderr = &stderr
			cmd.ExtraFiles = []*os.File{statusW}
			require.NoError(t, cmd.Start())
			statusW.Close()
			pid := cmd.Process.Pid
			defer func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				clear(stdin)
			}()

			// The child builds the gocryptsetup binary in TestMain first (cached) and then
			// formats; a minute covers a loaded machine.
			require.NoError(t, status.SetReadDeadline(time.Now().Add(2*time.Minute)))
			line, err := bufio.NewReader(status).ReadString('\n')
			require.NoError(t, err, "child: %s", &stderr)
			code, err := strconv.Atoi(strings.TrimSpace(line))
			require.NoError(t, err, "child said %q", line)
			require.Equal(t, exitOK, code, "child: %s", &stderr)
			// The child stops itself; stopping it from here too costs nothing and does not
			// depend on the child's signal being acted on before wait4 looks.
			require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
			var ws syscall.WaitStatus
			for { // wait4 with WUNTRACED reports the stop without reaping the child
				_, err := syscall.Wait4(pid, &ws, syscall.WUNTRACED, nil)
				if err == syscall.EINTR {
					continue
				}
				require.NoError(t, err)
				break
			}
			require.True(t, ws.Stopped(), "child not stopped: %v", ws)

			vkf := filepath.Join(dir, typ+".vk")
			p = pass.Plain()
			r := runIn(t, dir, binPath, string(p)+"\n", "luksDump", "--dump-volume-key", "--volume-key-file", vkf, img)
			clear(p)
			require.Equal(t, exitOK, r.code, r.stderr)
			k, err := os.ReadFile(vkf)
			require.NoError(t, err)
			require.NoError(t, os.Remove(vkf))
			vkey := testenv.Mask(k, 0x5a)
			clear(k)

			var needles []testenv.Needle
			for _, s := range []struct {
				name string
				m    testenv.Masked
			}{{"passphrase", pass}, {"generated volume key", vkey}} {
				needles = append(needles,
					testenv.Needle{Name: s.name, Secret: s.m},
					testenv.Needle{Name: s.name + " XOR 0x36 (HMAC ipad)", Secret: s.m, Xor: 0x36, Tail: 4},
					testenv.Needle{Name: s.name + " XOR 0x5c (HMAC opad)", Secret: s.m, Xor: 0x5c, Tail: 4})
			}
			// The image's path is in the child's argv and environment: a scan that misses it
			// is not reading the child.
			control := testenv.MemFindPID(t, pid, testenv.Needle{Name: "image path", Secret: testenv.Mask([]byte(img), 0x11)})
			require.NotEmpty(t, control, "the scan of the child found not even the image path")
			hits := testenv.MemFindPID(t, pid, needles...)
			for _, h := range hits {
				t.Errorf("after %s luksFormat with a generated key: %v", typ, h)
			}
			t.Logf("%s luksFormat, generated key: %d needles, %d remnants in the child", typ, len(needles), len(hits))
		})
	}
}

// memscanChild is the child's side: run the CLI with the passphrase on stdin (the pipe the
// real program reads), say the exit code on fd 3, then stop so the parent scans a process
// that no longer changes. It never returns.
func memscanChild(args []string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"gocryptsetup"}, args...), os.Stdin, &stdout, &stderr, &fakeTerm{})
	os.Stderr.Write(stderr.Bytes())
	fmt.Fprintf(os.NewFile(3, "status"), "%d\n", code)
	_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
	time.Sleep(time.Hour) // the parent kills the child when it is done
	os.Exit(0)
}

// TestLuksFormatKeyFromGetrandomSyscall checks with strace that luksFormat gets its volume
// key (64 bytes: aes-xts-plain64 with -s 512) from the getrandom system call, which writes
// into the key's buffer and nowhere else. crypto/rand on this kernel makes no such call: its
// bytes come from the vDSO, in user space. raw=getrandom keeps strace from printing the
// bytes it returned.
func TestLuksFormatKeyFromGetrandomSyscall(t *testing.T) {
	strace := testenv.LookPath(t, "strace", "apt-get install strace")
	dir := t.TempDir()
	for _, typ := range []string{"luks1", "luks2"} {
		img := filepath.Join(dir, typ+".img")
		require.NoError(t, os.WriteFile(img, make([]byte, 20<<20), 0o600))
		trace := filepath.Join(dir, typ+".trace")
		args := []string{"-f", "-e", "trace=getrandom", "-e", "raw=getrandom", "-e", "signal=none", "-o", trace,
			binPath, "-q", "luksFormat", "--type", typ, "-c", "aes-xts-plain64", "-s", "512", iters}
		if typ == "luks2" {
			args = append(args, "--pbkdf", "pbkdf2")
		}
		r := runIn(t, dir, strace, "memscan-passphrase\n", append(args, img)...)
		require.Equal(t, exitOK, r.code, r.stderr)
		b, err := os.ReadFile(trace)
		require.NoError(t, err)
		assert.Regexp(t, `getrandom\(0x[0-9a-f]+, 0x40, 0\) += 0x40`, string(b), "%s: no 64-byte getrandom system call", typ)
	}
}
