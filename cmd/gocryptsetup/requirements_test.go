package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// setRequirements rewrites both LUKS2 header copies of the image at p with
// config.requirements.mandatory = reqs, each copy's JSON re-encoded, NUL-padded and its
// sha256 checksum recomputed: a header cryptsetup loads as valid.
func setRequirements(t *testing.T, p string, reqs ...string) {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	hs := binary.BigEndian.Uint64(b[8:16])
	for c := uint64(0); c < 2; c++ {
		hdr := b[c*hs : (c+1)*hs]
		area := hdr[4096:]
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(area[:bytes.IndexByte(area, 0)]))
		d.UseNumber()
		require.NoError(t, d.Decode(&m))
		m["config"].(map[string]any)["requirements"] = map[string]any{"mandatory": reqs}
		js, err := json.Marshal(m)
		require.NoError(t, err)
		clear(area)
		copy(area, js)
		clear(hdr[0x1c0:0x200])
		sum := sha256.Sum256(hdr)
		copy(hdr[0x1c0:], sum[:])
	}
	require.NoError(t, os.WriteFile(p, b, 0o600))
}

// requirementImages makes, in dir, a LUKS2 image with two pbkdf2 slots ("pass0", "pass1")
// and a luks2-keyring token on slot 0 (none.img), and three copies of it whose
// config.requirements hold: offline-reencrypt (cryptsetup-reencrypt's legacy mark),
// online-reencrypt-v2 (made by real `cryptsetup reencrypt --init-only`, so a valid
// reencryption in progress with its reencrypt keyslot and segments), and a requirement no
// cryptsetup knows. none.bak is a header backup of none.img.
func requirementImages(t *testing.T, cs, dir string) []string {
	t.Helper()
	img := filepath.Join(dir, "none.img")
	require.NoError(t, os.WriteFile(img, nil, 0o600))
	require.NoError(t, os.Truncate(img, 20<<20))
	for _, s := range []struct {
		stdin string
		args  []string
	}{
		{"pass0", []string{"luksFormat", "-q", "--type", "luks2", "--sector-size", "512", "--pbkdf", "pbkdf2", iters, "--luks2-keyslots-size", "1m", "none.img", "-"}},
		{"pass0\npass1\n", []string{"luksAddKey", "-q", "--pbkdf", "pbkdf2", iters, "none.img"}},
		{"", []string{"token", "add", "--key-description", "tk", "-S", "0", "none.img"}},
		{"", []string{"luksHeaderBackup", "none.img", "--header-backup-file", "none.bak"}},
	} {
		r := runIn(t, dir, cs, s.stdin, s.args...)
		require.Equal(t, 0, r.code, "%v: %s", s.args, r.stderr)
	}
	names := []string{"none.img", "offline.img", "online.img", "unknown.img"}
	for _, n := range names[1:] {
		copyFile(t, img, filepath.Join(dir, n))
	}
	setRequirements(t, filepath.Join(dir, "offline.img"), "offline-reencrypt")
	setRequirements(t, filepath.Join(dir, "unknown.img"), "future-feature")
	r := runIn(t, dir, cs, "pass0\npass1\n", "reencrypt", "--init-only", "-q", "--pbkdf", "pbkdf2", iters, "online.img")
	require.Equal(t, 0, r.code, r.stderr)
	return names
}

