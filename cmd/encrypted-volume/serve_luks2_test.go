package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/luks"
)

// TestServeHeaderLUKS2: serve sends a LUKS2 volume's header as the keeper needs it — both
// metadata copies and the keyslots area — and checks a key against it; the keeper unlocks
// exactly those bytes.
func TestServeHeaderLUKS2(t *testing.T) {
	img := filepath.Join(t.TempDir(), "luks2.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(24<<20))
	_, vk, err := luks.FormatLUKS2(context.Background(), f, []byte(testPass), luks.LUKS2FormatOptions{
		PBKDF: "pbkdf2", ForceIterations: 1000})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	defer vk.Wipe()

	b, m, err := readHeaderBytes(img)
	require.NoError(t, err)
	require.Equal(t, 2, m.LUKSVersion())
	h := m.(*luks.Header2)
	assert.Equal(t, int(2*h.HeaderSize+h.Config.KeyslotsSize), len(b))
	_, got, _, err := luks.UnlockAny(context.Background(), struct{ *bytes.Reader }{bytes.NewReader(b)}, []byte(testPass), luks.UnlockOptions{})
	require.NoError(t, err, "the keeper unlocks the bytes serve sends")
	assert.Equal(t, vk.Bytes(), got.Bytes())
	got.Wipe()
	require.NoError(t, luks.CheckVolumeKey(m, vk))
}
