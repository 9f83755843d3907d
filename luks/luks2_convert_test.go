package luks

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
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
