package luks

import (
	"context"
	"crypto/aes"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xxts "golang.org/x/crypto/xts"
)

// TestVolume2IndependentXTS: data written through the userspace Volume of cryptsetup-made
// LUKS2 images (sector 512 and 4096, detached header) decrypts with golang.org/x/crypto/xts
// and the volume key cryptsetup dumps, one XTS unit per segment sector with the IV in
// 512-byte sectors; unaligned writes keep the bytes around them.
func TestVolume2IndependentXTS(t *testing.T) {
	cryptsetupBin(t)
	for _, c := range []l2Config{
		{name: "xts-4096", format: []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--sector-size", "4096"}},
		{name: "xts-512", format: []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--sector-size", "512", "--key-size", "256"}},
		{name: "xts-4096-detached", format: []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--sector-size", "4096"}, detached: true},
		{name: "xts-4096-ivtweak", format: []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--sector-size", "4096"}, extra: setIVTweak(987654321)},
		{name: "xts-512-ivtweak", format: []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--sector-size", "512"}, extra: setIVTweak(1<<40 + 3)},
	} {
		t.Run(c.name, func(t *testing.T) {
			im := makeL2(t, c)
			hf, err := os.Open(im.hdr)
			require.NoError(t, err)
			defer hf.Close()
			h, vk, _, err := UnlockAny(context.Background(), hf, []byte("pass0"), UnlockOptions{})
			require.NoError(t, err)
			seg, err := h.DataSegment()
			require.NoError(t, err)
			data := openRW(t, im.img)
			v, err := NewVolume(data, h, vk)
			require.NoError(t, err)
			defer v.Close()
			fi, _ := data.Stat()
			assert.Equal(t, (fi.Size()-seg.Offset)/int64(seg.SectorSize)*int64(seg.SectorSize), v.Size())

			// Large enough for the parallel whole-sector path (several runs), with partial
			// sectors at both ends.
			payload := make([]byte, 300<<10+3*4096+100)
			rand.NewChaCha8([32]byte{1}).Read(payload)
			const at = 4096*5 + 777 // unaligned in a 4096-byte sector
			_, err = v.WriteAt(payload, at)
			require.NoError(t, err)
			got := make([]byte, len(payload))
			_, err = v.ReadAt(got, at)
			require.NoError(t, err)
			assert.Equal(t, payload, got)

			ref, err := xxts.NewCipher(aes.NewCipher, im.volumeKey)
			require.NoError(t, err)
			ss := int64(seg.SectorSize)
			first, last := int64(at)/ss, (int64(at)+int64(len(payload))+ss-1)/ss
			raw := make([]byte, (last-first)*ss)
			_, err = data.ReadAt(raw, seg.Offset+first*ss)
			require.NoError(t, err)
			plain := make([]byte, len(raw))
			for k := int64(0); k < last-first; k++ {
				ref.Decrypt(plain[k*ss:(k+1)*ss], raw[k*ss:(k+1)*ss], seg.IVTweak+uint64((first+k)*ss/512))
			}
			skip := int64(at) - first*ss
			assert.Equal(t, payload, plain[skip:skip+int64(len(payload))], "independent XTS decryption")
			// The bytes of the first sector before the write are the Volume's view of the
			// untouched (zero) ciphertext, the same through both implementations.
			before := make([]byte, skip)
			_, err = v.ReadAt(before, first*ss)
			require.NoError(t, err)
			assert.Equal(t, plain[:skip], before)

			if c.extra != nil {
				assert.NotZero(t, seg.IVTweak)
			}
			_, err = NewVolume(data, h, NewVolumeKey(make([]byte, vk.Len())))
			assert.ErrorIs(t, err, ErrVolumeKeyMismatch)
			vk.Wipe()
		})
	}
}

// setIVTweak rewrites segment 0's iv_tweak in both header copies (cryptsetup cannot set one
// at format time; reencryption of a shifted device writes it) and reseals them.
func setIVTweak(tweak uint64) func(t *testing.T, img, hdr, dir string) {
	return func(t *testing.T, img, hdr, dir string) {
		b, err := os.ReadFile(hdr)
		require.NoError(t, err)
		im := newL2Image(b)
		im.edit(t, func(m map[string]any) { obj(m, "segments", "0")["iv_tweak"] = strconv.FormatUint(tweak, 10) })
		im.sealBoth()
		require.NoError(t, os.WriteFile(hdr, im.b, 0o600))
		mustCS(t, nil, "luksDump", hdr) // cryptsetup accepts the header
	}
}
