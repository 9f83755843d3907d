package luks

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBackupMatchesCryptsetup: our backup file is byte-identical to cryptsetup's
// luksHeaderBackup of the same image, with cryptsetup's size rule and mode 0400; each tool
// restores the other's backup.
func TestBackupMatchesCryptsetup(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		bits int
		size int64
	}{{128, 528384}, {256, 1052672}, {512, 2068480}} {
		t.Run(strconv.Itoa(tc.bits), func(t *testing.T) {
			dir := t.TempDir()
			img := newImage(t, dir, "b.img", 8<<20)
			f := openRW(t, img)
			cipher := "aes-cbc-essiv:sha256"
			if tc.bits == 512 {
				cipher = "aes-xts-plain64"
			}
			_, _, err := Format(ctx, f, []byte("pass"), FormatOptions{Cipher: cipher, KeySize: tc.bits, ForceIterations: 1000})
			require.NoError(t, err)
			ours := filepath.Join(dir, "ours.bak")
			require.NoError(t, BackupHeader(f, ours))
			theirs := filepath.Join(dir, "theirs.bak")
			mustCS(t, nil, "luksHeaderBackup", img, "--header-backup-file", theirs)
			ob, err := os.ReadFile(ours)
			require.NoError(t, err)
			tb, err := os.ReadFile(theirs)
			require.NoError(t, err)
			assert.Len(t, ob, int(tc.size))
			assert.Equal(t, tb, ob, "backup files identical")
			st, err := os.Stat(ours)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o400), st.Mode().Perm())
			assert.ErrorIs(t, BackupHeader(f, ours), ErrInvalidParameter, "O_EXCL: existing file refused")

			// Damage the header, restore cryptsetup's backup with our code.
			zero := make([]byte, HeaderSize)
			_, err = f.WriteAt(zero, 0)
			require.NoError(t, err)
			require.False(t, IsLUKS(f))
			require.NoError(t, RestoreHeader(f, theirs))
			_, _, _, err = Unlock(ctx, f, []byte("pass"), UnlockOptions{})
			require.NoError(t, err)
			// And cryptsetup restores ours.
			_, err = f.WriteAt(zero, 0)
			require.NoError(t, err)
			mustCS(t, nil, "luksHeaderRestore", "-q", img, "--header-backup-file", ours)
			testPass(t, img, writeKeyFile(t, dir, "k", []byte("pass")), 0, true)
		})
	}
}

func TestRestoreRefusesMismatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := newImage(t, dir, "a.img", 8<<20)
	b := newImage(t, dir, "b.img", 8<<20)
	fa, fb := openRW(t, a), openRW(t, b)
	_, _, err := Format(ctx, fa, []byte("p"), FormatOptions{KeySize: 256, ForceIterations: 1000})
	require.NoError(t, err)
	_, _, err = Format(ctx, fb, []byte("p"), FormatOptions{KeySize: 512, ForceIterations: 1000})
	require.NoError(t, err)
	bak := filepath.Join(dir, "a.bak")
	require.NoError(t, BackupHeader(fa, bak))
	before := fileHash(t, b)
	err = RestoreHeader(fb, bak)
	require.ErrorIs(t, err, ErrInvalidParameter)
	assert.Contains(t, err.Error(), "key size differs")
	assert.Equal(t, before, fileHash(t, b), "device unchanged")
	assert.NotEqual(t, 0, runCS(t, nil, "luksHeaderRestore", "-q", b, "--header-backup-file", bak).code, "cryptsetup refuses too")

	// Not a backup at all.
	junk := filepath.Join(dir, "junk")
	require.NoError(t, os.WriteFile(junk, []byte(strings.Repeat("x", 5000)), 0o600))
	assert.ErrorIs(t, RestoreHeader(fb, junk), ErrNotLUKS)
	short := filepath.Join(dir, "short")
	raw, err := os.ReadFile(bak)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(short, raw[:8192], 0o600))
	assert.Error(t, RestoreHeader(fb, short), "truncated backup")
	assert.ErrorIs(t, RestoreHeader(fb, filepath.Join(dir, "missing")), ErrInvalidParameter)
	assert.Equal(t, before, fileHash(t, b), "device unchanged")
}

func TestUUIDWithCryptsetup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	img := newImage(t, dir, "u.img", 8<<20)
	f := openRW(t, img)
	h, _, err := Format(ctx, f, []byte("p"), FormatOptions{UUID: "0E6C6E56-4E8E-4554-95D7-8DC6342ABBD7", ForceIterations: 1000})
	require.NoError(t, err)
	assert.Equal(t, "0e6c6e56-4e8e-4554-95d7-8dc6342abbd7", h.UUID)
	assert.Equal(t, h.UUID+"\n", mustCS(t, nil, "luksUUID", img))
	require.NoError(t, SetUUID(f, "12345678-9abc-def0-1234-56789abcdef0"))
	assert.Equal(t, "12345678-9abc-def0-1234-56789abcdef0\n", mustCS(t, nil, "luksUUID", img))
	require.NoError(t, SetUUID(f, ""))
	h2, err := ReadHeader(f)
	require.NoError(t, err)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, h2.UUID)
	mustCS(t, nil, "luksUUID", "-q", "--uuid", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", img)
	h3, err := ReadHeader(f)
	require.NoError(t, err)
	assert.Equal(t, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", h3.UUID)
	_, _, _, err = Unlock(ctx, f, []byte("p"), UnlockOptions{})
	require.NoError(t, err)
	for _, bad := range []string{"x", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeeee", "aaaaaaaa_bbbb-cccc-dddd-eeeeeeeeeeee", "gaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"} {
		assert.ErrorIs(t, SetUUID(f, bad), ErrInvalidParameter, bad)
	}
}
