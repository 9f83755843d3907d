package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hookProbeArg makes the test binary act as a hook: it records its argv, environment and
// standard input into a JSON file, so tests can check that nothing secret reached it.
const hookProbeArg = "hook-probe"

type probeRecord struct {
	Args  []string
	Env   []string
	Stdin string
	Cwd   string
}

func hookProbe(out string) int {
	stdin, _ := io.ReadAll(os.Stdin)
	cwd, _ := os.Getwd()
	b, _ := json.Marshal(probeRecord{Args: os.Args, Env: os.Environ(), Stdin: string(stdin), Cwd: cwd})
	if err := os.WriteFile(out, b, 0o600); err != nil {
		return 1
	}
	return 0
}

func readProbe(t *testing.T, path string) probeRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err, "the hook did not run")
	var r probeRecord
	require.NoError(t, json.Unmarshal(b, &r))
	return r
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"systemctl start mysqld", []string{"systemctl", "start", "mysqld"}, false},
		{"  a \t b  ", []string{"a", "b"}, false},
		{`sh -c 'echo "$HOME" > /tmp/x'`, []string{"sh", "-c", `echo "$HOME" > /tmp/x`}, false},
		{`echo "a \"quoted\" \\ word" x`, []string{"echo", `a "quoted" \ word`, "x"}, false},
		{`echo "keep \n as is"`, []string{"echo", `keep \n as is`}, false},
		{`a\ b c`, []string{"a b", "c"}, false},
		{`''`, []string{""}, false},
		{`x'y'"z"`, []string{"xyz"}, false},
		{"", nil, false},
		{`'open`, nil, true},
		{`"open`, nil, true},
		{`trailing\`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := splitWords(tt.in)
			if tt.err {
				require.ErrorIs(t, err, errHookSyntax)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseHooksFile(t *testing.T) {
	cmds, err := parseHooksFile("# start the database that lives on the volume\n\n  systemctl start mysqld\r\n\t# indented comment\n/usr/local/bin/check --dir '/encrypted_vol/my sql'\n")
	require.NoError(t, err)
	assert.Equal(t, [][]string{
		{"systemctl", "start", "mysqld"},
		{"/usr/local/bin/check", "--dir", "/encrypted_vol/my sql"},
	}, cmds)
	_, err = parseHooksFile("ok\nbad 'quote\n")
	require.ErrorIs(t, err, errHookSyntax)
	assert.Contains(t, err.Error(), "line 2")
}

func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{"a b", `'x y' "z\"w"`, `a\ b`, `"`, `\`, "\t'", "",
		"0\u20090", // the audit's input: strings.Fields splits on U+2009, a shell does not
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitWords(s)
		if err != nil {
			return
		}
		// A line without quotes or escapes splits on blanks and tabs only, as a shell's IFS
		// does (strings.Fields, the old oracle, also splits on Unicode spaces).
		if !strings.ContainsAny(s, `'"\`) {
			fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
			if len(fields) == 0 {
				require.Empty(t, words)
				return
			}
			require.Equal(t, fields, words)
		}
	})
}

func FuzzParseHooksFile(f *testing.F) {
	f.Add("# c\nsystemctl start mysqld\n'x'\n")
	f.Add("\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		cmds, err := parseHooksFile(s)
		if err == nil {
			for _, c := range cmds {
				require.NotEmpty(t, c)
			}
		}
	})
}

// Hooks get a clean environment, /dev/null as input, and only the command line they were
// configured with: a passphrase in this process's environment or on its standard input
// reaches none of them.
func TestHooksNeverSeeThePassphrase(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	out1, out2 := filepath.Join(dir, "one.json"), filepath.Join(dir, "two.json")
	hooksFile := filepath.Join(dir, "hooks")
	require.NoError(t, os.WriteFile(hooksFile, []byte("# from the file\n'"+self+"' "+hookProbeArg+" "+out1+"\n"), 0o600))
	t.Setenv("CLOUDLUKS_SECRET_IN_ENV", testPass) // must not be inherited

	h := newHarness(t, testPass+"\n")
	nvme := h.dev("nvme1n1")
	h.local.resolved["vol-0123456789abcdef0"] = nvme
	mp := tempMountPoint(t)
	require.Equal(t, 0, h.run("setup", "--volume-id", "vol-0123456789abcdef0", "--no-aws", "--mount-point", mp), h.stderr.String())
	require.Equal(t, 0, h.run("teardown", "--mount-point", mp))

	// The passphrase arrives on stdin followed by more bytes: a hook inheriting stdin would
	// see them.
	h.setStdin(testPass + "\n" + testPass + "\n")
	h.stdout.Reset()
	code := h.run("unlock", "--volume-id", "vol-0123456789abcdef0", "--no-aws", "--mount-point", mp,
		"--hooks-file", hooksFile, "--hook", self+" "+hookProbeArg+" "+out2)
	require.Equal(t, 0, code, h.stderr.String())
	assert.Contains(t, h.stdout.String(), "Step 4/4: post-mount hooks (2)...")
	assert.Contains(t, h.stdout.String(), "hook 1/2: "+self+" "+hookProbeArg+" "+out1)

	for _, out := range []string{out1, out2} {
		r := readProbe(t, out)
		all := strings.Join(r.Args, "\x00") + strings.Join(r.Env, "\x00") + r.Stdin
		assert.NotContains(t, all, testPass)
		assert.Equal(t, []string{self, hookProbeArg, out}, r.Args)
		assert.Equal(t, "", r.Stdin)
		assert.Equal(t, "/", r.Cwd)
		assert.ElementsMatch(t, []string{
			"PATH=" + hookPath,
			"ENCRYPTED_VOLUME_NAME=my_enc_fs",
			"ENCRYPTED_VOLUME_MOUNT=" + mp,
			"ENCRYPTED_VOLUME_DEVICE=/dev/mapper/my_enc_fs",
		}, r.Env)
	}
}

func TestHookFailureStopsAndKeepsTheMount(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, testPass+"\n")
	xvdf := h.dev("xvdf")
	mp := tempMountPoint(t)
	require.Equal(t, 0, h.run("setup", "--device", xvdf, "--mount-point", mp), h.stderr.String())
	require.Equal(t, 0, h.run("teardown", "--mount-point", mp))
	h.setStdin(testPass + "\n")
	code := h.run("unlock", "--device", xvdf, "--mount-point", mp,
		"--hook", "false", "--hook", "touch "+filepath.Join(dir, "never"))
	assert.Equal(t, exitOtherFail, code)
	assert.Contains(t, h.stderr.String(), "step 4/4 failed (post-mount hooks (2)): hook 1: false: exit status 1")
	assert.NoFileExists(t, filepath.Join(dir, "never"))
	assert.Len(t, h.local.mounts, 1, "the data stays available when only a hook failed")
}

func TestRunChildNotFound(t *testing.T) {
	err := runChild(context.Background(), []string{"no-such-program-cloudluks"}, childEnv(), io.Discard, io.Discard)
	require.Error(t, err)
	err = runChild(context.Background(), nil, childEnv(), io.Discard, io.Discard)
	require.ErrorIs(t, err, errHookSyntax)
	var buf bytes.Buffer
	require.NoError(t, runChild(context.Background(), []string{"sh", "-c", "echo $PATH"}, childEnv(), &buf, io.Discard))
	assert.Equal(t, hookPath+"\n", buf.String())
}

// A hook named without a slash is looked up in absolute directories only: a program planted
// in the current directory is not run even when this process's PATH lists "." or "bin".
func TestHookLookupIgnoresRelativePath(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "bin"), 0o755))
	for _, p := range []string{"planted-hook-cloudluks", "bin/planted-hook-cloudluks"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte("#!/bin/sh\ntouch planted-ran\n"), 0o755))
	}
	t.Chdir(dir)
	for _, path := range []string{".", "bin", "./bin", ":"} {
		t.Run(path, func(t *testing.T) {
			t.Setenv("PATH", path)
			_, err := lookPathIn("planted-hook-cloudluks", hookPath)
			require.ErrorIs(t, err, exec.ErrNotFound)
			err = runChild(context.Background(), []string{"planted-hook-cloudluks"}, childEnv(), io.Discard, io.Discard)
			require.ErrorIs(t, err, exec.ErrNotFound)
			assert.NoFileExists(t, filepath.Join(dir, "planted-ran"))
		})
	}
	// An absolute PATH entry still works.
	t.Setenv("PATH", filepath.Join(dir, "bin"))
	p, err := lookPathIn("planted-hook-cloudluks", hookPath)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "bin", "planted-hook-cloudluks"), p)
}

// mkfs runs like a hook: clean environment, no stdin, only the device as argument.
func TestMkfsGetsNoSecret(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	t.Setenv("CLOUDLUKS_SECRET_IN_ENV", testPass)
	out := filepath.Join(t.TempDir(), "mkfs.json")
	// The probe writes to its last argument, which is where Mkfs puts the device.
	require.NoError(t, sysLocal{}.Mkfs(context.Background(), []string{self, hookProbeArg}, out, io.Discard, io.Discard))
	r := readProbe(t, out)
	assert.Equal(t, []string{self, hookProbeArg, out}, r.Args)
	assert.Equal(t, []string{"PATH=" + hookPath}, r.Env)
	assert.Empty(t, r.Stdin)
}

func TestIterTimeFlag(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"2000", 2 * time.Second, false},
		{"1", time.Millisecond, false},
		{"500ms", 500 * time.Millisecond, false},
		{"3s", 3 * time.Second, false},
		{"-1s", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		var d time.Duration
		err := iterTime{&d}.Set(tt.in)
		if tt.err {
			assert.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, d, tt.in)
	}
	c, err := parseFlags("setup", []string{"--iter-time", "1500"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 1500*time.Millisecond, c.iterTime)
	c, err = parseFlags("setup", nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 2*time.Second, c.iterTime)
}
