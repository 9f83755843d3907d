package sector

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestParseSpecAccepts(t *testing.T) {
	tests := []struct {
		name, mode string
		want       Spec
		str        string
	}{
		{"aes", "xts-plain64", Spec{"aes", "xts", "plain64", ""}, "aes-xts-plain64"},
		{"aes", "cbc-essiv:sha256", Spec{"aes", "cbc", "essiv", "sha256"}, "aes-cbc-essiv:sha256"},
		{"AES", "CBC-ESSIV:SHA256", Spec{"aes", "cbc", "essiv", "sha256"}, "aes-cbc-essiv:sha256"},
		{"serpent", "xts-essiv:wp256", Spec{"serpent", "xts", "essiv", "wp256"}, "serpent-xts-essiv:wp256"},
		{"serpent", "cbc-essiv:sha1", Spec{"serpent", "cbc", "essiv", "sha1"}, "serpent-cbc-essiv:sha1"},
		{"aes", "ecb", Spec{"aes", "ecb", "", ""}, "aes-ecb"},
		// dm-crypt ignores IVs in ECB mode ("Selected cipher does not support IVs").
		{"aes", "ecb-plain64", Spec{"aes", "ecb", "plain64", ""}, "aes-ecb-plain64"},
		// dm-crypt ignores options of IV generators that take none.
		{"aes", "xts-plain64:sha256", Spec{"aes", "xts", "plain64", "sha256"}, "aes-xts-plain64:sha256"},
		{"twofish", "lrw-benbi", Spec{"twofish", "lrw", "benbi", ""}, "twofish-lrw-benbi"},
		{"cipher_null", "ecb", Spec{"cipher_null", "ecb", "", ""}, "cipher_null-ecb"},
		{"null", "ecb", Spec{"cipher_null", "ecb", "", ""}, "cipher_null-ecb"},
		{"aes", "cbc-eboiv", Spec{"aes", "cbc", "eboiv", ""}, "aes-cbc-eboiv"},
	}
	for _, tc := range tests {
		s, err := ParseSpec(tc.name, tc.mode)
		require.NoError(t, err, "%s-%s", tc.name, tc.mode)
		assert.Equal(t, tc.want, s)
		assert.Equal(t, tc.str, s.String())
		assert.Equal(t, tc.str, s.Cipher+"-"+s.Mode())
	}
}

func TestECBIgnoresIV(t *testing.T) {
	key := make([]byte, 32)
	a, err := New("aes", "ecb", key)
	require.NoError(t, err)
	b, err := New("aes", "ecb-essiv:sha256", key)
	require.NoError(t, err)
	x := make([]byte, 1024)
	y := make([]byte, 1024)
	a.Encrypt(x, x, 7)
	b.Encrypt(y, y, 99)
	assert.Equal(t, x, y)
}

// xts-plain64:sha256 (seen in old headers) encrypts exactly like xts-plain64.
func TestIgnoredIVOption(t *testing.T) {
	key := make([]byte, 64)
	for i := range key {
		key[i] = byte(i)
	}
	a, err := New("aes", "xts-plain64", key)
	require.NoError(t, err)
	b, err := New("aes", "xts-plain64:sha256", key)
	require.NoError(t, err)
	x := make([]byte, 1024)
	y := make([]byte, 1024)
	a.Encrypt(x, x, 12)
	b.Encrypt(y, y, 12)
	assert.Equal(t, x, y)
}

func TestCheckKeySize(t *testing.T) {
	tests := []struct {
		spec string
		ok   []int
		bad  []int
	}{
		{"aes-xts-plain64", []int{32, 48, 64}, []int{0, 16, 33, 96, 128}},
		{"aes-cbc-essiv:sha256", []int{16, 24, 32}, []int{0, 8, 20, 64}},
		{"aes-lrw-benbi", []int{32, 40, 48}, []int{16, 64}},
		{"twofish-cbc-plain", []int{16, 24, 32}, []int{8, 20}},
		{"serpent-cbc-plain", []int{1, 16, 20, 32}, []int{0, 33, 64}},
		{"serpent-xts-plain64", []int{32, 40, 64}, []int{0, 66, 96}},
		{"null", []int{0, 32}, nil},
	}
	for _, tc := range tests {
		name, mode, err := SplitSpec(tc.spec)
		require.NoError(t, err)
		s, err := ParseSpec(name, mode)
		require.NoError(t, err)
		for _, n := range tc.ok {
			assert.NoError(t, s.CheckKeySize(n), "%s %d", tc.spec, n)
			_, err := NewFromSpec(s, make([]byte, n))
			assert.NoError(t, err, "%s %d", tc.spec, n)
		}
		for _, n := range tc.bad {
			assert.ErrorIs(t, s.CheckKeySize(n), ErrInvalidKeySize, "%s %d", tc.spec, n)
			_, err := NewFromSpec(s, make([]byte, n))
			assert.ErrorIs(t, err, ErrInvalidKeySize, "%s %d", tc.spec, n)
		}
	}
}

