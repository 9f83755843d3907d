package luks

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/luks/internal/jsonc"
)

// Tokens of the kinds that live on real volumes (systemd-cryptenroll, clevis) and one
// with every escape json-c writes: they must come back byte for byte after our writes.
var foreignTokens = []string{
	`{"type":"systemd-tpm2","keyslots":["0"],"tpm2-blob":"AJ4AIP/x+w==","tpm2-pcrs":[7,11],"tpm2-pcr-bank":"sha256","tpm2-primary-alg":"ecc","tpm2-policy-hash":"3f9a","tpm2-pin":false,"tpm2-salt":"","tpm2_srk":"gQAAAQ=="}`,
	`{"type":"clevis","keyslots":["0","1"],"jwe":{"ciphertext":"a/b+c==","encrypted_key":"","iv":"x","protected":"eyJhbGciOiJFQ0RILUVTIn0","tag":"t"}}`,
	`{"type":"systemd-fido2","keyslots":["1"],"fido2-credential":"AQID","fido2-salt":"BAUG","fido2-rp":"io.systemd.cryptsetup","fido2-clientPin-required":true,"fido2-up-required":true,"fido2-uv-required":false}`,
	`{"type":"x-odd","keyslots":[],"s":"q\"b\\s/f\b\f\n\r\t\u0001\u007f\u00e9","n":-12,"d":1.5e3,"z":null}`,
}

// luks2Image makes a cryptsetup LUKS2 image with slot 0 "pass0" (argon2id) and slot 1
// "pass1" (pbkdf2), and the foreign tokens.
func luks2Image(t *testing.T, dir, name string) string {
	t.Helper()
	img := newImage(t, dir, name, 32<<20)
	mustCS(t, []byte("pass0"), "luksFormat", "--type", "luks2", "-q", "--pbkdf", "argon2id", "--pbkdf-force-iterations", "4",
		"--pbkdf-memory", "32", "--pbkdf-parallel", "1", "--key-file", "-", img)
	kf := writeKeyFile(t, dir, name+".k1", []byte("pass1"))
	mustCS(t, []byte("pass0"), "luksAddKey", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "-", img, kf)
	for _, tok := range foreignTokens {
		mustCS(t, []byte(tok), "token", "import", img)
	}
	return img
}

func copyImage(t *testing.T, src, dst string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, 0o600))
	return dst
}

// headerBytes returns both metadata copies of a LUKS2 image.
func headerBytes(t *testing.T, img string) []byte {
	t.Helper()
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	hs := binary.BigEndian.Uint64(b[l2OffHdrSize:])
	return b[:2*hs]
}

// tokensText is the tokens object of an image's JSON as json-c writes it.
func tokensText(t *testing.T, img string) string {
	t.Helper()
	b := headerBytes(t, img)
	v, _, err := jsonc.Parse(b[l2BinLen:])
	require.NoError(t, err)
	return string(jsonc.Marshal(v.Get("tokens")))
}

func csOpens(t *testing.T, img string, pass string) bool {
	t.Helper()
	return runCS(t, []byte(pass), "open", "--test-passphrase", "--key-file", "-", img).code == 0
}

// TestKillSlotLUKS2MatchesCryptsetup kills the same slot with cryptsetup and here on
// copies of one image: the metadata (both copies, binary and JSON) is byte-identical,
// tokens that listed the slot lose it in place, and the other slot still opens.
func TestKillSlotLUKS2MatchesCryptsetup(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	src := luks2Image(t, dir, "src.img")
	for _, slot := range []int{0, 1} {
		theirs := copyImage(t, src, filepath.Join(dir, "cs.img"))
		ours := copyImage(t, src, filepath.Join(dir, "go.img"))
		mustCS(t, nil, "luksKillSlot", "-q", theirs, string(rune('0'+slot)))
		f := openRW(t, ours)
		require.NoError(t, KillSlotLUKS2(f, slot, nil))
		require.NoError(t, f.Close())
		assert.Equal(t, headerBytes(t, theirs), headerBytes(t, ours), "slot %d: metadata", slot)
		other := []string{"pass1", "pass0"}[slot]
		assert.True(t, csOpens(t, ours, other), "slot %d: the other passphrase opens", slot)
		assert.False(t, csOpens(t, ours, []string{"pass0", "pass1"}[slot]), "slot %d: the killed one does not", slot)
	}
	f := openRW(t, copyImage(t, src, filepath.Join(dir, "x.img")))
	assert.ErrorIs(t, KillSlotLUKS2(f, 5, nil), ErrKeyslotInactive)
}

