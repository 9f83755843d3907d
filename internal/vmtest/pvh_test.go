package vmtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// The fixtures were made by the lz4 1.9.4 command line tool: `lz4 -l -9` of a 130595-byte
// pseudo-random text (long runs, overlapping matches) and `lz4 -l` of a short line.
func TestLZ4LegacyDecodeFixtures(t *testing.T) {
	b, err := os.ReadFile("testdata/legacy.lz4")
	require.NoError(t, err)
	got, err := lz4LegacyDecode(b, maxVmlinux)
	require.NoError(t, err)
	assert.Len(t, got, 130595)
	sum := sha256.Sum256(got)
	assert.Equal(t, "56cf55d81badeec79909dc6008d109eb99b4e8716680b65d45c0f7e6d4545ba2", hex.EncodeToString(sum[:]))

	b, err = os.ReadFile("testdata/short.lz4")
	require.NoError(t, err)
	got, err = lz4LegacyDecode(b, maxVmlinux)
	require.NoError(t, err)
	assert.Equal(t, "hello hello hello hello hello hello\n", string(got))

	_, err = lz4LegacyDecode(b, 10)
	assert.ErrorIs(t, err, errBzImage, "the output limit holds")
}

func TestLZ4LegacyDecodeRejects(t *testing.T) {
	frame := func(blocks ...[]byte) []byte {
		out := binary.LittleEndian.AppendUint32(nil, lz4LegacyMagic)
		for _, b := range blocks {
			out = binary.LittleEndian.AppendUint32(out, uint32(len(b)))
			out = append(out, b...)
		}
		return out
	}
	tests := map[string][]byte{
		"no magic":             {1, 2, 3, 4, 5},
		"empty frame":          frame(),
		"literals past end":    frame([]byte{0x50, 'a'}),
		"offset zero":          frame([]byte{0x10, 'a', 0, 0}),
		"offset before output": frame([]byte{0x10, 'a', 2, 0}),
		"truncated offset":     frame([]byte{0x10, 'a', 1}),
		"endless length":       frame([]byte{0xf0, 255, 255}),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := lz4LegacyDecode(b, 1<<20)
			assert.ErrorIs(t, err, errBzImage)
		})
	}
	// A valid hand-made block: literal "ab", then a 6-byte overlapping match at offset 2.
	got, err := lz4LegacyDecode(frame([]byte{0x22, 'a', 'b', 2, 0, 0x10, 'z'}), 1<<20)
	require.NoError(t, err)
	assert.Equal(t, "ababababz", string(got))
}

func FuzzLZ4LegacyDecode(f *testing.F) {
	for _, p := range []string{"testdata/short.lz4", "testdata/legacy.lz4"} {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := lz4LegacyDecode(b, 1<<20)
		if err == nil {
			assert.LessOrEqual(t, len(out), 1<<20)
		}
	})
}

func FuzzBzPayload(f *testing.F) {
	hdr := make([]byte, 0x400)
	copy(hdr[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(hdr[0x206:], 0x20f)
	hdr[0x1f1] = 1
	binary.LittleEndian.PutUint32(hdr[0x248:], 0)
	binary.LittleEndian.PutUint32(hdr[0x24c:], 16)
	f.Add(hdr)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := bzPayload(b)
		if err == nil {
			assert.LessOrEqual(t, len(p), len(b))
		}
		_, _ = extractVmlinux(b)
	})
}

func TestBzPayloadRejects(t *testing.T) {
	_, err := bzPayload(make([]byte, 100))
	assert.ErrorIs(t, err, errBzImage)
	hdr := make([]byte, 0x400)
	copy(hdr[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(hdr[0x206:], 0x206)
	_, err = bzPayload(hdr)
	assert.ErrorContains(t, err, "boot protocol")
	binary.LittleEndian.PutUint16(hdr[0x206:], 0x20f)
	binary.LittleEndian.PutUint32(hdr[0x24c:], 0xffffffff)
	_, err = bzPayload(hdr)
	assert.ErrorContains(t, err, "outside")
}

// TestExtractVmlinuxRealKernel extracts the Debian kernel and checks it is the ELF qemu boots
// with PVH.
func TestExtractVmlinuxRealKernel(t *testing.T) {
	k, err := findKernel(kernelDir())
	if err != nil {
		testenv.Missing(t, "the Debian cloud kernel", "run internal/vmtest/setup-kernel.sh")
	}
	bz, err := os.ReadFile(k.Vmlinuz)
	require.NoError(t, err)
	v, err := extractVmlinux(bz)
	require.NoError(t, err)
	assert.Greater(t, len(v), len(bz), "decompressed")
	p := filepath.Join(t.TempDir(), "vmlinux")
	require.NoError(t, os.WriteFile(p, v, 0o644))
	assert.True(t, hasPVHEntry(p), "CONFIG_PVH kernel carries XEN_ELFNOTE_PHYS32_ENTRY")
	assert.False(t, hasPVHEntry(k.Vmlinuz), "a bzImage is not an ELF file")
	assert.True(t, bytes.Contains(v, []byte(k.Release)), "the release string is inside")
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	p, err := writeAtomic(dir, "f", []byte("data"))
	require.NoError(t, err)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "data", string(b))
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 1, "no temporary file left")
	_, err = writeAtomic(filepath.Join(dir, "missing"), "f", nil)
	assert.Error(t, err)
}
