package luks

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadInputFiles: every operation on a file that is not a usable LUKS1 header fails with
// a clear error, never panics or hangs, and leaves the file unchanged.
func TestBadInputFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	valid := func() []byte {
		d, _, _ := formatted(t, FormatOptions{})
		return d.b
	}()
	rnd := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{7}).Read(rnd)
	luks2 := newImage(t, dir, "luks2.img", 16<<20)
	mustCS(t, nil, "luksFormat", "--type", "luks2", "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", luks2, writeKeyFile(t, dir, "k", []byte("p")))

	cases := []struct {
		name string
		path string
		want error
	}{
		{"empty", write(t, dir, "empty", nil), ErrNotLUKS},
		{"tiny", write(t, dir, "tiny", []byte("LUKS")), ErrNotLUKS},
		{"truncated in fields", write(t, dir, "trunc500", valid[:500]), ErrNotLUKS},
		{"truncated in padding", write(t, dir, "trunc1000", valid[:1000]), ErrNotLUKS},
		{"header only", write(t, dir, "hdronly", valid[:HeaderSize]), ErrDeviceTooSmall},
		{"truncated key material", write(t, dir, "trunckm", valid[:1<<20]), ErrDeviceTooSmall},
		{"random bytes", write(t, dir, "random", rnd), ErrNotLUKS},
		{"zeros", write(t, dir, "zeros", make([]byte, 1<<20)), ErrNotLUKS},
		{"LUKS2", luks2, ErrUnsupportedVersion},
		{"directory", dir, ErrNotLUKS},
		{"/dev/null", "/dev/null", ErrNotLUKS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before [32]byte
			fi, err := os.Stat(tc.path)
			require.NoError(t, err)
			regular := fi.Mode().IsRegular()
			if regular {
				before = fileHash(t, tc.path)
			}
			flag := os.O_RDWR
			if !regular {
				flag = os.O_RDONLY
			}
			f, err := os.OpenFile(tc.path, flag, 0)
			require.NoError(t, err)
			defer f.Close()
			var rw ReadWriterAt = f

			_, err = ReadHeader(f)
			require.ErrorIs(t, err, tc.want)
			// A LUKS2 header is LUKS (IsLUKS loads both versions) but not LUKS1.
			assert.Equal(t, tc.name == "LUKS2", IsLUKS(f))
			assert.False(t, IsLUKSVersion(f, 1))
			_, _, _, err = Unlock(ctx, f, []byte("pass"), UnlockOptions{})
			assert.ErrorIs(t, err, tc.want)
			_, _, err = AddKey(ctx, rw, []byte("pass"), []byte("x"), opts1000(nil))
			assert.ErrorIs(t, err, tc.want)
			_, err = RemoveKey(ctx, rw, []byte("pass"), true)
			assert.ErrorIs(t, err, tc.want)
			_, _, err = ChangeKey(ctx, rw, []byte("pass"), []byte("x"), opts1000(nil))
			assert.ErrorIs(t, err, tc.want)
			assert.ErrorIs(t, KillSlot(rw, 0), tc.want)
			assert.ErrorIs(t, SetUUID(rw, ""), tc.want)
			bak := filepath.Join(t.TempDir(), "bak")
			assert.ErrorIs(t, BackupHeader(f, bak), tc.want)
			_, err = os.Stat(bak)
			assert.True(t, errors.Is(err, os.ErrNotExist), "no backup file left behind")
			if regular {
				assert.Equal(t, before, fileHash(t, tc.path), "file unchanged")
				// cryptsetup agrees that it is not a usable LUKS1 device (LUKS2 is, for it).
				if tc.name != "LUKS2" {
					assert.NotEqual(t, 0, runCS(t, nil, "isLuks", tc.path).code)
				}
			}
		})
	}
}

func write(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

// TestUnknownCipherAndHash: a header naming a cipher this package cannot run still dumps
// (as cryptsetup's luksDump does); unlocking fails clearly. An unknown hash fails to load.
func TestUnknownCipherAndHash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, h, _ := formatted(t, FormatOptions{})
	h.CipherName = "blowfish"
	require.NoError(t, writeHeader(d, h))
	p := write(t, dir, "bf.img", d.b)
	f := openRW(t, p)
	before := fileHash(t, p)
	got, err := ReadHeader(f)
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, got.Dump(&out, p))
	assert.Equal(t, mustCS(t, nil, "luksDump", p), out.String())
	_, _, _, err = Unlock(ctx, f, []byte("pass"), UnlockOptions{})
	require.ErrorIs(t, err, ErrUnsupportedCipher)
	assert.Contains(t, err.Error(), "blowfish")
	_, _, err = AddKey(ctx, f, []byte("pass"), []byte("x"), opts1000(nil))
	require.ErrorIs(t, err, ErrUnsupportedCipher)
	assert.Equal(t, before, fileHash(t, p))

	// A key size the cipher cannot take.
	h.CipherName = "aes"
	h.CipherMode = "cbc-plain64"
	require.NoError(t, writeHeader(d, h)) // 64-byte key with AES-CBC
	_, _, _, err = Unlock(ctx, d, []byte("pass"), UnlockOptions{})
	require.ErrorIs(t, err, ErrInvalidKeySize)

	for _, bad := range []FormatOptions{
		{Cipher: "blowfish-cbc-plain"}, {Hash: "md5"}, {Hash: "nosuch"}, {KeySize: 7}, {KeySize: 100},
		{Cipher: "aes-cbc-essiv:sha256", KeySize: 512}, {UUID: "bad"}, {Keyslot: Slot(9)}, {VolumeKey: []byte{1}},
		{ForceIterations: 999}, {AlignPayload: 1, Detached: true},
	} {
		dev := &memDev{b: make([]byte, 4<<20)}
		if bad.ForceIterations == 0 {
			bad.ForceIterations = 1000
		}
		_, _, err := Format(ctx, dev, []byte("p"), bad)
		assert.Error(t, err, "%+v", bad)
		assert.Equal(t, make([]byte, len(dev.b)), dev.b, "refused before any write: %+v", bad)
	}
	dev := &memDev{b: make([]byte, 1<<20)}
	_, _, err = Format(ctx, dev, []byte("p"), FormatOptions{ForceIterations: 1000})
	assert.ErrorIs(t, err, ErrDeviceTooSmall)
	assert.Equal(t, make([]byte, len(dev.b)), dev.b)
}