// TestAddKeyLUKS2MatchesCryptsetup adds a key with the same forced parameters with
// cryptsetup and here: luksDump identical but for salts and digests, unknown tokens kept
// byte for byte, cryptsetup opens the new slot; then cryptsetup changes our image (kills
// slot 0) and we still open it, and remove a key through our RemoveKeyLUKS2.
func TestAddKeyLUKS2MatchesCryptsetup(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	src := luks2Image(t, dir, "src.img")
	cases := []struct {
		name string
		args []string
		o    LUKS2KeyslotOptions
	}{
		{"argon2id", []string{"--pbkdf", "argon2id", "--pbkdf-force-iterations", "5", "--pbkdf-memory", "64", "--pbkdf-parallel", "1"},
			LUKS2KeyslotOptions{PBKDF: KDFArgon2id, ForceIterations: 5, Memory: 64, Parallel: 1}},
		{"pbkdf2-sha512-slot7", []string{"--pbkdf", "pbkdf2", "--hash", "sha512", "--pbkdf-force-iterations", "1500", "--new-key-slot", "7"},
			LUKS2KeyslotOptions{PBKDF: KDFPBKDF2, Hash: "sha512", ForceIterations: 1500, Keyslot: Slot(7)}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			theirs := copyImage(t, src, filepath.Join(dir, c.name+"-cs.img"))
			ours := copyImage(t, src, filepath.Join(dir, c.name+"-go.img"))
			kf := writeKeyFile(t, dir, c.name+".new", []byte("newpass"))
			mustCS(t, []byte("pass1"), append(append([]string{"luksAddKey", "--key-file", "-"}, c.args...), theirs, kf)...)
			f := openRW(t, ours)
			c.o.Rand = rand.NewChaCha8([32]byte{byte(i)})
			slot, err := AddKeyLUKS2(context.Background(), f, []byte("pass1"), []byte("newpass"), c.o)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			want := 2
			if c.o.Keyslot != nil {
				want = *c.o.Keyslot
			}
			assert.Equal(t, want, slot)
			assert.Equal(t, maskDump(mustCS(t, nil, "luksDump", theirs)), maskDump(mustCS(t, nil, "luksDump", ours)))
			assert.Equal(t, tokensText(t, theirs), tokensText(t, ours))
			for _, p := range []string{"pass0", "pass1", "newpass"} {
				assert.True(t, csOpens(t, ours, p), "%s opens ours", p)
			}
			// cryptsetup changes ours; we read its change.
			mustCS(t, nil, "luksKillSlot", "-q", ours, "0")
			f = openRW(t, ours)
			_, vk, got, err := Unlock2(context.Background(), f, []byte("newpass"), UnlockOptions{})
			require.NoError(t, err)
			vk.Wipe()
			assert.Equal(t, slot, got)
			_, _, _, err = Unlock2(context.Background(), f, []byte("pass0"), UnlockOptions{})
			assert.ErrorIs(t, err, ErrWrongPassphrase)
			removed, err := RemoveKeyLUKS2(context.Background(), f, []byte("pass1"), nil)
			require.NoError(t, err)
			assert.Equal(t, 1, removed)
			require.NoError(t, f.Close())
			assert.False(t, csOpens(t, ours, "pass1"))
			assert.True(t, csOpens(t, ours, "newpass"))
		})
	}
	// A wrong existing passphrase changes nothing.
	ours := copyImage(t, src, filepath.Join(dir, "wrong.img"))
	before := fileHash(t, ours)
	f := openRW(t, ours)
	_, err := AddKeyLUKS2(context.Background(), f, []byte("nope"), []byte("x"), LUKS2KeyslotOptions{PBKDF: KDFPBKDF2, ForceIterations: 1000})
	assert.ErrorIs(t, err, ErrWrongPassphrase)
	assert.Equal(t, before, fileHash(t, ours))
}

