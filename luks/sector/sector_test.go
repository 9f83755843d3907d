package sector

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// cryptsetup tests/crypto-vectors.c cipher_iv_test_vectors: AES-128-CBC over 8192 zero bytes
// (16 sectors of 512 bytes), compared as SHA-256 of the ciphertext.
func TestCryptsetupIVVectors(t *testing.T) {
	key := "2b7e151628aed2a6abf7158809cf4f3c"
	tests := []struct {
		iv     string
		offset uint64
		sha    string
	}{
		{"null", 0xFFFFFFFF - 7, "fd05d04d51b9d487a4579a620739c94a00903eafe8b2ac12caeb58f948f6ef08"},
		{"plain", 0xFFFFFFFF - 7, "43fd6e2580b213f5ca717918e41291e06e372432fd404b42cbc1721ac75a19c8"},
		{"plain64", 0xFFFFFFFF - 7, "b3657e6cbae039cd1e1daf65aeb7da2025176a387579684c9a75c7fb2ba217d2"},
		{"plain64be", 0xFFFFFFFF - 7, "28bf09e168cc051b20af8d0136218a8d7a9498a899e9f466d8b799ca04588390"},
		{"essiv:sha256", 0, "a53e74c41a5cf36b6349d5d9bb7a895ad53e766f4c2d0bd38b5e0e91a38c2ade"},
		{"benbi", 0, "3ce394e36d685bdb5a8d71bfd3a668b91f330f97e2d6e8e2e1fc7e8028f173bd"},
		{"eboiv", 0, "044e929f7966fe931ba5b802fe7ef9267b6439e7b3cac46eca27a02fe2ea9116"},
	}
	zeroSum := sha256.Sum256(make([]byte, 8192))
	for _, tc := range tests {
		t.Run(tc.iv, func(t *testing.T) {
			c, err := New("aes", "cbc-"+tc.iv, unhex(t, key))
			require.NoError(t, err)
			buf := make([]byte, 8192)
			c.Encrypt(buf, buf, tc.offset)
			got := sha256.Sum256(buf)
			assert.Equal(t, tc.sha, hex.EncodeToString(got[:]))
			c.Decrypt(buf, buf, tc.offset)
			assert.Equal(t, zeroSum, sha256.Sum256(buf))
		})
	}
}

// IEEE Std 1619-2007 Annex B vectors 1-3 (AES-128-XTS, 32-byte data units): the data unit
// sequence number is the plain64 IV.
func TestXTSIEEE1619Short(t *testing.T) {
	tests := []struct {
		key, pt, ct string
		seq         uint64
	}{
		{
			key: "00000000000000000000000000000000" + "00000000000000000000000000000000",
			seq: 0,
			pt:  "0000000000000000000000000000000000000000000000000000000000000000",
			ct:  "917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e",
		},
		{
			key: "11111111111111111111111111111111" + "22222222222222222222222222222222",
			seq: 0x3333333333,
			pt:  "4444444444444444444444444444444444444444444444444444444444444444",
			ct:  "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0",
		},
		{
			key: "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0" + "22222222222222222222222222222222",
			seq: 0x3333333333,
			pt:  "4444444444444444444444444444444444444444444444444444444444444444",
			ct:  "af85336b597afc1a900b2eb21ec949d292df4c047e0b21532186a5971a227a89",
		},
	}
	for i, tc := range tests {
		c, err := New("aes", "xts-plain64", unhex(t, tc.key))
		require.NoError(t, err)
		var iv [16]byte
		iv[0] = byte(tc.seq)
		for j := 1; j < 8; j++ {
			iv[j] = byte(tc.seq >> (8 * j))
		}
		pt, ct := unhex(t, tc.pt), unhex(t, tc.ct)
		got := make([]byte, len(pt))
		c.cryptSector(got, pt, &iv, true)
		assert.Equal(t, tc.ct, hex.EncodeToString(got), "vector %d", i+1)
		c.cryptSector(got, ct, &iv, false)
		assert.Equal(t, tc.pt, hex.EncodeToString(got), "vector %d", i+1)
	}
}

