package main

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// setup's wording of what internal/blkid finds (its own tests cover the recognising).
func TestProbe(t *testing.T) {
	with := func(off int, b []byte) []byte {
		buf := make([]byte, probeSize)
		copy(buf[off:], b)
		return buf
	}
	ext := with(1080, []byte{0x53, 0xef})
	binary.LittleEndian.PutUint32(ext[1024+24:], 2)
	binary.LittleEndian.PutUint32(ext[1024+76:], 1)
	gpt := with(510, []byte{0x55, 0xaa})
	gpt[446+4] = 0xee
	copy(gpt[512:], "EFI PART")
	tests := []struct {
		name string
		buf  []byte
		want string
	}{
		{"zeros", make([]byte, probeSize), ""},
		{"luks", with(0, []byte("LUKS\xba\xbe\x00\x01")), "LUKS header"},
		{"ext", ext, "ext2/3/4 filesystem"},
		{"btrfs", with(0x10040, []byte("_BHRfS_M")), "btrfs filesystem"},
		{"swap", with(4086, []byte("SWAPSPACE2")), "swap space"},
		{"gpt", gpt, "GPT partition table"},
		{"mbr", with(510, []byte{0x55, 0xaa}), "MBR partition table or boot sector"},
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
