package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// luks2HeaderImages makes, in dir, with cryptsetup 2.6.1 unless said otherwise: a.img
// (LUKS2 defaults, "pass0"), b.img (32k metadata, 2 MiB keyslots area: another data
// offset), d.img (1 MiB keyslots area, data at 16 MiB: a's data offset, other areas size),
// l1.img (LUKS1), g.img (LUKS2 made by gocryptsetup), zero.img (no header).
func luks2HeaderImages(t *testing.T, dir string) {
	t.Helper()
	cs := cryptsetup(t)
	F := []string{"--pbkdf", "pbkdf2", iters}
	for _, n := range []string{"a", "b", "d", "l1", "g", "zero"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n+".img"), nil, 0o600))
		require.NoError(t, os.Truncate(filepath.Join(dir, n+".img"), 20<<20))
	}
	for _, c := range []struct {
		prog string
		args []string
	}{
		{cs, append([]string{"luksFormat", "-q", "a.img"}, F...)},
		{cs, append([]string{"luksFormat", "-q", "b.img", "--luks2-metadata-size", "32k", "--luks2-keyslots-size", "2m"}, F...)},
		{cs, append([]string{"luksFormat", "-q", "d.img", "--luks2-keyslots-size", "1m", "--offset", "32768"}, F...)},
		{cs, []string{"luksFormat", "-q", "--type", "luks1", iters, "l1.img"}},
		{binPath, append([]string{"luksFormat", "-q", "g.img"}, F...)},
	} {
		r := runIn(t, dir, c.prog, "pass0\n", c.args...)
		require.Equal(t, 0, r.code, "%v: %s", c.args, r.stderr)
	}
}

// TestLuks2HeaderBackupSideBySide: luksHeaderBackup of LUKS2 images (cryptsetup's and
// ours) writes the same file as cryptsetup 2.6.1, byte for byte, mode 0400.
func TestLuks2HeaderBackupSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	dir := t.TempDir()
	luks2HeaderImages(t, dir)
	for _, img := range []string{"a.img", "b.img", "d.img", "g.img"} {
		var files [2][]byte
		for i, p := range []string{cs, binPath} {
			bk := filepath.Join(dir, img+".bk"+string(rune('0'+i)))
			r := runIn(t, dir, p, "", "luksHeaderBackup", "-v", img, "--header-backup-file", bk)
			require.Equal(t, 0, r.code, "%s %s: %s", p, img, r.stderr)
			assert.Equal(t, "Command successful.\n", r.stdout)
			fi, err := os.Stat(bk)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o400), fi.Mode().Perm())
			files[i], err = os.ReadFile(bk)
			require.NoError(t, err)
		}
		assert.True(t, bytes.Equal(files[0], files[1]), "%s: backups differ (%d and %d bytes)", img, len(files[0]), len(files[1]))
	}
	// --type is ignored, as cryptsetup ignores it; an existing file is refused.
	for _, args := range [][]string{
		{"luksHeaderBackup", "--type", "luks1", "a.img", "--header-backup-file", "t1.bk"},
		{"luksHeaderBackup", "a.img", "--header-backup-file", "t1.bk"},
	} {
		dirs := [2]string{t.TempDir(), t.TempDir()}
		var res [2]result
		for i, p := range []string{cs, binPath} {
			copyFile(t, filepath.Join(dir, "a.img"), filepath.Join(dirs[i], "a.img"))
			if args[1] != "--type" {
				require.NoError(t, os.WriteFile(filepath.Join(dirs[i], "t1.bk"), nil, 0o600))
			}
			res[i] = runIn(t, dirs[i], p, "", args...)
		}
		assert.Equal(t, res[0], res[1], "%v", args)
	}
}

