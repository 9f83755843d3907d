package keeper

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/luks"
)

// TestUnlockOnceLUKS2: the volume the walkthrough makes on a current distribution is LUKS2
// (argon2id or pbkdf2 key slots, two metadata copies, a keyslots area); the keeper loads,
// validates and unlocks that header locally too, and sends only the volume key.
func TestUnlockOnceLUKS2(t *testing.T) {
	in := newInstance(t, "i-0123456789abcdef0", "vol-0123456789abcdef0")
	img := filepath.Join(t.TempDir(), "luks2.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(24<<20))
	_, vk, err := luks.FormatLUKS2(context.Background(), f, []byte(testPassphrase), luks.LUKS2FormatOptions{
		PBKDF: "argon2id", ForceIterations: 4, Memory: 32 * 1024, Parallel: 1})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	m, err := luks.Load(mustOpen(t, img))
	require.NoError(t, err)
	seg, err := m.DataSegment()
	require.NoError(t, err)
	require.Equal(t, 2, seg.Version)
	key := bytes.Clone(vk.Bytes())
	vk.Wipe()
	sum := sha256.Sum256(key)
	in.vk, in.uuid = key, seg.UUID
	in.cfg.Image, in.cfg.KeySHA256 = img, hex.EncodeToString(sum[:])
	in.cfg.State.LUKSVersion, in.cfg.State.LUKSUUID = 2, seg.UUID
	in.write()

	sec := &vault{m: map[string][]byte{in.volID: []byte(testPassphrase)}}
	k, err := New(Options{NoEC2: true, Secrets: sec}, nil)
	require.NoError(t, err)
	res, err := k.UnlockOnce(context.Background(), in.target())
	require.NoError(t, err)
	require.Equal(t, OutcomeUnlocked, res.Outcome)
	sent := in.sent()
	require.True(t, bytes.Contains(sent, key), "the LUKS2 volume key reached the instance")
	require.False(t, bytes.Contains(sent, []byte(testPassphrase)), "the passphrase stays here")
}

func mustOpen(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}
