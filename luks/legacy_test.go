package luks

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLegacyLayout: a header laid out like cryptsetup 1.0.0 (unaligned slots at sectors
// 2, 128, 254, ... 884, payload 1010, MK digest with 10 iterations, sha1) is read with its
// stored offsets, opened by both tools and key-managed here without recomputing the layout.
func TestLegacyLayout(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	img := newImage(t, dir, "old.img", 1<<20)
	f := openRW(t, img)
	h := &Header{
		Version: 1, CipherName: "aes", CipherMode: "cbc-plain", HashSpec: "sha1",
		PayloadOffset: 1010, KeyBytes: 16, MKDigestIterations: 10,
		UUID: "00000000-1111-4222-8333-444444444444",
	}
	for i := range h.Keyslots {
		h.Keyslots[i] = Keyslot{Active: KeyDisabled, KeyMaterialOffset: uint32(2 + 126*i), Stripes: Stripes}
	}
	require.NoError(t, h.Validate())
	vk := make([]byte, 16)
	_, err := rand.Read(vk)
	require.NoError(t, err)
	_, err = rand.Read(h.MKDigestSalt[:])
	require.NoError(t, err)
	sc, err := prepare(h, 0)
	require.NoError(t, err)
	d, err := pbkdf2Key(ctx, sc.newHash, vk, h.MKDigestSalt[:], 10, DigestSize)
	require.NoError(t, err)
	copy(h.MKDigest[:], d)
	u, err := sealKeyslot(ctx, h, sc, 0, []byte("old"), vk, 1000, rand.Reader)
	require.NoError(t, err)
	require.NoError(t, commitKeyslot(f, h, u))

	kf := writeKeyFile(t, dir, "k", []byte("old"))
	testPass(t, img, kf, 0, true)
	assert.Equal(t, mustCS(t, nil, "luksDump", img), ourDump(t, f, img))
	_, got, _, err := Unlock(ctx, f, []byte("old"), UnlockOptions{})
	require.NoError(t, err)
	assert.Equal(t, vk, got.Bytes())

	_, s, err := AddKey(ctx, f, []byte("old"), []byte("new"), opts1000(nil))
	require.NoError(t, err)
	assert.Equal(t, 1, s)
	h2, err := ReadHeader(f)
	require.NoError(t, err)
	assert.Equal(t, uint32(128), h2.Keyslots[1].KeyMaterialOffset, "stored offsets kept")
	testPass(t, img, writeKeyFile(t, dir, "k2", []byte("new")), 1, true)
	require.NoError(t, KillSlot(f, 0))
	testPass(t, img, kf, -1, false)
	assert.Equal(t, mustCS(t, nil, "luksDump", img), ourDump(t, f, img))
}
