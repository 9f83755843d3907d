package dm

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Table returns crypt targets whose Params hold the key in hex; printing a Target (alone, in a
// slice, with any verb) must never show it.
func TestTargetFormatRedactsKey(t *testing.T) {
	const key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	tgt := Target{Length: 8, Type: "crypt", Params: []byte("aes-xts-plain64 " + key + " 0 7:0 4096 1 allow_discards")}
	for _, s := range []string{
		fmt.Sprint(tgt), fmt.Sprintf("%v", &tgt), fmt.Sprintf("%+v", tgt), fmt.Sprintf("%#v", tgt),
		fmt.Sprintf("%s", []Target{tgt}), fmt.Sprintf("%q", tgt), fmt.Sprintf("%x", tgt), tgt.String(),
	} {
		assert.NotContains(t, s, key)
		assert.NotContains(t, s, "0 17 34 51", "key bytes as numbers")
		assert.NotContains(t, strings.ToLower(s), "3030313132323333", "key as hex of its hex")
	}
	assert.Equal(t, "0 8 crypt aes-xts-plain64 <redacted> 0 7:0 4096 1 allow_discards", tgt.String())

	for _, tc := range []struct {
		tgt  Target
		want string
	}{
		// A keyring reference names a key, it is not one.
		{Target{Length: 8, Type: "crypt", Params: []byte("aes-xts-plain64 :64:logon:cloudluks:x 0 7:0 0")},
			"0 8 crypt aes-xts-plain64 :64:logon:cloudluks:x 0 7:0 0"},
		{Target{Length: 8, Type: "crypt", Params: []byte("cipher_null-ecb - 0 7:0 0")}, "0 8 crypt cipher_null-ecb - 0 7:0 0"},
		// Escaped white space inside the cipher argument does not shift the key position.
		{Target{Length: 8, Type: "crypt", Params: []byte(`a\ b  ab12 0 7:0 0`)}, `0 8 crypt a\ b  <redacted> 0 7:0 0`},
		{Target{Length: 8, Type: "crypt", Params: []byte("onlycipher")}, "0 8 crypt onlycipher"},
		{Target{Start: 8, Length: 1, Type: "linear", Params: []byte("7:0 0")}, "8 1 linear 7:0 0"},
		{Target{Length: 1, Type: "zero"}, "0 1 zero"},
		// Unknown types may carry keys (integrity's journal_crypt): parameters hidden.
		{Target{Length: 1, Type: "integrity", Params: []byte("7:0 0 32 J 1 journal_crypt:ctr(aes):" + key)},
			fmt.Sprintf("0 1 integrity <%d bytes redacted>", len("7:0 0 32 J 1 journal_crypt:ctr(aes):"+key))},
	} {
		got := tc.tgt.String()
		assert.Equal(t, tc.want, got)
		assert.NotContains(t, got, key)
	}
}

func TestTargetMessage(t *testing.T) {
	b, err := targetMessage(7, "@cancel_deferred_remove")
	assert.NoError(t, err)
	assert.Equal(t, append([]byte{7, 0, 0, 0, 0, 0, 0, 0}, "@cancel_deferred_remove\x00"...), b)
	for _, bad := range []string{"", "a\x00b"} {
		_, err := targetMessage(0, bad)
		assert.ErrorIs(t, err, ErrInvalidParameter)
	}
}

// FuzzTargetString: printing any target never panics, and a crypt target whose second
// argument is a long hex key never shows that key.
func FuzzTargetString(f *testing.F) {
	f.Add("crypt", []byte("aes-xts-plain64 00112233445566778899aabbccddeeff 0 7:0 0"))
	f.Add("crypt", []byte(`a\ b\\ \ `))
	f.Add("crypt", []byte("\\"))
	f.Add("crypt", []byte(" \xa0 "))
	f.Add("linear", []byte("7:0 0"))
	f.Add("integrity", []byte("7:0 0 32 J 1 journal_crypt:ctr(aes):00"))
	f.Fuzz(func(t *testing.T, typ string, params []byte) {
		s := Target{Type: typ, Params: params}.String()
		if typ != "crypt" {
			return
		}
		start, end := argSpan(params, 1)
		if start > end || end > len(params) {
			t.Fatalf("argSpan(%q, 1) = %d, %d", params, start, end)
		}
		key := string(params[start:end])
		if len(key) >= 32 && key[0] != ':' && !strings.Contains(string(params[:start]), key) &&
			!strings.Contains(string(params[end:]), key) && strings.Contains(s, key) {
			t.Fatalf("String shows the key argument %q: %q", key, s)
		}
	})
}
