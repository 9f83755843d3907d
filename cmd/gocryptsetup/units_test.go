package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// read and write count bytes in --offset-bytes/--size-bytes; cryptsetup's sector-unit
// -o/--offset and -b/--size, which used to mean bytes here, are refused with a usage error
// before the passphrase is read or anything is written.
func TestReadWriteByteUnits(t *testing.T) {
	dir := copyTemplates(t, "xts.img")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pass"), []byte("pass0"), 0o600))
	img := filepath.Join(dir, "xts.img")

	for _, args := range [][]string{
		{"write", "xts.img", "--offset", "1"},
		{"write", "xts.img", "-o", "1"},
		{"read", "xts.img", "--offset=1"},
		{"read", "xts.img", "--size", "1"},
		{"read", "xts.img", "-b1"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			before := fileSum(t, img)
			// No -d: a passphrase prompt would consume stdin; the refusal comes first.
			r := runIn(t, dir, binPath, "pass0\nDATA", args...)
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, "counts 512-byte sectors in cryptsetup; "+args[0]+" takes --")
			assert.Contains(t, r.stderr, "-bytes in bytes.")
			assert.Contains(t, r.stderr, "Usage: gocryptsetup")
			assert.Empty(t, r.stdout)
			assert.Equal(t, before, fileSum(t, img), "image unchanged")
		})
	}

	w := runIn(t, dir, binPath, "0123456789", "write", "xts.img", "-d", "pass", "--offset-bytes", "1000")
	require.Equal(t, 0, w.code, w.stderr)
	r := runIn(t, dir, binPath, "", "read", "xts.img", "-d", "pass", "--offset-bytes", "1003", "--size-bytes", "4")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "3456", r.stdout)

	// --size-bytes 0 means to the end, as an absent --size-bytes does (and as 0 does for
	// cryptsetup's --size and --keyfile-size); it used to mean "nothing".
	all := runIn(t, dir, binPath, "", "read", "xts.img", "-d", "pass", "--offset-bytes", "1000")
	require.Equal(t, 0, all.code, all.stderr)
	zero := runIn(t, dir, binPath, "", "read", "xts.img", "-d", "pass", "--offset-bytes", "1000", "--size-bytes", "0")
	require.Equal(t, 0, zero.code, zero.stderr)
	assert.Len(t, zero.stdout, 2<<20-1000)
	assert.True(t, bytes.Equal([]byte(all.stdout), []byte(zero.stdout)))

	neg := runIn(t, dir, binPath, "", "read", "xts.img", "-d", "pass", "--size-bytes", "-1")
	assert.Equal(t, 1, neg.code)
	assert.Contains(t, neg.stderr, "Negative number for option not permitted.")
	wsize := runIn(t, dir, binPath, "x", "write", "xts.img", "-d", "pass", "--size-bytes", "1")
	assert.Equal(t, 1, wsize.code)
	assert.Contains(t, wsize.stderr, "Option --size-bytes is not allowed with write action.")
}

// --help tells the units and what write does with a pipe larger than the payload.
func TestReadWriteHelp(t *testing.T) {
	r := runIn(t, t.TempDir(), binPath, "", "--help")
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "[-o|--offset=SECTORS]")
	assert.Contains(t, r.stdout, "[--offset-bytes=BYTES]")
	assert.Contains(t, r.stdout, "read <device> - write decrypted payload bytes to stdout, from --offset-bytes N (default 0), --size-bytes N bytes (default, or 0: to the end of the payload)")
	assert.Contains(t, r.stdout, "from a pipe, whose size is unknown, 1 MiB chunks are written until one would cross the end of the payload, then it fails with \"Input does not fit\" and what was written stays written")
}

// What the help says about a pipe is what happens: the chunks before the one crossing the
// end are written, then "Input does not fit".
func TestWritePipeLargerThanPayload(t *testing.T) {
	dir := copyTemplates(t, "xts.img")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pass"), []byte("pass0"), 0o600))
	in := bytes.Repeat([]byte("y"), 3<<20) // the payload is 2 MiB
	w := runIn(t, dir, binPath, string(in), "write", "xts.img", "-d", "pass")
	assert.Equal(t, 1, w.code)
	assert.Contains(t, w.stderr, "Input does not fit")
	r := runIn(t, dir, binPath, "", "read", "xts.img", "-d", "pass")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, strings.Repeat("y", 2<<20), r.stdout, "two 1 MiB chunks fit, the third crossed the end")
}
