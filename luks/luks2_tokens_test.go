package luks

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTokensLUKS2MatchCryptsetup imports, replaces, adds, exports and removes tokens with
// cryptsetup and here on copies of one image: the metadata (both copies) stays
// byte-identical after every step, export prints what cryptsetup prints, and tokens
// cryptsetup refuses are refused without a write.
func TestTokensLUKS2MatchCryptsetup(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	src := newImage(t, dir, "src.img", 32<<20)
	mustCS(t, []byte("pass0"), "luksFormat", "--type", "luks2", "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "-", src)
	kf := writeKeyFile(t, dir, "k1", []byte("pass1"))
	mustCS(t, []byte("pass0"), "luksAddKey", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "-", src, kf)
	theirs := copyImage(t, src, filepath.Join(dir, "cs.img"))
	ours := copyImage(t, src, filepath.Join(dir, "go.img"))
	same := func(step string) {
		t.Helper()
		require.Equal(t, headerBytes(t, theirs), headerBytes(t, ours), "after %s", step)
	}
	f := openRW(t, ours)
	for i, tok := range foreignTokens {
		mustCS(t, []byte(tok), "token", "import", theirs)
		id, err := TokenImportLUKS2(f, -1, false, []byte(tok), -1, nil)
		require.NoError(t, err)
		assert.Equal(t, i, id)
		same("import " + tok[:20])
	}
	// Replace token 1 in place, import at id 9 with a key slot assignment.
	repl := `{"type":"clevis","keyslots":["1"],"jwe":{"x":"\/y"}}`
	mustCS(t, []byte(repl), "token", "import", "--token-id", "1", "--token-replace", theirs)
	_, err := TokenImportLUKS2(f, 1, true, []byte(repl), -1, nil)
	require.NoError(t, err)
	same("replace")
	mustCS(t, []byte(`{"type":"x","keyslots":[]}`), "token", "import", "--token-id", "9", "--key-slot", "1", theirs)
	_, err = TokenImportLUKS2(f, 9, false, []byte(`{"type":"x","keyslots":[]}`), 1, nil)
	require.NoError(t, err)
	same("import --token-id 9 --key-slot 1")
	mustCS(t, nil, "token", "add", "--key-description", "cryptsetup:vol", "--key-slot", "0", theirs)
	_, err = TokenAddKeyringLUKS2(f, -1, false, "cryptsetup:vol", 0, false, nil)
	require.NoError(t, err)
	same("token add")
	mustCS(t, nil, "token", "add", "--key-description", "all:slots", theirs)
	_, err = TokenAddKeyringLUKS2(f, -1, false, "all:slots", -1, false, nil)
	require.NoError(t, err)
	same("token add (every slot)")
	mustCS(t, nil, "token", "add", "--key-description", "none", "--unbound", theirs)
	_, err = TokenAddKeyringLUKS2(f, -1, false, "none", -1, true, nil)
	require.NoError(t, err)
	same("token add --unbound")
	for _, id := range []string{"0", "1", "3", "9"} {
		want := mustCS(t, nil, "token", "export", "--token-id", id, theirs)
		n := int(id[0] - '0')
		got, err := TokenExportLUKS2(f, n)
		require.NoError(t, err)
		assert.Equal(t, want, string(got), "export %s", id)
	}
	mustCS(t, nil, "token", "remove", "--token-id", "2", theirs)
	require.NoError(t, TokenRemoveLUKS2(f, 2, nil))
	same("remove")

	// Refusals, cryptsetup's and ours, nothing written.
	before := headerBytes(t, ours)
	for _, c := range []struct {
		json    string
		id      int
		replace bool
		err     error
	}{
		{`{"type":"x","keyslots":["5"]}`, -1, false, ErrInvalidToken},
		{`{"type":"x","keyslots":[0]}`, -1, false, ErrInvalidToken},
		{`{"keyslots":[]}`, -1, false, ErrInvalidToken},
		{`{"type":"luks2-foo","keyslots":[]}`, -1, false, ErrInvalidToken},
		{`{"type":"luks2-keyring","keyslots":[]}`, -1, false, ErrInvalidToken},
		{`["type"]`, -1, false, ErrInvalidToken},
		{`{"type":"x","keyslots":[]`, -1, false, ErrInvalidToken},
		{`{"type":"x","keyslots":[]}`, 0, false, ErrTokenInUse},
		{`{"type":"x","keyslots":[]}`, 32, false, ErrInvalidToken},
	} {
		args := []string{"token", "import", theirs}
		if c.id >= 0 {
			args = append(args, "--token-id", string(rune('0'+c.id%10)))
			if c.id >= 10 {
				args[len(args)-1] = "32"
			}
		}
		r := runCS(t, []byte(c.json), args...)
		assert.NotEqual(t, 0, r.code, "cryptsetup accepts %s", c.json)
		_, err := TokenImportLUKS2(f, c.id, c.replace, []byte(c.json), -1, nil)
		assert.ErrorIs(t, err, c.err, c.json)
		assert.Equal(t, before, headerBytes(t, ours), c.json)
	}
	assert.ErrorIs(t, TokenRemoveLUKS2(f, 2, nil), ErrTokenNotInUse)
	_, err = TokenExportLUKS2(f, 2)
	assert.ErrorIs(t, err, ErrTokenNotInUse)
	assert.True(t, strings.Contains(mustCS(t, nil, "luksDump", ours), "Tokens:"))
}
