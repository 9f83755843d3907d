package luks

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormatOptionsCheck(t *testing.T) {
	for _, tc := range []struct {
		opts FormatOptions
		want FormatParams
	}{
		{FormatOptions{}, FormatParams{"aes", "xts-plain64", 512, "sha256"}},
		{FormatOptions{Cipher: "aes-cbc-essiv:sha256"}, FormatParams{"aes", "cbc-essiv:sha256", 256, "sha256"}},
		{FormatOptions{Cipher: "aes-xts-plain64", KeySize: 256, Hash: "SHA512"}, FormatParams{"aes", "xts-plain64", 256, "sha512"}},
		{FormatOptions{VolumeKey: make([]byte, 32)}, FormatParams{"aes", "xts-plain64", 256, "sha256"}},
	} {
		got, err := tc.opts.Check()
		require.NoError(t, err, "%v", tc.opts)
		assert.Equal(t, tc.want, got, "%v", tc.opts)
	}
	for _, o := range []FormatOptions{
		{Cipher: "rot13-ecb"},
		{Cipher: "aes-xts-plain64", KeySize: 128},
		{KeySize: 12},
		{KeySize: -8},
		{Hash: "md4"},
		{VolumeKey: make([]byte, 32), KeySize: 512},
	} {
		_, err := o.Check()
		assert.Error(t, err, "%v", o)
	}
	_, err := FormatOptions{Hash: "md4"}.Check()
	assert.True(t, errors.Is(err, ErrUnsupportedHash), "%v", err)
}

// Check resolves the defaults Format would use and refuses what Format would refuse, so a
// program can validate its flags before creating anything.
func ExampleFormatOptions_Check() {
	p, err := FormatOptions{Cipher: "aes-cbc-essiv:sha256"}.Check()
	if err != nil {
		panic(err)
	}
	fmt.Println(p.CipherName, p.CipherMode, p.KeySize, p.Hash)
	_, err = FormatOptions{Hash: "md4"}.Check()
	fmt.Println(err != nil)
	// Output:
	// aes cbc-essiv:sha256 256 sha256
	// true
}
