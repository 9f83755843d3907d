package sector

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
	xxts "golang.org/x/crypto/xts"
)

// TestCryptLargeXTS: 4096-byte sectors of aes-xts-plain64 equal golang.org/x/crypto/xts over
// whole 4096-byte units with the IV counted in 512-byte sectors (dm-crypt without
// iv_large_sectors, as cryptsetup sets up LUKS2).
func TestCryptLargeXTS(t *testing.T) {
	key := bytes.Repeat([]byte{0x42, 0x17}, 32)
	c, err := New("aes", "xts-plain64", key)
	require.NoError(t, err)
	ref, err := xxts.NewCipher(aes.NewCipher, key)
	require.NoError(t, err)
	src := make([]byte, 3*4096)
	for i := range src {
		src[i] = byte(i * 7)
	}
	got := make([]byte, len(src))
	require.NoError(t, c.CryptLarge(got, src, 4096, 80, true))
	for k := 0; k < 3; k++ {
		want := make([]byte, 4096)
		ref.Encrypt(want, src[k*4096:(k+1)*4096], uint64(80+8*k))
		require.Equal(t, want, got[k*4096:(k+1)*4096], "sector %d", k)
	}
	back := make([]byte, len(src))
	require.NoError(t, c.CryptLarge(back, got, 4096, 80, false))
	require.Equal(t, src, back)
	// 512 is Encrypt itself.
	require.NoError(t, c.CryptLarge(back, src, 512, 3, true))
	c.Encrypt(got, src, 3)
	require.Equal(t, got, back)
	require.Error(t, c.CryptLarge(back, src[:100], 4096, 0, true))
	require.Error(t, c.CryptLarge(back, src, 3000, 0, true))
}

// TestCryptLargeCBCEssiv: 1024-byte sectors of aes-cbc-essiv:sha256 equal crypto/cipher CBC
// over each sector with the ESSIV of its 512-byte sector number.
func TestCryptLargeCBCEssiv(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	c, err := New("aes", "cbc-essiv:sha256", key)
	require.NoError(t, err)
	salt := sha256.Sum256(key)
	essiv, _ := aes.NewCipher(salt[:])
	blk, _ := aes.NewCipher(key)
	src := make([]byte, 2*1024)
	for i := range src {
		src[i] = byte(i)
	}
	got := make([]byte, len(src))
	require.NoError(t, c.CryptLarge(got, src, 1024, 6, true))
	for k := 0; k < 2; k++ {
		var iv [16]byte
		binary.LittleEndian.PutUint64(iv[:], uint64(6+2*k))
		essiv.Encrypt(iv[:], iv[:])
		want := make([]byte, 1024)
		cipher.NewCBCEncrypter(blk, iv[:]).CryptBlocks(want, src[k*1024:(k+1)*1024])
		require.Equal(t, want, got[k*1024:(k+1)*1024])
	}
}

// TestCryptLargeImplementations: the AES-NI large-sector path and the portable one agree
// for every chain mode, both ways.
func TestCryptLargeImplementations(t *testing.T) {
	if !haveAESNI {
		t.Skip("no AES-NI on this machine: only the portable path exists")
	}
	for _, tc := range []struct {
		name, mode string
		key        int
	}{
		{"aes", "xts-plain64", 64}, {"aes", "cbc-essiv:sha256", 32}, {"aes", "lrw-benbi", 48},
		{"aes", "ecb", 16}, {"aes", "cbc-plain64", 24}, {"aes", "xts-essiv:sha256", 32},
	} {
		s, err := ParseSpec(tc.name, tc.mode)
		require.NoError(t, err)
		key := bytes.Repeat([]byte{0x5a, 0x01, 0x77}, 22)[:tc.key]
		fast, err := newCipher(s, key, implAESNI)
		require.NoError(t, err)
		slow, err := newCipher(s, key, implPortable)
		require.NoError(t, err)
		src := make([]byte, 2*4096)
		for i := range src {
			src[i] = byte(i * 13)
		}
		for _, ss := range []int{1024, 2048, 4096} {
			a, b := make([]byte, len(src)), make([]byte, len(src))
			require.NoError(t, fast.CryptLarge(a, src, ss, 16, true))
			require.NoError(t, slow.CryptLarge(b, src, ss, 16, true))
			require.Equal(t, b, a, "%s-%s sector %d", tc.name, tc.mode, ss)
			require.NoError(t, fast.CryptLarge(a, a, ss, 16, false))
			require.Equal(t, src, a)
		}
	}
}
