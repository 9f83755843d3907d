package grubconf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// makeGrubenv builds a block of the given size holding the lines.
func makeGrubenv(size int, lines ...string) []byte {
	b := []byte(grubenvSignature + strings.Join(lines, ""))
	for len(b) < size {
		b = append(b, '#')
	}
	return b
}

func TestGrubenvFixture(t *testing.T) {
	in := fixture(t, "09-centos8-stream-grubenv.TRUNCATED-946-bytes")
	g := parseGrubenv(in)
	require.Equal(t, in, g.Bytes())
	require.True(t, g.Valid())
	ko, ok := g.Get("kernelopts")
	require.True(t, ok)
	assert.Equal(t, "root=UUID=d0be5cb9-622d-42d5-a531-674aaa120309 ro crashkernel=auto rhgb quiet console=ttyS1,57600n8", ko)
	nv, _ := addCmdlineArg(ko, "rd.luks=0")
	require.NoError(t, g.Set("kernelopts", nv))
	out := g.Bytes()
	assert.Len(t, out, len(in), "size kept (this upstream sample is 946 bytes)")
	golden(t, "09-centos8-stream-grubenv.add-rd.luks=0", out)
	saved, _ := g.Get("saved_entry")
	assert.Equal(t, "9af7b02ac08149d985841c07c8ff366e-5.18.0", saved)

	// The same edit on a real-size block.
	full := append(bytes.TrimRight(in, "#"), bytes.Repeat([]byte("#"), grubenvSize-len(bytes.TrimRight(in, "#")))...)
	require.Len(t, full, grubenvSize)
	g2 := parseGrubenv(full)
	require.NoError(t, g2.Set("kernelopts", nv))
	assert.Len(t, g2.Bytes(), grubenvSize)
	require.NoError(t, g2.Set("kernelopts", ko))
	assert.Equal(t, full, g2.Bytes(), "setting the old value back restores the bytes")
}

func TestGrubenvEscapingAndOverflow(t *testing.T) {
	g := parseGrubenv(makeGrubenv(grubenvSize, "a=1\n", "kernelopts=ro\n"))
	require.NoError(t, g.Set("kernelopts", "ro x=a\\b\nc"))
	v, _ := g.Get("kernelopts")
	assert.Equal(t, "ro x=a\\b\nc", v)
	assert.Contains(t, string(g.Bytes()), "kernelopts=ro x=a\\\\b\\\nc\n")
	a, _ := g.Get("a")
	assert.Equal(t, "1", a)
	assert.Len(t, g.Bytes(), grubenvSize)

	// New variable goes before the padding.
	require.NoError(t, g.Set("new", "v"))
	n, _ := g.Get("new")
	assert.Equal(t, "v", n)

	before := g.Bytes()
	err := g.Set("kernelopts", strings.Repeat("x", grubenvSize))
	assert.ErrorIs(t, err, ErrGrubenvOverflow)
	assert.Equal(t, before, g.Bytes(), "unchanged after a refused edit")

	// Exactly filling the padding works.
	small := parseGrubenv(makeGrubenv(len(grubenvSignature)+len("k=ab\n")+3, "k=ab\n"))
	require.NoError(t, small.Set("k", "abcde"))
	assert.Equal(t, grubenvSignature+"k=abcde\n", string(small.Bytes()))
	assert.ErrorIs(t, small.Set("k", "abcdef"), ErrGrubenvOverflow)

	assert.ErrorIs(t, parseGrubenv([]byte("not a grubenv")).Set("k", "v"), ErrBadGrubenv)
	assert.ErrorIs(t, parseGrubenv([]byte(grubenvSignature+"k=v")).Set("k", "w"), ErrBadGrubenv, "no padding")
}

// TestGrubenvAgainstGrubEditenv compares our edit with GRUB's own tool byte for byte and
// has GRUB read our output back.
func TestGrubenvAgainstGrubEditenv(t *testing.T) {
	ge := testenv.LookPath(t, "grub-editenv", "apt-get install grub-common")
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref")
	run := func(args ...string) string {
		out, err := exec.Command(ge, append([]string{ref}, args...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	run("create")
	run("set", "saved_entry=abc")
	run("set", "kernelopts=root=UUID=d0be ro crashkernel=auto quiet")
	run("set", "boot_success=0")
	orig, err := os.ReadFile(ref)
	require.NoError(t, err)
	require.Len(t, orig, grubenvSize)

	for _, value := range []string{
		"root=UUID=d0be ro crashkernel=auto quiet rd.luks=0",
		"short",
		"with\\backslash and\nnewline",
	} {
		require.NoError(t, os.WriteFile(ref, orig, 0o644))
		run("set", "kernelopts="+value)
		want, err := os.ReadFile(ref)
		require.NoError(t, err)

		g := parseGrubenv(orig)
		require.NoError(t, g.Set("kernelopts", value))
		assert.Equal(t, string(want), string(g.Bytes()), "same bytes as grub-editenv for %q", value)

		ours := filepath.Join(dir, "ours")
		require.NoError(t, os.WriteFile(ours, g.Bytes(), 0o644))
		out, err := exec.Command(ge, ours, "list").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "kernelopts="+value+"\n")
		assert.Contains(t, string(out), "saved_entry=abc\n")
	}
}

func FuzzGrubenv(f *testing.F) {
	f.Add(fixture(f, "09-centos8-stream-grubenv.TRUNCATED-946-bytes"), "ro rd.luks=0")
	f.Add(makeGrubenv(grubenvSize, "kernelopts=a\\\nb\n"), "x")
	f.Add([]byte("garbage"), "")
	f.Fuzz(func(t *testing.T, b []byte, value string) {
		g := parseGrubenv(b)
		require.Equal(t, b, g.Bytes())
		old, had := g.Get("kernelopts")
		if err := g.Set("kernelopts", value); err != nil {
			require.Equal(t, b, g.Bytes(), "a failed Set changes nothing")
			return
		}
		require.Len(t, g.Bytes(), len(b))
		got, ok := g.Get("kernelopts")
		require.True(t, ok)
		require.Equal(t, value, got)
		if had && !strings.Contains(old, "\x00") {
			require.NoError(t, g.Set("kernelopts", old))
			back, _ := g.Get("kernelopts")
			require.Equal(t, old, back)
		}
	})
}
