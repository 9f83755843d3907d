package luks

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// BackupHeader2 writes cryptsetup's LUKS2 backup (same bytes as cryptsetup
// luksHeaderBackup); RestoreHeader2 puts it back over a changed header, and refuses a
// device with another layout without writing; SetUUIDLUKS2 changes both copies as
// cryptsetup luksUUID --uuid does, byte for byte, foreign tokens kept.
func TestBackupRestoreUUIDLUKS2(t *testing.T) {
	dir := t.TempDir()
	img := luks2Image(t, dir, "a.img")
	ours, theirs := filepath.Join(dir, "ours.bk"), filepath.Join(dir, "theirs.bk")
	f, err := os.Open(img)
	require.NoError(t, err)
	require.NoError(t, BackupHeader2(f, ours))
	f.Close()
	mustCS(t, nil, "luksHeaderBackup", img, "--header-backup-file", theirs)
	a, err := os.ReadFile(ours)
	require.NoError(t, err)
	b, err := os.ReadFile(theirs)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(a, b), "backup files differ")
	f, _ = os.Open(img)
	assert.Error(t, BackupHeader2(f, ours), "an existing backup file is never overwritten")
	f.Close()

	// The header changes (slot 1 killed), then the backup comes back.
	changed := copyImage(t, img, filepath.Join(dir, "changed.img"))
	mustCS(t, []byte("pass0"), "luksKillSlot", "-q", changed, "1")
	require.False(t, csOpens(t, changed, "pass1"))
	w, err := os.OpenFile(changed, os.O_RDWR, 0)
	require.NoError(t, err)
	require.NoError(t, RestoreHeader2(w, ours))
	w.Close()
	assert.True(t, csOpens(t, changed, "pass1"), "the restored header has slot 1 again")
	assert.Equal(t, headerBytes(t, img), headerBytes(t, changed))

	// Another data offset: refused, nothing written.
	other := newImage(t, dir, "other.img", 32<<20)
	mustCS(t, []byte("pass0"), "luksFormat", "--type", "luks2", "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
		"--luks2-metadata-size", "32k", "--luks2-keyslots-size", "2m", "--key-file", "-", other)
	before, err := os.ReadFile(other)
	require.NoError(t, err)
	w, err = os.OpenFile(other, os.O_RDWR, 0)
	require.NoError(t, err)
	err = RestoreHeader2(w, ours)
	w.Close()
	assert.True(t, errors.Is(err, ErrInvalidParameter), "%v", err)
	after, _ := os.ReadFile(other)
	assert.True(t, bytes.Equal(before, after), "nothing written")

	// luksUUID --uuid, both tools on copies.
	const uuid = "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0"
	u1, u2 := copyImage(t, img, filepath.Join(dir, "u1.img")), copyImage(t, img, filepath.Join(dir, "u2.img"))
	mustCS(t, nil, "luksUUID", "-q", "--uuid", uuid, u1)
	w, err = os.OpenFile(u2, os.O_RDWR, 0)
	require.NoError(t, err)
	require.NoError(t, SetUUIDLUKS2(w, uuid, nil))
	assert.Error(t, SetUUIDLUKS2(w, "not-a-uuid", nil))
	w.Close()
	assert.Equal(t, headerBytes(t, u1), headerBytes(t, u2))
}

// Check and MemoryLimit apply libcryptsetup's PBKDF limits to a new slot.
func TestLUKS2KeyslotOptionsCheck(t *testing.T) {
	assert.NoError(t, LUKS2KeyslotOptions{}.Check())
	assert.NoError(t, LUKS2KeyslotOptions{PBKDF: KDFPBKDF2, ForceIterations: 1000}.Check())
	for _, o := range []LUKS2KeyslotOptions{
		{PBKDF: KDFPBKDF2, ForceIterations: 999},
		{PBKDF: KDFArgon2id, ForceIterations: 3},
		{PBKDF: KDFArgon2i, ForceIterations: 4, Memory: 31},
		{Memory: 4194305},
		{PBKDF: "scrypt"},
	} {
		var oe *OptionError
		assert.True(t, errors.As(o.Check(), &oe) && oe.PBKDF, "%+v", o)
	}
	assert.Equal(t, uint32(0), LUKS2KeyslotOptions{PBKDF: KDFPBKDF2}.MemoryLimit())
	assert.Equal(t, uint32(64), LUKS2KeyslotOptions{Memory: 64}.MemoryLimit())
	assert.LessOrEqual(t, LUKS2KeyslotOptions{}.MemoryLimit(), uint32(1<<20))
}
