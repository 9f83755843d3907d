package luks

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/xts"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// openssl runs openssl enc on one block of data. The key is a throwaway test key of a
// temporary image (openssl enc only takes raw keys on the command line).
func openssl(t *testing.T, in []byte, args ...string) []byte {
	t.Helper()
	bin := testenv.LookPath(t, "openssl", "apt-get install openssl")
	cmd := exec.Command(bin, append([]string{"enc", "-nopad"}, args...)...)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	require.NoError(t, err, "openssl %v", args)
	return out
}

// TestVolumeIndependentDecrypt: data written through the userspace volume decrypts with
// independent implementations: golang.org/x/crypto/xts for XTS, the openssl command for CBC
// with ESSIV (IV computed by openssl in ECB mode) and plain64 IVs.
func TestVolumeIndependentDecrypt(t *testing.T) {
	ctx := context.Background()
	sectors := []int64{0, 1, 2, 777, 4095}
	for _, spec := range []struct {
		cipher string
		bits   int
	}{
		{"aes-xts-plain64", 512}, {"aes-xts-plain64", 256},
		{"aes-cbc-essiv:sha256", 256}, {"aes-cbc-essiv:sha256", 128}, {"aes-cbc-plain64", 256},
	} {
		t.Run(fmt.Sprintf("%s-%d", spec.cipher, spec.bits), func(t *testing.T) {
			dir := t.TempDir()
			img := newImage(t, dir, "v.img", 4<<20)
			f := openRW(t, img)
			h, vk, err := Format(ctx, f, []byte("p"), FormatOptions{Cipher: spec.cipher, KeySize: spec.bits, ForceIterations: 1000})
			require.NoError(t, err)
			v, err := NewVolume(f, h, vk)
			require.NoError(t, err)
			defer v.Close()
			plain := make([]byte, 512)
			for _, s := range sectors {
				for i := range plain {
					plain[i] = byte(int64(i)*7 + s)
				}
				_, err := v.WriteAt(plain, s*512)
				require.NoError(t, err)
				ct := make([]byte, 512)
				_, err = f.ReadAt(ct, h.PayloadOffsetBytes()+s*512)
				require.NoError(t, err)
				require.NotEqual(t, plain, ct, "ciphertext on disk")
				key := vk.Bytes()
				var got []byte
				switch spec.cipher {
				case "aes-xts-plain64":
					c, err := xts.NewCipher(aes.NewCipher, key)
					require.NoError(t, err)
					got = make([]byte, 512)
					c.Decrypt(got, ct, uint64(s))
				case "aes-cbc-essiv:sha256":
					salt := sha256.Sum256(key)
					var blk [16]byte
					binary.LittleEndian.PutUint64(blk[:], uint64(s))
					iv := openssl(t, blk[:], "-aes-256-ecb", "-K", hex.EncodeToString(salt[:]))
					got = openssl(t, ct, "-d", fmt.Sprintf("-aes-%d-cbc", len(key)*8), "-K", hex.EncodeToString(key), "-iv", hex.EncodeToString(iv))
				case "aes-cbc-plain64":
					var iv [16]byte
					binary.LittleEndian.PutUint64(iv[:], uint64(s))
					got = openssl(t, ct, "-d", "-aes-256-cbc", "-K", hex.EncodeToString(key), "-iv", hex.EncodeToString(iv[:]))
				}
				assert.Equal(t, plain, got, "sector %d", s)
			}
		})
	}
}

