package blkid

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

func types(sigs []Signature) string {
	var s []string
	for _, x := range sigs {
		s = append(s, x.Type)
	}
	return strings.Join(s, ",")
}

func TestProbeBytes(t *testing.T) {
	with := func(off int, b []byte) []byte {
		buf := make([]byte, HeadSize)
		copy(buf[off:], b)
		return buf
	}
	ext := func(compat, incompat, ro uint32) []byte {
		b := with(1080, []byte{0x53, 0xef})
		binary.LittleEndian.PutUint32(b[1024+0x5c:], compat)
		binary.LittleEndian.PutUint32(b[1024+0x60:], incompat)
		binary.LittleEndian.PutUint32(b[1024+0x64:], ro)
		return b
	}
	extBadRev := ext(0, 0, 0)
	binary.LittleEndian.PutUint32(extBadRev[1024+76:], 0x12345678)
	xfs := with(0, []byte("XFSB\x00\x00\x10\x00"))
	binary.BigEndian.PutUint16(xfs[102:], 512)
	random := bytes.Repeat([]byte{0x5a, 0x13, 0xc7}, HeadSize/3+1)[:HeadSize]
	mbr := with(510, []byte{0x55, 0xaa})
	mbrRandom := with(510, []byte{0x55, 0xaa})
	mbrRandom[446] = 0x42
	pmbrOnly := with(510, []byte{0x55, 0xaa})
	pmbrOnly[446+4] = 0xee
	gpt := bytes.Clone(pmbrOnly)
	copy(gpt[512:], "EFI PART")
	tests := []struct {
		name string
		buf  []byte
		want string
	}{
		{"zeros", make([]byte, HeadSize), ""},
		{"random", random, ""},
		{"luks1", with(0, []byte("LUKS\xba\xbe\x00\x01")), "crypto_LUKS"},
		{"luks magic only", with(0, []byte("LUKS\xba\xbe")), "crypto_LUKS"},
		{"luks2 with a wrong hdr_offset", func() []byte { b := with(0, []byte("LUKS\xba\xbe\x00\x02")); b[0x107] = 1; return b }(), ""},
		{"xfs", xfs, "xfs"},
		{"xfs magic in random data", with(0, []byte("XFSB\x12\x34\x56\x78")), ""},
		{"ext2", ext(0, 0x2, 0x3), "ext2"},
		{"ext3", ext(0x4, 0x2, 0x3), "ext3"},
		{"ext4", ext(0x4, 0x2|0x40|0x200, 0x3), "ext4"},
		{"ext4 without journal", ext(0, 0x40, 0), "ext4"},
		{"jbd", ext(0, 0x8, 0), "jbd"},
		{"ext magic in random data", extBadRev, ""},
		{"btrfs", with(0x10040, []byte("_BHRfS_M")), "btrfs"},
		{"swap 4k", with(4086, []byte("SWAPSPACE2")), "swap"},
		{"swap 32k", with(0x8000-10, []byte("SWAPSPACE2")), "swap"},
		{"swap 64k old", with(65526, []byte("SWAP-SPACE")), "swap"},
		{"gpt", gpt, "gpt"},
		{"protective mbr without gpt", pmbrOnly, ""},
		{"dos", mbr, "dos"},
		{"55aa in random data", mbrRandom, ""},
		{"short device", []byte("LUKS"), ""},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, types(ProbeBytes(tt.buf)))
		})
	}
}