// TestRequirementsSideBySide is the config.requirements decision table: every verb that
// reads or changes a LUKS2 header, run by cryptsetup 2.6.1 and by gocryptsetup on copies of
// a header without requirements, with offline-reencrypt, with a real online-reencrypt-v2 and
// with an unknown requirement: the same exit code, stderr and stdout, and the image changed
// by both or by neither.
func TestRequirementsSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	src := t.TempDir()
	images := requirementImages(t, cs, src)
	require.NoError(t, os.WriteFile(filepath.Join(src, "tok.json"), []byte(`{"type":"x-test","keyslots":[],"a":"b"}`), 0o600))
	F := []string{"--pbkdf", "pbkdf2", iters}
	steps := []struct {
		stdin string
		args  []string
	}{
		{"", []string{"isLuks", "-v", "w.img"}},
		{"", []string{"isLuks", "--type", "luks2", "w.img"}},
		{"pass0\n", []string{"open", "--test-passphrase", "-v", "w.img"}},
		{"pass0\n", []string{"open", "--test-passphrase", "-S", "0", "w.img"}},
		{"pass0\n", []string{"open", "--test-passphrase", "-S", "2", "w.img"}},
		{"", []string{"luksDump", "w.img"}},
		{"", []string{"luksDump", "--dump-json-metadata", "w.img"}},
		{"pass0\n", []string{"luksDump", "--dump-volume-key", "-q", "w.img"}},
		{"pass0\nnew\n", append([]string{"luksAddKey", "-v", "w.img"}, F...)},
		{"pass1\n", []string{"luksRemoveKey", "-v", "w.img"}},
		{"pass0\nnew\n", append([]string{"luksChangeKey", "w.img"}, F...)},
		{"pass1\n", []string{"luksKillSlot", "-v", "w.img", "0"}},
		{"pass1\n", []string{"luksKillSlot", "-q", "w.img", "0"}},
		{"", []string{"luksKillSlot", "-q", "w.img", "5"}},
		{"", []string{"luksUUID", "w.img"}},
		{"", []string{"luksUUID", "-q", "--uuid", "11111111-2222-3333-4444-555555555555", "w.img"}},
		{"", []string{"config", "--label", "foo", "w.img"}},
		{"", []string{"config", "--priority", "prefer", "-S", "0", "w.img"}},
		{"", []string{"token", "add", "-v", "--key-description", "foo", "w.img"}},
		{"", []string{"token", "remove", "--token-id", "0", "w.img"}},
		{"", []string{"token", "remove", "--token-id", "3", "w.img"}},
		{"", []string{"token", "import", "--json-file", "tok.json", "w.img"}},
		{"", []string{"token", "export", "--token-id", "0", "w.img"}},
		{"", []string{"token", "unassign", "--token-id", "0", "-S", "0", "w.img"}},
		{"", []string{"token", "unassign", "--token-id", "0", "-S", "1", "w.img"}},
		{"", []string{"luksHeaderBackup", "w.img", "--header-backup-file", "out.bak"}},
		{"", []string{"luksHeaderRestore", "-q", "w.img", "--header-backup-file", "none.bak"}},
		{"", []string{"luksHeaderRestore", "-q", "none.img", "--header-backup-file", "w.img"}},
		{"", []string{"convert", "-q", "--type", "luks1", "w.img"}},
	}
	for _, img := range images {
		for _, s := range steps {
			var res [2]result
			var changed [2]bool
			for i, prog := range []string{cs, binPath} {
				d := t.TempDir()
				for _, f := range []string{"none.img", "none.bak", "tok.json"} {
					copyFile(t, filepath.Join(src, f), filepath.Join(d, f))
				}
				copyFile(t, filepath.Join(src, img), filepath.Join(d, "w.img"))
				before := fileSum(t, filepath.Join(d, "w.img"))
				noneBefore := fileSum(t, filepath.Join(d, "none.img"))
				res[i] = runIn(t, d, prog, s.stdin, s.args...)
				changed[i] = fileSum(t, filepath.Join(d, "w.img")) != before || fileSum(t, filepath.Join(d, "none.img")) != noneBefore
			}
			name := img + ": " + filepath.Join(s.args...)
			assert.Equal(t, res[0], res[1], name)
			assert.Equal(t, changed[0], changed[1], "%s: image changed (cryptsetup, gocryptsetup)", name)
		}
	}
}

// TestReencryptMetadataInvalidSideBySide: a reencryption whose metadata no longer matches
// the reencrypt keyslot's digest (direction turned round, checksums valid) is refused by
// open --test-passphrase as cryptsetup refuses it (LUKS2_reencrypt_digest_verify, -EPERM),
// and luksChangeKey fails silently before that check, as cryptsetup's does.
func TestReencryptMetadataInvalidSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	src := t.TempDir()
	requirementImages(t, cs, src)
	p := filepath.Join(src, "online.img")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	hs := binary.BigEndian.Uint64(b[8:16])
	for c := uint64(0); c < 2; c++ {
		hdr := b[c*hs : (c+1)*hs]
		end := bytes.IndexByte(hdr[4096:], 0) + 4096
		js := bytes.Replace(hdr[4096:end], []byte(`"direction":"forward"`), []byte(`"direction":"backward"`), 1)
		require.NotEqual(t, hdr[4096:end], js)
		copy(hdr[4096:], js)
		clear(hdr[0x1c0:0x200])
		sum := sha256.Sum256(hdr)
		copy(hdr[0x1c0:], sum[:])
	}
	require.NoError(t, os.WriteFile(p, b, 0o600))
	for _, s := range []struct {
		stdin string
		args  []string
	}{
		{"pass0\n", []string{"open", "--test-passphrase", "w.img"}},
		{"pass1\n", []string{"open", "--test-passphrase", "-v", "w.img"}},
		{"pass0\nnew\n", []string{"luksChangeKey", "--pbkdf", "pbkdf2", iters, "w.img"}},
	} {
		var res [2]result
		for i, prog := range []string{cs, binPath} {
			d := t.TempDir()
			copyFile(t, p, filepath.Join(d, "w.img"))
			res[i] = runIn(t, d, prog, s.stdin, s.args...)
		}
		assert.Equal(t, res[0], res[1], "%v", s.args)
	}
}
