package luks

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConvertLUKS1ToLUKS2MatchesCryptsetup converts copies of LUKS1 images made by
// cryptsetup with `cryptsetup convert --type luks2` and with ConvertLUKS1ToLUKS2: luksDump
// identical, the JSON and the moved key material byte-identical, binary headers identical
// but for the random salts and checksums, and cryptsetup opens ours with every passphrase.
func TestConvertLUKS1ToLUKS2MatchesCryptsetup(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	cases := []struct {
		name     string
		args     []string
		detached bool
	}{
		{"xts-512", []string{"-c", "aes-xts-plain64", "-s", "512"}, false},
		{"cbc-256-sha1", []string{"-c", "aes-cbc-essiv:sha256", "-s", "256", "--hash", "sha1"}, false},
		{"align-8m", []string{"--align-payload", "16384"}, false},
		{"detached", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := newImage(t, dir, c.name+".img", 24<<20)
			hdr := img
			args := append([]string{"luksFormat", "--type", "luks1", "-q", "--pbkdf-force-iterations", "1000", "--key-file", "-"}, c.args...)
			if c.detached {
				hdr = filepath.Join(dir, c.name+".hdr")
				args = append(args, "--header", hdr)
			}
			mustCS(t, []byte("pass0"), append(args, img)...)
			kf := writeKeyFile(t, dir, c.name+".k", []byte("pass1"))
			add := []string{"luksAddKey", "--pbkdf-force-iterations", "1000", "--key-file", "-", "-S", "3"}
			if c.detached {
				add = append(add, "--header", hdr)
			}
			mustCS(t, []byte("pass0"), append(add, img, kf)...)
			theirs := copyImage(t, hdr, filepath.Join(dir, c.name+"-cs"))
			ours := copyImage(t, hdr, filepath.Join(dir, c.name+"-go"))
			mustCS(t, nil, "convert", "--type", "luks2", "-q", theirs)
			f := openRW(t, ours)
			require.NoError(t, ConvertLUKS1ToLUKS2(f, nil))
			require.NoError(t, f.Close())
			assert.Equal(t, mustCS(t, nil, "luksDump", theirs), mustCS(t, nil, "luksDump", ours))
			a, err := os.ReadFile(theirs)
			require.NoError(t, err)
			b, err := os.ReadFile(ours)
			require.NoError(t, err)
			require.Equal(t, len(a), len(b))
			hs := binary.BigEndian.Uint64(a[l2OffHdrSize:])
			for _, off := range []uint64{0, hs} {
				assert.Equal(t, binFields(a, off), binFields(b, off))
				assert.Equal(t, a[off+l2BinLen:off+hs], b[off+l2BinLen:off+hs], "JSON area at %d", off)
			}
			assert.True(t, bytes.Equal(a[2*hs:], b[2*hs:]), "key material and the rest")
			for _, p := range []string{"pass0", "pass1"} {
				open := []string{"open", "--test-passphrase", "--key-file", "-"}
				if c.detached {
					open = append(open, "--header", ours, img)
				} else {
					open = append(open, ours)
				}
				assert.Equal(t, 0, runCS(t, []byte(p), open...).code, p)
			}
		})
	}
	// A LUKS2 header is not converted again.
	f := openRW(t, copyImage(t, filepath.Join(dir, "xts-512-go"), filepath.Join(dir, "again")))
	assert.ErrorIs(t, ConvertLUKS1ToLUKS2(f, nil), ErrUnsupportedVersion)
}

