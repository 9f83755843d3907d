package luks

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLUKS2EmptyFractionLikeCryptsetup: json-c reads "1.", "-1.", "0." and "1.e5" as
// doubles and writes them back unchanged, so cryptsetup 2.6.1 dumps and opens a header
// holding them (in a token here) and keeps them on a rewrite; so do we, byte for byte.
func TestLUKS2EmptyFractionLikeCryptsetup(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "frac.img")
	require.NoError(t, os.WriteFile(p, baseImage2(t), 0o600))
	mustCS(t, []byte(`{"type":"x","keyslots":[],"a":1.,"b":-1.,"c":[0.,1.e5,1.E+5]}`), "token", "import", "--disable-external-tokens", p)

	img, err := os.ReadFile(p)
	require.NoError(t, err)
	h, err := ReadHeader2(bytes.NewReader(img))
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, h.Dump(&out, p))
	assert.Equal(t, mustCS(t, nil, "luksDump", p), out.String())

	require.Equal(t, 0, runCS(t, []byte("pass0"), "open", "--test-passphrase", "--key-file", "-", p).code)
	_, vk, _, err := Unlock2(context.Background(), bytes.NewReader(img), []byte("pass0"), UnlockOptions{})
	require.NoError(t, err)
	vk.Wipe()

	ours := &memDev{b: img}
	mustCS(t, nil, "config", p, "--label", "frac")
	require.NoError(t, SetLabelLUKS2(ours, "frac", ""))
	want, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, ours.b), "rewritten image differs from cryptsetup's")
	assert.Contains(t, string(ours.b), `"a":1.,"b":-1.,"c":[0.,1.e5,1.E+5]`)
}
