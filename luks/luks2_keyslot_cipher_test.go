package luks

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestKeyslotEncryption is crypt_keyslot_get_encryption for a new slot: the forced cipher
// and key size, refused without a message when the cipher cannot encrypt a slot
// (ErrKeyslotCipherIncompatible), with cryptsetup's cipher-mode name when the key size does
// not fit (KeyslotCipherError); unforced, the segment's cipher or the aes-xts default.
func TestKeyslotEncryption(t *testing.T) {
	for _, c := range []struct {
		seg      string
		vk       int
		forced   string
		bytes    int
		want     string
		wantLen  int
		incompat bool
		keyErr   string // "cipher-mode" of a KeyslotCipherError
	}{
		{seg: "aes-xts-plain64", vk: 64, want: "aes-xts-plain64", wantLen: 64},
		{seg: "aes-cbc-essiv:sha256", vk: 32, want: "aes-cbc-essiv:sha256", wantLen: 32},
		{seg: "cipher_null-ecb", vk: 0, want: "aes-xts-plain64", wantLen: 64},
		{seg: "aes-xts-plain64", vk: 64, forced: "aes-cbc-essiv:sha256", bytes: 32, want: "aes-cbc-essiv:sha256", wantLen: 32},
		{seg: "aes-xts-plain64", vk: 64, forced: "aes", bytes: 16, want: "aes", wantLen: 16},
		{seg: "aes-xts-plain64", vk: 64, forced: "cipher_null-ecb", bytes: 32, incompat: true},
		{seg: "aes-xts-plain64", vk: 64, forced: "null", bytes: 32, incompat: true},
		{seg: "aes-xts-plain64", vk: 64, forced: "foo-bar", bytes: 32, incompat: true},
		{seg: "aes-xts-plain64", vk: 64, forced: "aes-cbc-essiv:sha256", bytes: 64, keyErr: "aes-cbc-essiv:sha256"},
		{seg: "aes-xts-plain64", vk: 64, forced: "aes-xts-plain64", bytes: 16, keyErr: "aes-xts-plain64"},
		{seg: "aes-xts-plain64", vk: 64, forced: "aes", bytes: 64, keyErr: "aes-cbc-plain"},
	} {
		got, n, err := keyslotEncryption(c.seg, c.vk, c.forced, c.bytes)
		var ke *KeyslotCipherError
		switch {
		case c.incompat:
			assert.ErrorIs(t, err, ErrKeyslotCipherIncompatible, "%+v", c)
			assert.ErrorIs(t, CheckKeyslotCipher(c.forced), ErrKeyslotCipherIncompatible)
		case c.keyErr != "":
			if assert.True(t, errors.As(err, &ke), "%+v: %v", c, err) {
				assert.Equal(t, c.keyErr, ke.Cipher+"-"+ke.Mode)
			}
			assert.NoError(t, CheckKeyslotCipher(c.forced), "the cipher itself is usable")
		default:
			assert.NoError(t, err, "%+v", c)
			assert.Equal(t, c.want, got)
			assert.Equal(t, c.wantLen, n)
		}
	}
	_, _, err := keyslotEncryption("aes-xts-plain64", 64, "aes-xts-plain64", 0)
	assert.ErrorIs(t, err, ErrInvalidParameter, "cipher without key size")
}