// TestAddKeyLUKS2Crash cuts the add after every write: until the header write completes
// the old header stands (the new passphrase does not open, the old ones do); after the
// primary copy it opens.
func TestAddKeyLUKS2Crash(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	src := luks2Image(t, dir, "src.img")
	o := LUKS2KeyslotOptions{PBKDF: KDFPBKDF2, ForceIterations: 1000}
	probe := openRW(t, copyImage(t, src, filepath.Join(dir, "probe.img")))
	w := &crashAfter{f: probe, left: -1}
	_, err := AddKeyLUKS2(context.Background(), w, []byte("pass0"), []byte("new"), o)
	require.NoError(t, err)
	for cut := 0; cut < w.n; cut++ {
		img := copyImage(t, src, filepath.Join(dir, "cut.img"))
		f := openRW(t, img)
		cw := &crashAfter{f: f, left: cut}
		_, err := AddKeyLUKS2(context.Background(), cw, []byte("pass0"), []byte("new"), o)
		require.Error(t, err)
		require.NoError(t, f.Close())
		assert.True(t, csOpens(t, img, "pass0"), "cut %d: old passphrase", cut)
		assert.Equal(t, cw.headerDone, csOpens(t, img, "new"), "cut %d: new passphrase opens once the primary is written", cut)
		assert.False(t, bytes.Equal(headerBytes(t, img), nil))
	}
}

// TestChangeKeyLUKS2MatchesCryptsetup changes a passphrase with cryptsetup and here on
// copies: the same slot ends up holding the new passphrase, luksDump is identical but for
// salts and digests (key slot order in the JSON, epoch, areas, tokens included), the old
// passphrase no longer opens.
func TestChangeKeyLUKS2MatchesCryptsetup(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	src := luks2Image(t, dir, "src.img")
	oldKF := writeKeyFile(t, dir, "old", []byte("pass0"))
	newKF := writeKeyFile(t, dir, "new", []byte("changed"))
	for _, c := range []struct {
		name string
		args []string
		o    LUKS2KeyslotOptions
		want int
	}{
		{"new slot then swap", []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}, LUKS2KeyslotOptions{PBKDF: KDFPBKDF2, ForceIterations: 1000}, 0},
		{"in place -S 0", []string{"-S", "0", "--pbkdf", "argon2i", "--pbkdf-force-iterations", "4", "--pbkdf-memory", "32", "--pbkdf-parallel", "1"},
			LUKS2KeyslotOptions{Keyslot: Slot(0), PBKDF: KDFArgon2i, ForceIterations: 4, Memory: 32, Parallel: 1}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			theirs := copyImage(t, src, filepath.Join(dir, "cs.img"))
			ours := copyImage(t, src, filepath.Join(dir, "go.img"))
			mustCS(t, nil, append(append([]string{"luksChangeKey", "--key-file", oldKF}, c.args...), theirs, newKF)...)
			f := openRW(t, ours)
			slot, err := ChangeKeyLUKS2(context.Background(), f, []byte("pass0"), []byte("changed"), c.o)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			assert.Equal(t, c.want, slot)
			assert.Equal(t, maskDump(mustCS(t, nil, "luksDump", theirs)), maskDump(mustCS(t, nil, "luksDump", ours)))
			assert.Equal(t, maskJSON(t, headerBytes(t, theirs)[l2BinLen:]), maskJSON(t, headerBytes(t, ours)[l2BinLen:]))
			assert.True(t, csOpens(t, ours, "changed"))
			assert.True(t, csOpens(t, ours, "pass1"))
			assert.False(t, csOpens(t, ours, "pass0"))
		})
	}
}
