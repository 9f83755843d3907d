package dm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A keyring description is written into the table unescaped, so every byte the kernel's
// dm_split_args splits on (its isspace: also \v, \f, \r and Latin-1 0xA0) must be refused,
// not only space, tab and newline: otherwise the key reference would be cut in two and the
// rest read as the IV offset.
func TestKeyringDescriptionRejectsKernelSpace(t *testing.T) {
	for _, desc := range []string{"p:a b", "p:a\tb", "p:a\nb", "p:a\vb", "p:a\fb", "p:a\rb", "p:a\xa0b", `p:a\b`} {
		ct := CryptTable{Length: 8, Cipher: "aes-xts-plain64", Device: "7:0",
			Keyring: &KeyringKey{Type: "logon", Description: desc, Size: 64}}
		_, err := ct.Params()
		require.ErrorIs(t, err, ErrInvalidParameter, "%q", desc)
	}
	ct := CryptTable{Length: 8, Cipher: "aes-xts-plain64", Device: "7:0",
		Keyring: &KeyringKey{Type: "logon", Description: "cloudluks:CRYPT-LUKS1-abc-x", Size: 64}}
	p, err := ct.Params()
	require.NoError(t, err)
	assert.Equal(t, "aes-xts-plain64 :64:logon:cloudluks:CRYPT-LUKS1-abc-x 0 7:0 0", string(p))
}
