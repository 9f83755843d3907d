package vmtest

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

type cpioMember struct {
	Name  string
	Mode  uint32
	Data  string
	Major uint32
	Minor uint32
}

func readAll(t testing.TB, archive []byte) []cpioMember {
	t.Helper()
	var got []cpioMember
	err := readCPIO(bytes.NewReader(archive), func(h cpioHeader, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		got = append(got, cpioMember{h.Name, h.Mode, string(b), h.RDevMajor, h.RDevMinor})
		return nil
	})
	require.NoError(t, err)
	return got
}

func sampleArchive(t testing.TB, withDevice bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	require.NoError(t, c.Dir("dev", 0o755))
	if withDevice {
		require.NoError(t, c.CharDev("/dev/console", 0o600, 5, 1))
	}
	require.NoError(t, c.Bytes("/init", 0o755, []byte("#!/bin/true\n")))
	require.NoError(t, c.Bytes("usr/lib/x86_64-linux-gnu/libx.so.1", 0o644, []byte("abc"))) // parents made
	require.NoError(t, c.Symlink("lib", "usr/lib"))
	require.NoError(t, c.Bytes("empty", 0o600, nil))
	require.NoError(t, c.Dir("tmp", 0o1777))
	require.NoError(t, c.Close())
	return buf.Bytes()
}

func TestCPIOWriterRoundTrip(t *testing.T) {
	got := readAll(t, sampleArchive(t, true))
	want := []cpioMember{
		{Name: "dev", Mode: modeDir | 0o755},
		{Name: "dev/console", Mode: modeChr | 0o600, Major: 5, Minor: 1},
		{Name: "init", Mode: modeFile | 0o755, Data: "#!/bin/true\n"},
		{Name: "usr", Mode: modeDir | 0o755},
		{Name: "usr/lib", Mode: modeDir | 0o755},
		{Name: "usr/lib/x86_64-linux-gnu", Mode: modeDir | 0o755},
		{Name: "usr/lib/x86_64-linux-gnu/libx.so.1", Mode: modeFile | 0o644, Data: "abc"},
		{Name: "lib", Mode: modeLink | 0o777, Data: "usr/lib"},
		{Name: "empty", Mode: modeFile | 0o600},
		{Name: "tmp", Mode: modeDir | 0o1777},
	}
	assert.Equal(t, want, got)
}

func TestCPIOWriterLayout(t *testing.T) {
	a := sampleArchive(t, false)
	assert.Zero(t, len(a)%4, "members are 4-byte aligned, so is the archive")
	assert.True(t, bytes.HasPrefix(a, []byte("070701")))
	assert.Contains(t, string(a), "TRAILER!!!\x00")
	// Inode numbers are unique: the kernel treats equal numbers with nlink > 1 as hard links.
	inos := map[uint32]string{}
	require.NoError(t, readCPIO(bytes.NewReader(a), func(h cpioHeader, _ io.Reader) error {
		assert.NotContains(t, inos, h.Ino, "inode of %s reused", h.Name)
		inos[h.Ino] = h.Name
		return nil
	}))
}

func TestCPIOWriterErrors(t *testing.T) {
	tests := []struct {
		name string
		do   func(c *cpioWriter) error
	}{
		{"duplicate", func(c *cpioWriter) error {
			_ = c.Bytes("a", 0o644, nil)
			return c.Bytes("/a", 0o644, nil)
		}},
		{"file over dir", func(c *cpioWriter) error {
			_ = c.Bytes("d/x", 0o644, nil)
			return c.Bytes("d", 0o644, nil)
		}},
		{"empty name", func(c *cpioWriter) error { return c.Bytes("/", 0o644, nil) }},
		{"NUL in name", func(c *cpioWriter) error { return c.Bytes("a\x00b", 0o644, nil) }},
		{"short reader", func(c *cpioWriter) error { return c.File("a", 0o644, 10, strings.NewReader("abc")) }},
		{"after close", func(c *cpioWriter) error {
			_ = c.Close()
			return c.Bytes("a", 0o644, nil)
		}},
		{"sticky", func(c *cpioWriter) error {
			_ = c.Bytes("/", 0o644, nil)
			_ = c.Bytes("fine", 0o644, nil)
			return c.Close()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Error(t, tc.do(newCPIOWriter(io.Discard)))
		})
	}
}

