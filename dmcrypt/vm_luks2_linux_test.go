//go:build linux

package dmcrypt

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/dmcrypt/internal/dm"
	"github.com/cloudluks/cloudluks/internal/vmtest"
	"github.com/cloudluks/cloudluks/luks"
)

// userspaceRW2 is userspaceRW for either header version (luks.UnlockAny).
func userspaceRW2(t *testing.T, path string, pass []byte, off int64, data []byte, n int) []byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	h, vk, _, err := luks.UnlockAny(context.Background(), f, pass, luks.UnlockOptions{})
	require.NoError(t, err)
	defer vk.Wipe()
	v, err := luks.NewVolume(f, h, vk)
	require.NoError(t, err)
	defer v.Close()
	if data != nil {
		_, err = v.WriteAt(data, off)
		require.NoError(t, err)
		require.NoError(t, f.Sync())
		return nil
	}
	buf := make([]byte, n)
	_, err = v.ReadAt(buf, off)
	require.NoError(t, err)
	return buf
}

// tableWithoutDevice is `dmsetup table --showkeys NAME` with the backing device field
// (a loop device's major:minor, which differs between two attachments) blanked.
func tableWithoutDevice(t *testing.T, name string) string {
	t.Helper()
	f := strings.Fields(mustRun(t, nil, "dmsetup", "table", "--showkeys", name))
	require.GreaterOrEqual(t, len(f), 8, f)
	f[6] = "DEV"
	return strings.Join(f, " ")
}

