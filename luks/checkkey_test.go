package luks

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkKeyCases runs the shared assertions of CheckVolumeKey against a header and its key.
func checkKeyCases(t *testing.T, h *Header, key []byte) {
	t.Helper()
	require.NoError(t, CheckVolumeKey(h, NewVolumeKey(key)))

	flipped := bytes.Clone(key)
	flipped[len(flipped)-1] ^= 1
	err := CheckVolumeKey(h, NewVolumeKey(flipped))
	require.ErrorIs(t, err, ErrVolumeKeyMismatch)
	assert.NotContains(t, err.Error(), hex.EncodeToString(flipped[:8]), "no key bytes in the error")

	require.ErrorIs(t, CheckVolumeKey(h, NewVolumeKey(key[:len(key)-1])), ErrVolumeKeyMismatch)
	require.ErrorIs(t, CheckVolumeKey(h, NewVolumeKey(append(bytes.Clone(key), 0))), ErrVolumeKeyMismatch)
	require.ErrorIs(t, CheckVolumeKey(h, nil), ErrVolumeKeyMismatch)
	require.ErrorIs(t, CheckVolumeKey(h, &VolumeKey{}), ErrVolumeKeyMismatch)
	require.ErrorIs(t, CheckVolumeKey(nil, NewVolumeKey(key)), ErrInvalidParameter)

	// A header this package cannot check is not a mismatch.
	bad := *h
	bad.HashSpec = "whirlpool9"
	require.ErrorIs(t, CheckVolumeKey(&bad, NewVolumeKey(key)), ErrUnsupportedHash)
	bad = *h
	bad.MKDigestIterations = 0
	require.ErrorIs(t, CheckVolumeKey(&bad, NewVolumeKey(key)), ErrCorruptHeader)
	bad = *h
	bad.MKDigestIterations = DefaultMaxIterations + 1
	require.ErrorIs(t, CheckVolumeKey(&bad, NewVolumeKey(key)), ErrWorkLimit)
}

func TestCheckVolumeKeyFormat(t *testing.T) {
	img := newImage(t, t.TempDir(), "f.img", 4<<20)
	f := openRW(t, img)
	h, vk, err := Format(context.Background(), f, []byte("pw"), FormatOptions{ForceIterations: 1000})
	require.NoError(t, err)
	defer vk.Wipe()
	h2, err := ReadHeader(f)
	require.NoError(t, err)
	assert.Equal(t, h.UUID, h2.UUID)
	checkKeyCases(t, h2, bytes.Clone(vk.Bytes()))
}

// TestCheckVolumeKeyCryptsetup: cryptsetup formats with a key we chose and with one it
// chose (read back with luksDump --dump-volume-key); both check out, a flipped bit does not.
func TestCheckVolumeKeyCryptsetup(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	kf := writeKeyFile(t, dir, "pass", []byte("cs-pass"))
	for _, c := range []struct {
		cipher, bits, hash string
		keyLen             int
	}{
		{"aes-xts-plain64", "512", "sha256", 64},
		{"aes-cbc-essiv:sha256", "256", "sha1", 32},
	} {
		t.Run(c.cipher, func(t *testing.T) {
			img := newImage(t, dir, c.cipher+".img", 4<<20)
			key := bytes.Repeat([]byte{0x3c, 0xc3, 0x5a}, 22)[:c.keyLen]
			vkFile := filepath.Join(dir, c.cipher+".vk")
			require.NoError(t, os.WriteFile(vkFile, key, 0o600))
			mustCS(t, nil, "luksFormat", "--type", "luks1", "-q", "--pbkdf-force-iterations", "1000",
				"-c", c.cipher, "-s", c.bits, "-h", c.hash, "--volume-key-file", vkFile, img, kf)
			h, err := ReadHeader(openRW(t, img))
			require.NoError(t, err)
			checkKeyCases(t, h, key)

			// And a key cryptsetup generated itself.
			img2 := newImage(t, dir, c.cipher+"-2.img", 4<<20)
			mustCS(t, nil, "luksFormat", "--type", "luks1", "-q", "--pbkdf-force-iterations", "1000",
				"-c", c.cipher, "-s", c.bits, "-h", c.hash, img2, kf)
			out := mustCS(t, nil, "luksDump", "-q", "--dump-volume-key", "-d", kf, img2)
			h2, err := ReadHeader(openRW(t, img2))
			require.NoError(t, err)
			dumped := dumpedKey(t, out)
			require.Len(t, dumped, c.keyLen)
			checkKeyCases(t, h2, dumped)
		})
	}
}

// dumpedKey parses the "MK dump:" hex lines of luksDump --dump-volume-key.
func dumpedKey(t *testing.T, out string) []byte {
	t.Helper()
	i := strings.Index(out, "MK dump:")
	require.GreaterOrEqual(t, i, 0, "no MK dump in %q", out)
	hexText := regexp.MustCompile(`[0-9a-f]{2}`).FindAllString(out[i+len("MK dump:"):], -1)
	key, err := hex.DecodeString(strings.Join(hexText, ""))
	require.NoError(t, err)
	require.NotEmpty(t, key)
	return key
}