// TestConvertLUKS2ToLUKS1MatchesCryptsetup converts LUKS2 images back with cryptsetup and
// here: the whole image is byte-identical afterwards, and cryptsetup opens ours; the
// headers cryptsetup refuses to convert (argon2 slot, 4096-byte sectors, a token) are
// refused here with its message and left untouched.
func TestConvertLUKS2ToLUKS1MatchesCryptsetup(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	base := []string{"luksFormat", "--type", "luks2", "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "-"}
	mk := func(name string, extra ...string) string {
		img := newImage(t, dir, name, 24<<20)
		mustCS(t, []byte("pass0"), append(append(append([]string{}, base...), extra...), img)...)
		return img
	}
	ok := mk("ok.img", "--sector-size", "512", "-c", "aes-cbc-essiv:sha256", "-s", "256", "--hash", "sha1")
	kf := writeKeyFile(t, dir, "k", []byte("pass1"))
	mustCS(t, []byte("pass0"), "luksAddKey", "--pbkdf", "pbkdf2", "--hash", "sha1", "--pbkdf-force-iterations", "1000", "--key-file", "-", "-S", "5", ok, kf)
	theirs := copyImage(t, ok, filepath.Join(dir, "cs"))
	ours := copyImage(t, ok, filepath.Join(dir, "go"))
	mustCS(t, nil, "convert", "--type", "luks1", "-q", theirs)
	f := openRW(t, ours)
	require.NoError(t, ConvertLUKS2ToLUKS1(f, nil))
	require.NoError(t, f.Close())
	assert.Equal(t, fileHash(t, theirs), fileHash(t, ours), "whole image")
	assert.Equal(t, mustCS(t, nil, "luksDump", theirs), strings.Replace(mustCS(t, nil, "luksDump", ours), ours, theirs, 1))
	for _, p := range []string{"pass0", "pass1"} {
		assert.True(t, csOpens(t, ours, p), p)
	}

	argon := mk("argon.img", "--sector-size", "512")
	mustCS(t, []byte("pass0"), "luksAddKey", "--pbkdf", "argon2id", "--pbkdf-force-iterations", "4", "--pbkdf-memory", "32", "--pbkdf-parallel", "1", "--key-file", "-", argon, kf)
	sector4k := mk("4k.img", "--sector-size", "4096")
	tok := mk("tok.img", "--sector-size", "512")
	mustCS(t, []byte(`{"type":"x","keyslots":[]}`), "token", "import", tok)
	for _, img := range []string{argon, sector4k, tok} {
		r := runCS(t, nil, "convert", "--type", "luks1", "-q", img)
		require.NotEqual(t, 0, r.code)
		before := fileHash(t, img)
		f := openRW(t, img)
		err := ConvertLUKS2ToLUKS1(f, nil)
		require.ErrorIs(t, err, ErrConvert, img)
		assert.Contains(t, r.stderr, err.Error()[len(ErrConvert.Error())+2:], img)
		assert.Equal(t, before, fileHash(t, img))
	}
}

// TestConvertLUKS1ToLUKS2NoRoom: with 512-bit keys in all eight slots the key material
// fills the space below the data offset, so no slot can be staged; the conversion is
// refused with ErrConvertNoRoom and the device is left as it was.
func TestConvertLUKS1ToLUKS2NoRoom(t *testing.T) {
	ctx := context.Background()
	d := &memDev{b: make([]byte, 3<<20)}
	_, _, err := Format(ctx, d, []byte("p0"), FormatOptions{KeySize: 512, ForceIterations: 1000})
	require.NoError(t, err)
	for i := 1; i < NumKeyslots; i++ {
		_, _, err := AddKey(ctx, d, []byte("p0"), []byte(fmt.Sprint("p", i)), AddKeyOptions{ForceIterations: 1000})
		require.NoError(t, err)
	}
	before := bytes.Clone(d.b)
	err = ConvertLUKS1ToLUKS2(d, nil)
	require.ErrorIs(t, err, ErrConvertNoRoom)
	require.ErrorIs(t, err, ErrConvert)
	assert.True(t, bytes.Equal(before, d.b), "nothing written")
	// With slots 0 and 3 left, slot 0 is staged in the area of the disabled slot 2.
	for _, i := range []int{1, 2, 4, 5, 6, 7} {
		require.NoError(t, KillSlot(d, i))
	}
	require.NoError(t, ConvertLUKS1ToLUKS2(d, nil))
	assert.Equal(t, 2, Version(d))
	for _, i := range []int{0, 3} {
		assert.True(t, libOpens(d, fmt.Sprint("p", i)), "p%d", i)
	}
}

// TestConvertLUKS2ToLUKS1NoRoom: a LUKS2 header whose keyslots area holds exactly eight
// 512-bit slots, all enabled, leaves no space to stage a slot: refused with
// ErrConvertNoRoom, nothing written; with slots 0 and 3 only it converts.
func TestConvertLUKS2ToLUKS1NoRoom(t *testing.T) {
	ctx := context.Background()
	d := &memDev{b: make([]byte, 4<<20)}
	_, _, err := FormatLUKS2(ctx, d, []byte("p0"), LUKS2FormatOptions{KeySize: 512, PBKDF: KDFPBKDF2, ForceIterations: 1000,
		SectorSize: 512, MetadataSize: 16 << 10, KeyslotsSize: 8 * 258048})
	require.NoError(t, err)
	for i := 1; i < NumKeyslots; i++ {
		_, err := AddKeyLUKS2(ctx, d, []byte("p0"), []byte(fmt.Sprint("p", i)), LUKS2KeyslotOptions{PBKDF: KDFPBKDF2, ForceIterations: 1000})
		require.NoError(t, err)
	}
	before := bytes.Clone(d.b)
	err = ConvertLUKS2ToLUKS1(d, nil)
	require.ErrorIs(t, err, ErrConvertNoRoom)
	assert.True(t, bytes.Equal(before, d.b), "nothing written")
	for _, i := range []int{1, 2, 4, 5, 6, 7} {
		require.NoError(t, KillSlotLUKS2(d, i, nil))
	}
	require.NoError(t, ConvertLUKS2ToLUKS1(d, nil))
	assert.Equal(t, 1, Version(d))
	for _, i := range []int{0, 3} {
		assert.True(t, libOpens(d, fmt.Sprint("p", i)), "p%d", i)
	}
}