// TestVMLUKS2 boots once and checks LUKS2 mappings against cryptsetup 2.6.1 and the
// kernel, for a 4096-byte-sector image with a persistent flag and a 512-byte-sector one:
// cryptsetup's mapping and ours load the same table (dmsetup table --showkeys: the same key
// reference in the keyring, sector_size, flags), the dm uuid is CRYPT-LUKS2-…, `cryptsetup
// status` of our mapping is our text (type: LUKS2), and data written through any of
// cryptsetup's mapping, ours and luks.Volume reads back through the other two.
func TestVMLUKS2(t *testing.T) {
	opts := vmtest.Options{Tools: []string{"cryptsetup", "dmsetup"}, Timeout: 6 * time.Minute}
	if !vmtest.InVM() {
		bin := buildCLI(t)
		opts.Files = []string{bin}
		opts.Env = map[string]string{cliEnv: bin}
	}
	if !vmtest.Run(t, opts) {
		return
	}
	bin := os.Getenv(cliEnv)
	require.NotEmpty(t, bin)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		format []string
	}{
		{"sector4096-argon2id", []string{"--pbkdf", "argon2id", "--pbkdf-memory", "32", "--pbkdf-force-iterations", "4", "--sector-size", "4096"}},
		{"sector512-pbkdf2-cbc", []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--sector-size", "512", "-c", "aes-cbc-essiv:sha256", "-s", "256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pass := []byte("correct horse " + tc.name)
			img := newImage(t, 24<<20)
			mustRun(t, pass, "cryptsetup", append(append([]string{"luksFormat", "--type", "luks2", "-q"}, tc.format...), "--key-file", "-", img)...)

			// cryptsetup's mapping; --persistent stores allow-discards in config.flags.
			mustRun(t, pass, "cryptsetup", "open", "--persistent", "--allow-discards", "--key-file", "-", img, "theirs")
			theirs := tableWithoutDevice(t, "theirs")
			t.Logf("cryptsetup table: %s", strings.Replace(theirs, string(pass), "", -1))
			d1 := randBytes(t, 64<<10)
			devRW(t, "/dev/mapper/theirs", 8192, d1, 0)
			assert.Equal(t, mustRun(t, nil, "cryptsetup", "status", "theirs"), ourStatusText(t, "theirs"), "our status of cryptsetup's mapping")
			mustRun(t, nil, "cryptsetup", "close", "theirs")

			f, err := os.Open(img)
			require.NoError(t, err)
			h, err := luks.ReadHeader2(f)
			f.Close()
			require.NoError(t, err)
			assert.Equal(t, []string{"allow-discards"}, h.Config.Flags)

			m, err := Open(ctx, img, "ours", pass, OpenOptions{})
			require.NoError(t, err)
			assert.Equal(t, dm.LUKS2UUID(h.UUID, "ours"), m.UUID)
			assert.True(t, strings.HasPrefix(m.UUID, "CRYPT-LUKS2-"+strings.ReplaceAll(h.UUID, "-", "")+"-ours"), m.UUID)
			assert.Equal(t, theirs, tableWithoutDevice(t, "ours"), "same table as cryptsetup's")
			st, err := Status("ours")
			require.NoError(t, err)
			assert.Equal(t, "LUKS2", st.Type)
			assert.True(t, st.KeyInKeyring)
			assert.True(t, st.AllowDiscards, "persistent flag applied")
			ours := ourStatusText(t, "ours")
			assert.Contains(t, ours, "  type:    LUKS2\n")
			assert.Equal(t, mustRun(t, nil, "cryptsetup", "status", "ours"), ours, "cryptsetup status of our mapping")
			assert.Equal(t, d1, devRW(t, m.Path, 8192, nil, len(d1)), "we read cryptsetup's data")
			d2 := randBytes(t, 96<<10)
			devRW(t, m.Path, 1<<20, d2, 0)
			require.NoError(t, Close(ctx, "ours"))
			assertNothingLeft(t)

			assert.Equal(t, d1, userspaceRW2(t, img, pass, 8192, nil, len(d1)), "luks.Volume reads cryptsetup's data")
			assert.Equal(t, d2, userspaceRW2(t, img, pass, 1<<20, nil, len(d2)), "luks.Volume reads our mapping's data")
			d3 := randBytes(t, 40<<10)
			userspaceRW2(t, img, pass, 3<<20+1000, d3, 0)

			mustRun(t, pass, "cryptsetup", "open", "--key-file", "-", img, "theirs")
			assert.Equal(t, d2, devRW(t, "/dev/mapper/theirs", 1<<20, nil, len(d2)), "cryptsetup reads our mapping's data")
			assert.Equal(t, d3, devRW(t, "/dev/mapper/theirs", 3<<20+1000, nil, len(d3)), "cryptsetup reads luks.Volume's data")
			mustRun(t, nil, "cryptsetup", "close", "theirs")
			assertNothingLeft(t)

			// The gocryptsetup binary maps the same image: the same table and status as
			// cryptsetup's, then -v open --test-passphrase prints what cryptsetup prints.
			keyFile := filepath.Join(t.TempDir(), "key")
			require.NoError(t, os.WriteFile(keyFile, pass, 0o600))
			g := run(t, nil, bin, "open", "--key-file", keyFile, img, "cli")
			require.Equal(t, 0, g.code, g.stderr)
			assert.Equal(t, theirs, tableWithoutDevice(t, "cli"), "gocryptsetup's table")
			gs, cs := run(t, nil, bin, "status", "cli"), run(t, nil, "cryptsetup", "status", "cli")
			assert.Equal(t, cs.stdout, gs.stdout)
			assert.Contains(t, gs.stdout, "  type:    LUKS2\n")
			assert.Equal(t, d2, devRW(t, "/dev/mapper/cli", 1<<20, nil, len(d2)))
			require.Equal(t, 0, run(t, nil, bin, "close", "cli").code)
			assertNothingLeft(t)
			g, c := run(t, nil, bin, "-v", "open", "--test-passphrase", "--key-file", keyFile, img), run(t, nil, "cryptsetup", "-v", "open", "--test-passphrase", "--key-file", keyFile, img)
			assert.Equal(t, c.code, g.code)
			assert.Equal(t, c.stdout, g.stdout)
			assert.Equal(t, c.stderr, g.stderr)
		})
	}
}
