package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProbe(t *testing.T) {
	with := func(off int, b []byte) []byte {
		buf := make([]byte, probeSize)
		copy(buf[off:], b)
		return buf
	}
	ext := with(1080, []byte{0x53, 0xef})
	binary.LittleEndian.PutUint32(ext[1024+24:], 2)
	binary.LittleEndian.PutUint32(ext[1024+76:], 1)
	extBadRev := with(1080, []byte{0x53, 0xef})
	binary.LittleEndian.PutUint32(extBadRev[1024+76:], 0x12345678)
	random := bytes.Repeat([]byte{0x5a, 0x13, 0xc7}, probeSize/3+1)[:probeSize]
	mbr := with(510, []byte{0x55, 0xaa})
	mbrRandom := with(510, []byte{0x55, 0xaa})
	mbrRandom[446] = 0x42
	tests := []struct {
		name string
		buf  []byte
		want string
	}{
		{"zeros", make([]byte, probeSize), ""},
		{"random", random, ""},
		{"luks", with(0, luksMagic), "LUKS header"},
		{"xfs", with(0, []byte("XFSB")), "xfs filesystem"},
		{"ext4", ext, "ext2/3/4 filesystem"},
		{"ext magic in random data", extBadRev, ""},
		{"btrfs", with(0x10040, []byte("_BHRfS_M")), "btrfs filesystem"},
		{"swap 4k", with(4086, []byte("SWAPSPACE2")), "swap space"},
		{"swap 64k old", with(65526, []byte("SWAP-SPACE")), "swap space"},
		{"gpt", with(512, []byte("EFI PART")), "GPT partition table"},
		{"mbr", mbr, "MBR partition table or boot sector"},
		{"55aa in random data", mbrRandom, ""},
		{"short device", []byte("LUKS"), ""},
		{"short luks", luksMagic, "LUKS header"},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, probe(tt.buf))
		})
	}
}

// The real mke2fs writes what probe recognises.
func TestProbeRealExt4(t *testing.T) {
	mkfs := lookTool(t, "mkfs.ext4", "apt-get install e2fsprogs")
	img := filepath.Join(t.TempDir(), "fs.img")
	require.NoError(t, os.WriteFile(img, make([]byte, 8<<20), 0o600))
	require.NoError(t, runChild(context.Background(), []string{mkfs, "-q", "-F", "-m", "0", img}, childEnv(), os.Stdout, os.Stderr))
	f, err := os.Open(img)
	require.NoError(t, err)
	defer f.Close()
	what, err := probeDevice(context.Background(), f, img)
	require.NoError(t, err)
	assert.Equal(t, "ext2/3/4 filesystem", what)
	typ, err := fsType(img)
	require.NoError(t, err)
	assert.Equal(t, "ext4", typ)
}

func FuzzProbe(f *testing.F) {
	f.Add(luksMagic)
	f.Add(make([]byte, 1100))
	f.Add([]byte("XFSB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = probe(b) // must not panic on any length or content
	})
}

func TestParseMountinfo(t *testing.T) {
	data := "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n" +
		"35 22 253:0 / /encrypted\\040vol rw,relatime shared:20 master:1 - ext4 /dev/mapper/my_enc_fs rw\n" +
		"garbage line\n" +
		"36 22 0:30 / /tmp rw - tmpfs tmpfs rw\n"
	got := parseMountinfo(data)
	assert.Equal(t, []mountEntry{
		{MajorMinor: "259:1", MountPoint: "/", FSType: "ext4", Source: "/dev/nvme0n1p1"},
		{MajorMinor: "253:0", MountPoint: "/encrypted vol", FSType: "ext4", Source: "/dev/mapper/my_enc_fs"},
		{MajorMinor: "0:30", MountPoint: "/tmp", FSType: "tmpfs", Source: "tmpfs"},
	}, got)
	mp, ok := findOurMount(got, "/elsewhere", "my_enc_fs")
	assert.True(t, ok)
	assert.Equal(t, "/encrypted vol", mp)
	_, ok = findOurMount(got, "/tmp", "other")
	assert.False(t, ok)
	assert.Equal(t, `a\b\9`, unescapeOctal(`a\134b\9`))
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add("22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n")
	f.Add("1 2 3 4 \\0 6 - x")
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range parseMountinfo(s) {
			require.NotEmpty(t, m.FSType)
		}
	})
}

// Probe runs once per setup over 68 KiB; this shows it is negligible next to the read.
func BenchmarkProbe(b *testing.B) {
	buf := bytes.Repeat([]byte{0x5a, 0x13, 0xc7, 0x01}, probeSize/4)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		_ = probe(buf)
	}
}
