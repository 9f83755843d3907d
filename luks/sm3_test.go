package luks

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/luks/sector"
)

// TestSM3TwoWayWithCryptsetup: volumes with --hash sm3 (PBKDF2, AF, digest; the LUKS1
// header hash) made by cryptsetup 2.6.1 unlock here to cryptsetup's volume key, and
// volumes made here unlock in cryptsetup, which reports the same volume key. Without an SM3
// implementation the first half fails with ErrUnsupportedHash.
func TestSM3TwoWayWithCryptsetup(t *testing.T) {
	cryptsetupBin(t)
	ctx := context.Background()
	pass := []byte("pass-sm3")
	for _, typ := range []string{"luks1", "luks2"} {
		t.Run("cryptsetup made "+typ, func(t *testing.T) {
			dir := t.TempDir()
			img := newImage(t, dir, "cs.img", 20<<20)
			mustCS(t, pass, "luksFormat", "--type", typ, "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
				"--hash", "sm3", "--key-file", "-", img)
			want := csVolumeKey(t, img, pass)
			f, err := os.Open(img)
			require.NoError(t, err)
			defer f.Close()
			var got []byte
			if typ == "luks1" {
				h, vk, _, err := Unlock(ctx, f, pass, UnlockOptions{})
				require.NoError(t, err)
				assert.Equal(t, "sm3", h.HashSpec)
				got = vk.Bytes()
			} else {
				_, vk, _, err := Unlock2(ctx, f, pass, UnlockOptions{})
				require.NoError(t, err)
				got = vk.Bytes()
			}
			assert.Equal(t, want, got)
			_, _, _, err = UnlockAny(ctx, f, []byte("wrong"), UnlockOptions{})
			assert.ErrorIs(t, err, ErrWrongPassphrase)
		})
	}
	// cryptsetup encrypts a LUKS1 key slot in userspace, ESSIV salt from OpenSSL's sm3: the
	// slot opening here checks ESSIV with sm3 too.
	t.Run("cryptsetup made luks1 aes-cbc-essiv:sm3", func(t *testing.T) {
		dir := t.TempDir()
		img := newImage(t, dir, "essiv.img", 20<<20)
		mustCS(t, pass, "luksFormat", "--type", "luks1", "-q", "-c", "aes-cbc-essiv:sm3", "-s", "256",
			"--pbkdf-force-iterations", "1000", "--hash", "sm3", "--key-file", "-", img)
		f, err := os.Open(img)
		require.NoError(t, err)
		defer f.Close()
		_, vk, _, err := Unlock(ctx, f, pass, UnlockOptions{})
		require.NoError(t, err)
		assert.Equal(t, csVolumeKey(t, img, pass), vk.Bytes())
		vk.Wipe()
	})
	t.Run("made here luks1", func(t *testing.T) {
		dir := t.TempDir()
		img := newImage(t, dir, "go.img", 20<<20)
		f := openRW(t, img)
		_, vk, err := Format(ctx, f, pass, FormatOptions{Hash: "sm3", ForceIterations: 1000})
		require.NoError(t, err)
		defer vk.Wipe()
		assert.Contains(t, mustCS(t, nil, "luksDump", img), "Hash spec:     \tsm3\n")
		assert.Equal(t, vk.Bytes(), csVolumeKey(t, img, pass))
		assert.Equal(t, 2, runCS(t, []byte("wrong"), "open", "--test-passphrase", "--key-file", "-", img).code)
	})
	t.Run("made here luks2", func(t *testing.T) {
		dir := t.TempDir()
		img := newImage(t, dir, "go.img", 20<<20)
		f := openRW(t, img)
		_, vk, err := FormatLUKS2(ctx, f, pass, LUKS2FormatOptions{Hash: "sm3", PBKDF: "pbkdf2", ForceIterations: 1000})
		require.NoError(t, err)
		defer vk.Wipe()
		dump := mustCS(t, nil, "luksDump", img)
		assert.Contains(t, dump, "\tAF hash:    sm3\n")
		assert.Contains(t, dump, "\tHash:       sm3\n")
		assert.Equal(t, vk.Bytes(), csVolumeKey(t, img, pass))
		assert.Equal(t, 2, runCS(t, []byte("wrong"), "open", "--test-passphrase", "--key-file", "-", img).code)
	})
}

// BenchmarkPBKDF2SM3 reports PBKDF2-HMAC-SM3 iterations per CPU second, the figure
// `cryptsetup benchmark --pbkdf pbkdf2 --hash sm3` prints.
func BenchmarkPBKDF2SM3(b *testing.B) {
	const iter = 1 << 16
	nh, err := sector.NewHashLUKS2("sm3")
	if err != nil {
		b.Fatal(err)
	}
	lockThread()
	defer unlockThread()
	var cpu time.Duration
	for b.Loop() {
		el, err := timePBKDF2(context.Background(), nh, iter, 32)
		if err != nil {
			b.Fatal(err)
		}
		cpu += el
	}
	b.ReportMetric(float64(iter)*float64(b.N)/cpu.Seconds(), "iter/cpu-s")
}