// TestLuks2HeaderRestoreSideBySide restores LUKS2 backups made by either tool onto images
// with both tools: same exit code and messages, the same resulting image bytes, and the
// result opens with the backup's passphrases only. The refusals (other data offset, other
// areas size, a truncated or foreign backup) and LUKS1↔LUKS2 replacements match too.
func TestLuks2HeaderRestoreSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	src := t.TempDir()
	luks2HeaderImages(t, src)
	// a2.img: a.img with a second passphrase, so a restore of a's backup visibly removes it.
	copyFile(t, filepath.Join(src, "a.img"), filepath.Join(src, "a2.img"))
	r := runIn(t, src, cs, "pass0\npass1\n", "luksAddKey", "--pbkdf", "pbkdf2", iters, "a2.img")
	require.Equal(t, 0, r.code, r.stderr)
	for i, p := range []string{cs, binPath} {
		for _, img := range []string{"a", "g", "l1"} {
			r := runIn(t, src, p, "", "luksHeaderBackup", img+".img", "--header-backup-file", img+".bk"+string(rune('0'+i)))
			require.Equal(t, 0, r.code, r.stderr)
		}
	}
	a, err := os.ReadFile(filepath.Join(src, "a.bk0"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(src, "short.bk"), a[:100], 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(src, "trunc.bk"), a[:20000], 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(src, "primary.bk"), a[:16384], 0o600))

	for _, tc := range []struct {
		name, img, backup string
		code              int
		opens, refused    []string // passphrases of the result (checked by cryptsetup)
	}{
		{"cryptsetup's backup", "a2.img", "a.bk0", 0, []string{"pass0"}, []string{"pass1"}},
		{"our backup", "a2.img", "a.bk1", 0, []string{"pass0"}, []string{"pass1"}},
		{"our image's backup over cryptsetup's image", "a2.img", "g.bk1", 0, []string{"pass0"}, []string{"pass1"}},
		{"other data offset", "b.img", "a.bk1", 1, nil, nil},
		{"other areas size", "d.img", "a.bk0", 1, nil, nil},
		{"LUKS2 backup over LUKS1", "l1.img", "a.bk1", 0, []string{"pass0"}, nil},
		{"LUKS1 backup over LUKS2", "a2.img", "l1.bk1", 0, []string{"pass0"}, nil},
		{"no header on the device", "zero.img", "a.bk1", 0, []string{"pass0"}, nil},
		{"short backup", "a.img", "short.bk", 1, nil, nil},
		{"truncated backup", "a.img", "trunc.bk", 1, nil, nil},
		{"primary only", "a.img", "primary.bk", 1, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dirs := [2]string{t.TempDir(), t.TempDir()}
			var res [2]result
			var imgs [2][]byte
			for i, p := range []string{cs, binPath} {
				copyFile(t, filepath.Join(src, tc.img), filepath.Join(dirs[i], tc.img))
				res[i] = runIn(t, dirs[i], p, "", "luksHeaderRestore", "-v", tc.img, "--header-backup-file", filepath.Join(src, tc.backup))
				var err error
				imgs[i], err = os.ReadFile(filepath.Join(dirs[i], tc.img))
				require.NoError(t, err)
			}
			require.Equal(t, tc.code, res[0].code, "cryptsetup: %s", res[0].stderr)
			assert.Equal(t, res[0], res[1], "same exit code and messages")
			assert.True(t, bytes.Equal(imgs[0], imgs[1]), "same image after both")
			for _, p := range tc.opens {
				r := runIn(t, dirs[1], cs, p+"\n", "open", "--test-passphrase", tc.img)
				assert.Equal(t, 0, r.code, "cryptsetup opens our result with %q: %s", p, r.stderr)
			}
			for _, p := range tc.refused {
				r := runIn(t, dirs[1], cs, p+"\n", "open", "--test-passphrase", tc.img)
				assert.Equal(t, 2, r.code, "%q is gone: %s", p, r.stderr)
			}
		})
	}
}

// TestLuks2UUIDAndIsLuksSideBySide: luksUUID --uuid on LUKS2 images (cryptsetup's and
// ours) writes the header bytes cryptsetup writes; luksUUID and isLuks answer as
// cryptsetup for every --type on LUKS2, LUKS1 and no header.
func TestLuks2UUIDAndIsLuksSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	src := t.TempDir()
	luks2HeaderImages(t, src)
	const newUUID = "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0"
	for _, tc := range []struct {
		img  string
		args []string
	}{
		{"a.img", []string{"luksUUID", "-v", "--uuid", newUUID}},
		{"g.img", []string{"luksUUID", "-v", "--uuid", newUUID}},
		{"a.img", []string{"luksUUID", "--uuid", "not-a-uuid"}},
		{"a.img", []string{"luksUUID", "--type", "luks1", "--uuid", newUUID}},
		{"l1.img", []string{"luksUUID", "--type", "luks2", "--uuid", newUUID}},
	} {
		dirs := [2]string{t.TempDir(), t.TempDir()}
		var res [2]result
		var hdrs [2][]byte
		for i, p := range []string{cs, binPath} {
			copyFile(t, filepath.Join(src, tc.img), filepath.Join(dirs[i], tc.img))
			res[i] = runIn(t, dirs[i], p, "", append(tc.args, tc.img)...)
			b, err := os.ReadFile(filepath.Join(dirs[i], tc.img))
			require.NoError(t, err)
			hdrs[i] = b[:64<<10]
		}
		assert.Equal(t, res[0], res[1], "%s %v", tc.img, tc.args)
		assert.True(t, bytes.Equal(hdrs[0], hdrs[1]), "%s %v: both header copies as cryptsetup writes them", tc.img, tc.args)
		if res[0].code == 0 {
			r := runIn(t, dirs[1], binPath, "", "luksUUID", tc.img)
			assert.Equal(t, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\n", r.stdout)
		}
	}
	for _, img := range []string{"a.img", "g.img", "l1.img", "zero.img", "missing.img"} {
		for _, typ := range [][]string{nil, {"--type", "luks"}, {"--type", "luks1"}, {"--type", "luks2"}, {"--type", "plain"}} {
			for _, verb := range []string{"isLuks", "luksUUID"} {
				args := append(append([]string{verb, "-v"}, typ...), img)
				want := runIn(t, src, cs, "", args...)
				got := runIn(t, src, binPath, "", args...)
				assert.Equal(t, want, got, "%v", args)
			}
		}
	}
}