func TestNewFromSpecValidates(t *testing.T) {
	_, err := NewFromSpec(Spec{Cipher: "aes", Chain: "cbc"}, make([]byte, 32))
	assert.ErrorIs(t, err, ErrUnsupportedCipher)
	_, err = NewFromSpec(Spec{Cipher: "rot13", Chain: "ecb"}, make([]byte, 32))
	assert.ErrorIs(t, err, ErrUnsupportedCipher)
	c, err := NewFromSpec(Spec{Cipher: "aes", Chain: "xts", IV: "plain64"}, make([]byte, 64))
	require.NoError(t, err)
	assert.Equal(t, "aes-xts-plain64", c.Spec().String())
}

func TestErrorsNameTheProblem(t *testing.T) {
	_, err := ParseSpec("aes", "cbc-lmk")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kernel")
	_, err = ParseSpec("aes", "cbc")
	assert.Contains(t, err.Error(), "IV mechanism required")
	_, err = ParseSpec("aes", "cbc-essiv:sha1")
	assert.Contains(t, err.Error(), "20-byte salt")
	_, err = NewHash("md5")
	assert.Contains(t, err.Error(), `"md5"`)
}

func TestKeyIsCopiedAndWiped(t *testing.T) {
	key := make([]byte, 64)
	for i := range key {
		key[i] = byte(i + 1)
	}
	c, err := New("aes", "xts-plain64", key)
	require.NoError(t, err)
	x := make([]byte, 512)
	c.Encrypt(x, x, 0)
	clear(key) // the caller's copy is independent
	y := make([]byte, 512)
	c.Encrypt(y, y, 0)
	assert.Equal(t, x, y)
	c.Wipe()
	assert.Equal(t, make([]byte, 64), c.key)
	assert.Panics(t, func() { c.Encrypt(y, y, 0) })
}

func TestMisusePanics(t *testing.T) {
	c, err := New("aes", "cbc-essiv:sha256", make([]byte, 32))
	require.NoError(t, err)
	buf := make([]byte, 2048)
	assert.Panics(t, func() { c.Encrypt(buf[:100], buf[:100], 0) }, "not a sector multiple")
	assert.Panics(t, func() { c.Encrypt(buf[:512], buf[:1024], 0) }, "short dst")
	assert.Panics(t, func() { c.Encrypt(buf[16:528], buf[:512], 0) }, "overlap")
	assert.Panics(t, func() { c.Decrypt(buf[:512], buf[256:768], 0) }, "overlap")
	assert.NotPanics(t, func() { c.Encrypt(buf[:0], buf[:0], 0) })
	assert.NotPanics(t, func() { c.Encrypt(buf[1024:], buf[:1024], 0) })
}

// One Cipher used from many goroutines gives the same bytes as serial use (run with -race).
func TestConcurrentUse(t *testing.T) {
	c, err := New("aes", "xts-essiv:sha256", make([]byte, 64))
	require.NoError(t, err)
	want := make([][]byte, 8)
	for i := range want {
		want[i] = make([]byte, 4096)
		c.Encrypt(want[i], want[i], uint64(i*8))
	}
	done := make(chan []byte)
	for i := 0; i < 8; i++ {
		go func(i int) {
			b := make([]byte, 4096)
			for j := 0; j < 20; j++ {
				clear(b)
				c.Encrypt(b, b, uint64(i*8))
			}
			done <- b
		}(i)
	}
	got := map[string]bool{}
	for i := 0; i < 8; i++ {
		got[string(<-done)] = true
	}
	for i := range want {
		assert.True(t, got[string(want[i])], "sector run %d", i)
	}
}

func TestCipherDoesNotPrintKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 64)
	c, err := New("aes", "xts-essiv:sha256", key)
	require.NoError(t, err)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(verb, c)
		assert.NotContains(t, strings.ToLower(out), "abab", verb)
		assert.NotContains(t, out, "171 171", verb)
		if verb != "%x" {
			assert.Contains(t, out, "aes-xts-essiv:sha256", verb)
		}
	}
}

// TestCipherRedactsAsValue: neither a *Cipher, a dereferenced Cipher nor a struct holding
// one prints key bytes, for any verb (the audit printed the key with a dereference).
func TestCipherRedactsAsValue(t *testing.T) {
	for _, spec := range []string{"aes-xts-plain64", "aes-cbc-essiv:sha256", "serpent-cbc-plain", "twofish-ecb"} {
		name, mode, _ := strings.Cut(spec, "-")
		s, err := ParseSpec(name, mode)
		require.NoError(t, err)
		klen := 32
		if mode == "xts-plain64" {
			klen = 64
		}
		c, err := NewFromSpec(s, bytes.Repeat([]byte{0xab}, klen))
		require.NoError(t, err)
		type holder struct {
			C Cipher
			P *Cipher
		}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			for _, arg := range []any{c, *c, holder{*c, c}, []Cipher{*c}} {
				out := fmt.Sprintf(verb, arg)
				assert.NotContains(t, strings.ToLower(out), "abab", "%s of %T (%s)", verb, arg, spec)
				assert.NotContains(t, out, "171 171", "%s of %T (%s)", verb, arg, spec)
			}
		}
		assert.Equal(t, "sector.Cipher("+spec+")", fmt.Sprint(*c))
		c.Wipe()
	}
}