func TestCPIOWriterCleansNames(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	require.NoError(t, c.Bytes("/a//b/../c/./f", 0o644, []byte("x")))
	require.NoError(t, c.Bytes("../../escape", 0o644, []byte("y")))
	require.NoError(t, c.Close())
	var names []string
	for _, m := range readAll(t, buf.Bytes()) {
		names = append(names, m.Name)
	}
	assert.Equal(t, []string{"a", "a/c", "a/c/f", "escape"}, names)
}

func TestReadCPIORejectsGarbage(t *testing.T) {
	good := sampleArchive(t, true)
	tests := map[string][]byte{
		"empty":       nil,
		"bad magic":   append([]byte("070707"), good[6:]...),
		"bad hex":     append(append([]byte(nil), good[:10]...), append([]byte("zz"), good[12:]...)...),
		"truncated":   good[:len(good)/2],
		"no trailer":  good[:len(good)-124],
		"huge name":   []byte("070701" + strings.Repeat("0", 88) + "00010000" + "00000000"),
		"zero length": []byte("070701" + strings.Repeat("0", 104)),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			err := readCPIO(bytes.NewReader(b), func(cpioHeader, io.Reader) error { return nil })
			assert.ErrorIs(t, err, errCPIOFormat)
		})
	}
}

// TestCPIOWithHostTool lets GNU cpio list and extract what the writer produced.
func TestCPIOWithHostTool(t *testing.T) {
	cpio := testenv.LookPath(t, "cpio", "apt-get install cpio")
	a := sampleArchive(t, false)

	list := exec.Command(cpio, "-t", "--quiet")
	list.Stdin = bytes.NewReader(a)
	out, err := list.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "dev\ninit\nusr\nusr/lib\nusr/lib/x86_64-linux-gnu\nusr/lib/x86_64-linux-gnu/libx.so.1\nlib\nempty\ntmp\n", string(out))

	dir := t.TempDir()
	extract := exec.Command(cpio, "-i", "-d", "--quiet", "--no-absolute-filenames")
	extract.Dir = dir
	extract.Stdin = bytes.NewReader(a)
	out, err = extract.CombinedOutput()
	require.NoError(t, err, "%s", out)
	b, err := os.ReadFile(filepath.Join(dir, "init"))
	require.NoError(t, err)
	assert.Equal(t, "#!/bin/true\n", string(b))
	st, err := os.Stat(filepath.Join(dir, "init"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), st.Mode().Perm())
	target, err := os.Readlink(filepath.Join(dir, "lib"))
	require.NoError(t, err)
	assert.Equal(t, "usr/lib", target)
	b, err = os.ReadFile(filepath.Join(dir, "lib", "x86_64-linux-gnu", "libx.so.1"))
	require.NoError(t, err)
	assert.Equal(t, "abc", string(b))
}

func FuzzReadCPIO(f *testing.F) {
	f.Add(sampleArchive(f, true))
	f.Add([]byte("070701"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = readCPIO(bytes.NewReader(b), func(_ cpioHeader, r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		})
	})
}

// FuzzCPIORoundTrip: whatever name and content the writer accepts reads back identically.
func FuzzCPIORoundTrip(f *testing.F) {
	f.Add("init", []byte("x"), uint16(0o755))
	f.Add("a/b/c", []byte{}, uint16(0o644))
	f.Add("../x/./y", []byte("\x00\x01"), uint16(0o7777))
	// The audit's input: a 4096-byte name the writer accepted and the reader refused.
	f.Add(strings.Repeat("n", 4096), []byte("x"), uint16(0o644))
	f.Add(strings.Repeat("n", 4095), []byte("x"), uint16(0o644))
	f.Fuzz(func(t *testing.T, name string, data []byte, perm uint16) {
		var buf bytes.Buffer
		c := newCPIOWriter(&buf)
		if c.Bytes(name, uint32(perm), data) != nil {
			return
		}
		require.NoError(t, c.Close())
		got := readAll(t, buf.Bytes())
		require.NotEmpty(t, got)
		last := got[len(got)-1]
		clean, err := cleanName(name)
		require.NoError(t, err)
		assert.Equal(t, clean, last.Name)
		assert.Equal(t, string(data), last.Data)
		assert.Equal(t, modeFile|uint32(perm)&0o7777, last.Mode)
	})
}

func BenchmarkCPIOWriter(b *testing.B) {
	data := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)) * 16)
	for b.Loop() {
		c := newCPIOWriter(io.Discard)
		for i := range 16 {
			_ = c.Bytes("lib/f"+string(rune('a'+i)), 0o644, data)
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