// Images written by the real tools probe as the blkid program (libblkid) reports them,
// without the program's help.
func TestProbeMatchesLibblkid(t *testing.T) {
	prog := testenv.LookPath(t, "blkid", "apt-get install util-linux")
	dir := t.TempDir()
	images := []struct {
		name, tool, hint string
		size             int64
		args             []string
		stdin            string
	}{
		{"ext2", "mkfs.ext2", "apt-get install e2fsprogs", 32 << 20, []string{"-q", "-F"}, ""},
		{"ext3", "mkfs.ext3", "apt-get install e2fsprogs", 32 << 20, []string{"-q", "-F"}, ""},
		{"ext4", "mkfs.ext4", "apt-get install e2fsprogs", 32 << 20, []string{"-q", "-F"}, ""},
		{"xfs", "mkfs.xfs", "apt-get install xfsprogs", 320 << 20, []string{"-q", "-f"}, ""},
		{"swap", "mkswap", "apt-get install util-linux", 32 << 20, []string{"-q"}, ""},
		{"dos", "sfdisk", "apt-get install fdisk", 32 << 20, []string{"-q"}, "label: dos\n,10M,L\n"},
		{"gpt", "sgdisk", "apt-get install gdisk", 32 << 20, []string{"-n", "1:2048:+10M"}, ""},
		{"luks2", "cryptsetup", "apt-get install cryptsetup-bin", 32 << 20, []string{"luksFormat", "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file=-"}, "pw"},
	}
	for _, im := range images {
		t.Run(im.name, func(t *testing.T) {
			tool := testenv.LookPath(t, im.tool, im.hint)
			img := filepath.Join(dir, im.name+".img")
			require.NoError(t, os.WriteFile(img, nil, 0o600))
			require.NoError(t, os.Truncate(img, im.size))
			cmd := exec.Command(tool, append(im.args, img)...)
			cmd.Stdin = strings.NewReader(im.stdin)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)

			want, err := exec.Command(prog, "-p", "-o", "export", img).Output()
			require.NoError(t, err)
			var wantTypes []string
			for _, l := range strings.Split(string(want), "\n") {
				if v, ok := strings.CutPrefix(l, "TYPE="); ok {
					wantTypes = append([]string{v}, wantTypes...)
				}
				if v, ok := strings.CutPrefix(l, "PTTYPE="); ok {
					wantTypes = append(wantTypes, v)
				}
			}
			f, err := os.Open(img)
			require.NoError(t, err)
			defer f.Close()
			sigs, err := Probe(f, im.size)
			require.NoError(t, err)
			assert.Equal(t, strings.Join(wantTypes, ","), types(sigs))

			// The magics are where wipefs finds them.
			wf, err := exec.Command(testenv.LookPath(t, "wipefs", "apt-get install util-linux"), "-i", "-O", "OFFSET,TYPE", img).Output()
			require.NoError(t, err)
			var got []string
			for _, s := range sigs {
				for _, m := range s.Magics {
					got = append(got, fmt.Sprintf("%#x %s", m.Offset, m.Type))
				}
			}
			assert.Equal(t, strings.Fields(string(wf)), strings.Fields(strings.Join(got, " ")))
		})
	}
}

func TestWipe(t *testing.T) {
	img := filepath.Join(t.TempDir(), "gpt.img")
	buf := make([]byte, 1<<20)
	buf[510], buf[511], buf[446+4] = 0x55, 0xaa, 0xee
	copy(buf[512:], "EFI PART")
	copy(buf[len(buf)-512:], "EFI PART")
	require.NoError(t, os.WriteFile(img, buf, 0o600))
	sigs, err := ProbeFile(context.Background(), img)
	require.NoError(t, err)
	require.Equal(t, "gpt", types(sigs))
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	done, err := Wipe(f, sigs, 4096)
	require.NoError(t, err)
	require.Len(t, done, 1)
	assert.Equal(t, int64(len(buf)-512), done[0].Offset)
	got, err := os.ReadFile(img)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, 8), got[len(got)-512:len(got)-504])
	assert.Equal(t, []byte("EFI PART"), got[512:520], "magics before from are left to the caller")
}

func FuzzProbeBytes(f *testing.F) {
	f.Add([]byte("LUKS\xba\xbe\x00\x02"))
	f.Add(make([]byte, 1100))
	f.Add([]byte("XFSB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range ProbeBytes(b) { // must not panic on any length or content
			require.NotEmpty(t, s.Type)
		}
	})
}

// Probe runs once per format over 68 KiB; this shows it is negligible next to the read.
func BenchmarkProbeBytes(b *testing.B) {
	buf := bytes.Repeat([]byte{0x5a, 0x13, 0xc7, 0x01}, HeadSize/4)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		_ = ProbeBytes(buf)
	}
}

// What cryptsetup luksFormat warns about before overwriting an image.
func ExampleProbeBytes() {
	dev := make([]byte, HeadSize)
	copy(dev, "LUKS\xba\xbe\x00\x01")
	for _, s := range ProbeBytes(dev) {
		fmt.Printf("WARNING: Device g.img already contains a '%s' %s signature.\n", s.Type, s.Usage)
	}
	// Output:
	// WARNING: Device g.img already contains a 'crypto_LUKS' superblock signature.
}