func TestSplitSpec(t *testing.T) {
	tests := []struct{ in, name, mode string }{
		{"aes-xts-plain64", "aes", "xts-plain64"},
		{"aes", "aes", "cbc-plain"},
		{"aes-plain", "aes", "cbc-plain"},
		{"null", "cipher_null", "ecb"},
		{"cipher_null", "cipher_null", "ecb"},
		{"aes-ecb", "aes", "ecb"},
		{"aes-cbc-essiv:sha256", "aes", "cbc-essiv:sha256"},
		{"serpent-xts-essiv:wp256", "serpent", "xts-essiv:wp256"},
	}
	for _, tc := range tests {
		n, m, err := SplitSpec(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.name, n, tc.in)
		assert.Equal(t, tc.mode, m, tc.in)
	}
	for _, bad := range []string{"", "-xts-plain64", "aes xts"} {
		_, _, err := SplitSpec(bad)
		assert.ErrorIs(t, err, ErrUnsupportedCipher, bad)
	}
}

func TestParseSpecRefusals(t *testing.T) {
	tests := []struct {
		name, mode string
		want       error
	}{
		{"aes", "cbc", ErrUnsupportedCipher},
		{"aes", "xts", ErrUnsupportedCipher},
		{"aes", "cbc-lmk", ErrUnsupportedCipher},
		{"aes", "cbc-tcw", ErrUnsupportedCipher},
		{"aes", "xts-random", ErrUnsupportedCipher},
		{"aes", "cbc-elephant:32", ErrUnsupportedCipher},
		{"aes", "cbc-essiv:sha1", ErrUnsupportedCipher},
		{"aes", "cbc-essiv:md5", ErrUnsupportedHash},
		{"aes", "cbc-essiv", ErrUnsupportedCipher},
		{"des", "cbc-plain", ErrUnsupportedCipher},
		{"aes", "gcm-random", ErrUnsupportedCipher},
		{"aes:64", "cbc-lmk", ErrUnsupportedCipher},
		{"capi:xts(aes)", "plain64", ErrUnsupportedCipher},
	}
	for _, tc := range tests {
		_, err := ParseSpec(tc.name, tc.mode)
		assert.ErrorIs(t, err, tc.want, "%s-%s", tc.name, tc.mode)
	}
}

func TestNewHash(t *testing.T) {
	tests := []struct{ name, abc string }{
		{"sha1", "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{"SHA256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"sha512", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
		{"ripemd160", "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"},
	}
	for _, tc := range tests {
		f, err := NewHash(tc.name)
		require.NoError(t, err, tc.name)
		h := f()
		h.Write([]byte("abc"))
		assert.Equal(t, tc.abc, hex.EncodeToString(h.Sum(nil)), tc.name)
	}
	for _, bad := range []string{"md5", "crc32", ""} {
		_, err := NewHash(bad)
		assert.True(t, errors.Is(err, ErrUnsupportedHash), bad)
	}
}

func TestRoundTripInPlace(t *testing.T) {
	specs := []struct {
		spec string
		key  int
	}{
		{"aes-xts-plain64", 64}, {"aes-xts-plain64", 32}, {"aes-cbc-essiv:sha256", 32},
		{"aes-cbc-plain64", 16}, {"aes-ecb", 24}, {"twofish-xts-plain64", 64},
		{"aes-lrw-benbi", 48}, {"aes-xts-eboiv", 64}, {"null", 0},
	}
	for _, sp := range specs {
		name, mode, err := SplitSpec(sp.spec)
		require.NoError(t, err)
		key := bytes.Repeat([]byte{0x5a}, sp.key)
		c, err := New(name, mode, key)
		require.NoError(t, err, sp.spec)
		pt := make([]byte, 4*SectorSize)
		for i := range pt {
			pt[i] = byte(i * 7)
		}
		buf := append([]byte(nil), pt...)
		c.Encrypt(buf, buf, 12345)
		if name != "cipher_null" {
			assert.NotEqual(t, pt, buf, sp.spec)
		}
		c.Decrypt(buf, buf, 12345)
		assert.Equal(t, pt, buf, sp.spec)
	}
}
