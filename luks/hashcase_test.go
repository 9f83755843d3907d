package luks

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHashNameCase: Format lower-cases the hash like cryptsetup; gcrypt-era headers with
// upper-case names still open with both tools; --dump-master-key is the same text as
// --dump-volume-key.
func TestHashNameCase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	img := newImage(t, dir, "h.img", 8<<20)
	f := openRW(t, img)
	h, vk, err := Format(ctx, f, []byte("pw"), FormatOptions{Hash: "SHA1", ForceIterations: 1000})
	require.NoError(t, err)
	assert.Equal(t, "sha1", h.HashSpec)
	h.HashSpec = "SHA1"
	require.NoError(t, writeHeader(f, h))
	h2, got, _, err := Unlock(ctx, f, []byte("pw"), UnlockOptions{})
	require.NoError(t, err)
	assert.Equal(t, vk.Bytes(), got.Bytes())
	assert.Equal(t, "SHA1", h2.HashSpec, "stored as found")
	kf := writeKeyFile(t, dir, "k", []byte("pw"))
	testPass(t, img, kf, 0, true)
	assert.Equal(t, mustCS(t, nil, "luksDump", img), ourDump(t, f, img))
	assert.Equal(t, ourVKDump(t, h2, got, img), mustCS(t, nil, "luksDump", "-q", "--dump-master-key", "-d", kf, img))
}