// TestVolumeUnaligned: random unaligned reads and writes behave like a plain byte array.
func TestVolumeUnaligned(t *testing.T) {
	ctx := context.Background()
	for _, cipher := range []string{"aes-xts-plain64", "aes-cbc-essiv:sha256", "serpent-cbc-plain64", "twofish-xts-plain64", "aes-lrw-benbi"} {
		t.Run(cipher, func(t *testing.T) {
			d := &memDev{b: make([]byte, 6<<20)}
			h, vk, err := Format(ctx, d, []byte("p"), FormatOptions{Cipher: cipher, ForceIterations: 1000, KeySize: map[bool]int{true: 384}[cipher == "aes-lrw-benbi"]})
			require.NoError(t, err)
			v, err := NewVolume(d, h, vk)
			require.NoError(t, err)
			require.Equal(t, int64(len(d.b))-h.PayloadOffsetBytes(), v.Size())
			model := make([]byte, v.Size())
			// The fresh payload decrypts to something; make the model agree first.
			_, err = v.ReadAt(model, 0)
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := 0; i < 200; i++ {
				off := rng.Int64N(v.Size())
				n := rng.IntN(3000)
				if rng.IntN(10) == 0 {
					n = rng.IntN(volumeChunk * 2)
				}
				buf := make([]byte, n)
				if rng.IntN(2) == 0 {
					for j := range buf {
						buf[j] = byte(rng.Uint32())
					}
					w, err := v.WriteAt(buf, off)
					end := min(off+int64(n), v.Size())
					copy(model[off:end], buf)
					assert.Equal(t, int(end-off), w)
					if off+int64(n) > v.Size() {
						assert.ErrorIs(t, err, io.ErrShortWrite)
					} else {
						require.NoError(t, err)
					}
				} else {
					r, err := v.ReadAt(buf, off)
					end := min(off+int64(n), v.Size())
					assert.Equal(t, int(end-off), r)
					assert.Equal(t, model[off:end], buf[:r])
					if off+int64(n) > v.Size() {
						assert.Equal(t, io.EOF, err)
					} else {
						require.NoError(t, err)
					}
				}
			}
			got := make([]byte, v.Size())
			_, err = v.ReadAt(got, 0)
			require.NoError(t, err)
			require.Equal(t, model, got)
			// The header is untouched by payload writes.
			_, _, _, err = Unlock(ctx, d, []byte("p"), UnlockOptions{})
			require.NoError(t, err)
		})
	}
}

func TestVolumeBoundsAndClose(t *testing.T) {
	d, h, vk := formatted(t, FormatOptions{})
	v, err := NewVolume(d, h, vk)
	require.NoError(t, err)
	n, err := v.ReadAt(make([]byte, 10), v.Size())
	assert.Equal(t, 0, n)
	assert.Equal(t, io.EOF, err)
	n, err = v.ReadAt(nil, v.Size())
	assert.Equal(t, 0, n)
	assert.NoError(t, err)
	n, err = v.ReadAt(make([]byte, 10), v.Size()-4)
	assert.Equal(t, 4, n)
	assert.Equal(t, io.EOF, err)
	_, err = v.ReadAt(make([]byte, 1), -1)
	assert.ErrorIs(t, err, ErrInvalidParameter)
	n, err = v.WriteAt(make([]byte, 10), v.Size()+1)
	assert.Equal(t, 0, n)
	assert.ErrorIs(t, err, io.ErrShortWrite)
	_, err = v.WriteAt([]byte{1}, -5)
	assert.ErrorIs(t, err, ErrInvalidParameter)
	require.NoError(t, v.Close())
	require.NoError(t, v.Close())
	_, err = v.ReadAt(make([]byte, 1), 0)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = v.WriteAt(make([]byte, 1), 0)
	assert.ErrorIs(t, err, ErrClosed)

	wrong := NewVolumeKey(make([]byte, vk.Len()))
	_, err = NewVolume(d, h, wrong)
	assert.ErrorIs(t, err, ErrVolumeKeyMismatch)
	_, err = NewVolume(d, h, NewVolumeKey([]byte{1, 2}))
	assert.ErrorIs(t, err, ErrVolumeKeyMismatch)
	_, err = NewVolume(&memDev{b: d.b[:1024]}, h, vk)
	assert.ErrorIs(t, err, ErrDeviceTooSmall)
}

func TestVolumeKeyRedacted(t *testing.T) {
	vk := NewVolumeKey([]byte{0xde, 0xad, 0xbe, 0xef})
	for _, s := range []string{vk.String(), fmtAll(vk)} {
		assert.NotContains(t, s, "de")
		assert.NotContains(t, s, "222")
		assert.Contains(t, s, "redacted")
	}
	vk.Wipe()
	assert.Equal(t, 0, vk.Len())
}
