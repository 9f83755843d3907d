package luks

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// csTestPass runs `cryptsetup -v open --test-passphrase` and returns the exit code and
// the slot cryptsetup reports ("Key slot N unlocked."), -1 if none.
func csTestPass(t *testing.T, img string, pass string, slot string) (int, int) {
	args := []string{"-v", "open", "--test-passphrase", "--key-file", "-", img}
	if slot != "" {
		args = append(args, "--key-slot", slot)
	}
	r := runCS(t, []byte(pass), args...)
	got := -1
	if i := strings.Index(r.stdout, "Key slot "); i >= 0 {
		got = int(r.stdout[i+len("Key slot ")] - '0')
	}
	return r.code, got
}

// TestUnlock2DefaultSegment: during an online reencryption (cryptsetup reencrypt
// --init-only) keys are checked against the backup-final segment's digest, as cryptsetup
// does: without -S the new key's slot 1 opens, -S 0 (the old key's slot) is refused, and
// --dump-volume-key prints the same text.
func TestUnlock2DefaultSegment(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	img := newImage(t, dir, "re.img", 40<<20)
	mustCS(t, []byte("pass0"), "luksFormat", "--type", "luks2", "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", img, "-")
	mustCS(t, []byte("pass0"), "reencrypt", "--init-only", "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "-", img)
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	ctx := context.Background()

	code, slot := csTestPass(t, img, "pass0", "")
	require.Equal(t, 0, code)
	h, vk, got, err := Unlock2(ctx, bytes.NewReader(b), []byte("pass0"), UnlockOptions{})
	require.NoError(t, err)
	assert.Equal(t, slot, got)
	assert.Equal(t, 1, got)

	var out bytes.Buffer
	require.NoError(t, DumpVolumeKey2(&out, img, h, vk))
	assert.Equal(t, mustCS(t, []byte("pass0"), "luksDump", "--dump-volume-key", "-q", "--key-file", "-", img), out.String())
	vk.Wipe()
	ok, err := h.verifyKey(ctx, csVolumeKey(t, img, []byte("pass0")))
	require.NoError(t, err)
	assert.True(t, ok, "the volume key cryptsetup dumps is the default segment's")

	code, _ = csTestPass(t, img, "pass0", "0")
	assert.Equal(t, 1, code)
	_, _, _, err = Unlock2(ctx, bytes.NewReader(b), []byte("pass0"), UnlockOptions{Keyslot: Slot(0), AllowUnbound: true})
	assert.ErrorIs(t, err, ErrKeyslotInactive)
}

// TestUnlock2UnboundSlot: a slot added with luksAddKey --unbound opens only when named with
// AllowUnbound (cryptsetup open --test-passphrase --key-slot N), against its own digest; a
// wrong passphrase there is ErrWrongPassphrase (exit 2); without -S the unbound slot is
// unusable and, being the last one tried, makes the result "no usable keyslot" (exit 1).
func TestUnlock2UnboundSlot(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	img := newImage(t, dir, "ub.img", 40<<20)
	mustCS(t, []byte("pass0"), "luksFormat", "--type", "luks2", "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", img, "-")
	mustCS(t, []byte("passU"), "luksAddKey", "-q", "--unbound", "--key-size", "256", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", img, "-")
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	ctx := context.Background()

	code, slot := csTestPass(t, img, "passU", "1")
	require.Equal(t, 0, code)
	_, vk, got, err := Unlock2(ctx, bytes.NewReader(b), []byte("passU"), UnlockOptions{Keyslot: Slot(1), AllowUnbound: true})
	require.NoError(t, err)
	assert.Equal(t, slot, got)
	assert.Equal(t, 32, vk.Len())
	vk.Wipe()

	code, _ = csTestPass(t, img, "pass0", "1")
	assert.Equal(t, 2, code)
	_, _, _, err = Unlock2(ctx, bytes.NewReader(b), []byte("pass0"), UnlockOptions{Keyslot: Slot(1), AllowUnbound: true})
	assert.ErrorIs(t, err, ErrWrongPassphrase)

	code, _ = csTestPass(t, img, "passU", "")
	assert.Equal(t, 1, code)
	_, _, _, err = Unlock2(ctx, bytes.NewReader(b), []byte("passU"), UnlockOptions{})
	assert.ErrorIs(t, err, ErrKeyslotInactive)
	assert.NotErrorIs(t, err, ErrWrongPassphrase)
}

// TestLUKS2ReencryptSegmentsCompared: in a header being reencrypted (reencrypt --init-only)
// the regular segments must match a backup segment as json_segment_cmp compares them (type,
// sector size, cipher); each variant is accepted or refused exactly as cryptsetup 2.6.1's
// luksDump accepts or refuses it.
func TestLUKS2ReencryptSegmentsCompared(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	img := newImage(t, dir, "re.img", 40<<20)
	mustCS(t, []byte("pass0"), "luksFormat", "--type", "luks2", "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", img, "-")
	mustCS(t, []byte("pass0"), "reencrypt", "--init-only", "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "-", img)
	base, err := os.ReadFile(img)
	require.NoError(t, err)
	headers, match := 0, 0
	defer func() {
		t.Logf("%d hostile LUKS2 headers, %d decisions match cryptsetup (luksDump)", headers, match)
	}()
	for _, tc := range []struct {
		name   string
		accept bool
		edit   func(segs map[string]any)
	}{
		{"unchanged", true, func(map[string]any) {}},
		{"seg0-sector-512", false, func(s map[string]any) { obj(s, "0")["sector_size"] = json.Number("512") }},
		{"seg0-cipher", false, func(s map[string]any) { obj(s, "0")["encryption"] = "aes-cbc-essiv:sha256" }},
		{"final-cipher-seg0-matches-previous", true, func(s map[string]any) { obj(s, "2")["encryption"] = "serpent-xts-plain64" }},
		{"in-reencryption-must-match-final", false, func(s map[string]any) {
			obj(s, "0")["flags"] = []any{"in-reencryption"}
			obj(s, "2")["encryption"] = "serpent-xts-plain64"
		}},
		{"in-reencryption-matches-final", true, func(s map[string]any) {
			obj(s, "0")["flags"] = []any{"in-reencryption"}
			obj(s, "1")["encryption"] = "serpent-xts-plain64"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := newL2Image(bytes.Clone(base))
			im.edit(t, func(m map[string]any) { tc.edit(obj(m, "segments")) })
			im.sealBoth()
			p := filepath.Join(dir, tc.name+".img")
			require.NoError(t, os.WriteFile(p, im.b, 0o600))
			headers++
			cs := runCS(t, nil, "luksDump", p)
			require.Equal(t, tc.accept, cs.code == 0, "cryptsetup: %s", cs.stderr)
			_, err := ReadHeader2(bytes.NewReader(im.b))
			if (err == nil) == (cs.code == 0) {
				match++
			}
			if tc.accept {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrCorruptHeader)
			}
		})
	}
}
