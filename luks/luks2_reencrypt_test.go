package luks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnlock2ReencryptActivation checks Unlock2 with Activation on a header made by real
// `cryptsetup reencrypt --init-only` (slots 0,1 of the old key, 2,3 of the new one with the
// same passphrases, reencrypt slot 4) against `cryptsetup open --test-passphrase`, which is
// crypt_activate_by_passphrase without a name: the same success or failure class, the same
// "Key slot N unlocked." slot, and, on success, the new segment's key.
func TestUnlock2ReencryptActivation(t *testing.T) {
	dir := t.TempDir()
	img := newImage(t, dir, "r.img", 20<<20)
	it := "--pbkdf-force-iterations=1000"
	mustCS(t, []byte("pass0"), "luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2", it, "--luks2-keyslots-size", "1m", img, "-")
	mustCS(t, []byte("pass0\npass1\n"), "luksAddKey", "-q", "--pbkdf", "pbkdf2", it, img)
	mustCS(t, []byte("pass0\npass1\n"), "reencrypt", "--init-only", "-q", "--pbkdf", "pbkdf2", it, img)
	newKey := func(pass string, slot int) []byte {
		out := mustCS(t, []byte(pass), "luksDump", "--dump-volume-key", "-q", "-S", strconv.Itoa(slot), img)
		var hexKey bytes.Buffer
		in := false
		for _, l := range bytes.Split([]byte(out), []byte("\n")) {
			if bytes.HasPrefix(l, []byte("MK dump:")) {
				in = true
				l = l[len("MK dump:"):]
			} else if in && (len(l) == 0 || l[0] != '\t' && l[0] != ' ') {
				in = false
			}
			if in {
				hexKey.Write(bytes.ReplaceAll(bytes.TrimSpace(l), []byte(" "), nil))
			}
		}
		return hexKey.Bytes()
	}
	want := map[string][]byte{"pass0": newKey("pass0", 2), "pass1": newKey("pass1", 3)}
	require.NotEmpty(t, want["pass0"])
	f, err := os.Open(img)
	require.NoError(t, err)
	defer f.Close()
	before := fileBytes(t, img)

	for _, c := range []struct {
		pass string
		slot int // -1: any
	}{
		{"pass0", -1}, {"pass1", -1}, {"wrong", -1},
		{"pass0", 0}, {"pass1", 1}, {"pass0", 2}, {"pass1", 3}, {"pass1", 0}, {"wrong", 2},
		{"pass0", 4}, {"pass0", 7},
	} {
		name := fmt.Sprintf("%s/slot%d", c.pass, c.slot)
		args := []string{"open", "--test-passphrase", "-v", filepath.Join(dir, "r.img")}
		opts := UnlockOptions{Activation: true}
		if c.slot >= 0 {
			args = append(args, "-S", strconv.Itoa(c.slot))
			opts.Keyslot, opts.AllowUnbound = Slot(c.slot), true
		}
		cs := runCS(t, []byte(c.pass+"\n"), args...)
		_, vk, slot, err := Unlock2(context.Background(), f, []byte(c.pass), opts)
		got := 0
		switch {
		case err == nil:
		case errors.Is(err, ErrReencryptKeys):
			got = 1
		case errors.Is(err, ErrWrongPassphrase):
			got = 2
		case errors.Is(err, ErrKeyslotInactive):
			got = -1
		default:
			t.Fatalf("%s: %v", name, err)
		}
		if got == -1 {
			// -ENOENT: "No usable keyslot is available.", exit 1.
			assert.Equal(t, 1, cs.code, name)
			assert.Contains(t, cs.stderr, "No usable keyslot is available.", name)
			continue
		}
		assert.Equal(t, cs.code, got, "%s: cryptsetup %q", name, cs.stderr)
		if err == nil {
			assert.Contains(t, cs.stdout, fmt.Sprintf("Key slot %d unlocked.", slot), name)
			assert.Equal(t, string(want[c.pass]), fmt.Sprintf("%x", vk.Bytes()), name)
			vk.Wipe()
		} else if got == 1 {
			assert.Empty(t, cs.stderr, name)
		}
	}
	assert.Equal(t, before, fileBytes(t, img), "an unlock writes nothing")

	// Reencryption metadata that no longer matches the reencrypt digest (the direction
	// turned round, both header copies rewritten with valid checksums).
	bad := filepath.Join(dir, "bad.img")
	b := fileBytes(t, img)
	hs := binary.BigEndian.Uint64(b[8:16])
	for c := uint64(0); c < 2; c++ {
		h := b[c*hs : (c+1)*hs]
		i := bytes.Index(h, []byte(`"direction":"forward"`))
		require.Positive(t, i)
		end := bytes.IndexByte(h[4096:], 0) + 4096
		js := bytes.Replace(h[4096:end], []byte(`"direction":"forward"`), []byte(`"direction":"backward"`), 1)
		copy(h[4096:], js)
		clear(h[0x1c0:0x200])
		sum := sha256.Sum256(h)
		copy(h[0x1c0:], sum[:])
	}
	require.NoError(t, os.WriteFile(bad, b, 0o600))
	cs := runCS(t, []byte("pass0\n"), "open", "--test-passphrase", bad)
	assert.Equal(t, 2, cs.code, cs.stderr)
	assert.Contains(t, cs.stderr, "Reencryption metadata is invalid.")
	bf, err := os.Open(bad)
	require.NoError(t, err)
	defer bf.Close()
	_, _, _, err = Unlock2(context.Background(), bf, []byte("pass0"), UnlockOptions{Activation: true})
	assert.ErrorIs(t, err, ErrReencryptMetadata)

	// Without Activation the plain keyslot open stays: slot 2 alone gives the new key.
	_, vk, slot, err := Unlock2(context.Background(), f, []byte("pass0"), UnlockOptions{Keyslot: Slot(2)})
	require.NoError(t, err)
	assert.Equal(t, 2, slot)
	assert.Equal(t, string(want["pass0"]), fmt.Sprintf("%x", vk.Bytes()))
	vk.Wipe()
}

func fileBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}
