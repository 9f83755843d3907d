package luks

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sizedDev is a fixed-size device that cannot grow, like a block device.
type sizedDev struct{ b []byte }

func (d *sizedDev) Size() int64 { return int64(len(d.b)) }
func (d *sizedDev) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(d.b).ReadAt(p, off)
}
func (d *sizedDev) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(d.b)) {
		return 0, os.ErrInvalid
	}
	return copy(d.b[off:], p), nil
}

// TestFormatTooSmall: a device with no room for the header and one payload sector is
// refused before a byte is written (a 0-byte file used to grow to 2 MiB with an empty payload).
func TestFormatTooSmall(t *testing.T) {
	const payload = 4096 * SectorSize // aes-xts-plain64, 512-bit key, 1 MiB alignment
	ctx := context.Background()
	opts := FormatOptions{ForceIterations: 1000}
	fill := func(n int) []byte { return bytes.Repeat([]byte{0xa5}, n) }
	for _, tc := range []struct {
		name    string
		size    int
		allow   bool
		wantErr bool
	}{
		{"empty", 0, false, true},
		{"tiny", 100, false, true},
		{"header only", payload, false, true},
		{"one byte short of a data sector", payload + SectorSize - 1, false, true},
		{"one data sector", payload + SectorSize, false, false},
		{"AllowNoPayload empty", 0, true, true},
		{"AllowNoPayload below a sector", SectorSize - 1, true, true},
		{"AllowNoPayload one sector", SectorSize, true, false},
	} {
		t.Run("file "+tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "img")
			require.NoError(t, os.WriteFile(p, fill(tc.size), 0o600))
			f := openRW(t, p)
			o := opts
			o.AllowNoPayload = tc.allow
			_, vk, err := Format(ctx, f, []byte("pw"), o)
			got, rerr := os.ReadFile(p)
			require.NoError(t, rerr)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrDeviceTooSmall)
				assert.Equal(t, fill(tc.size), got, "nothing written")
				return
			}
			require.NoError(t, err)
			vk.Wipe()
			assert.GreaterOrEqual(t, len(got), payload)
			assert.True(t, IsLUKS(bytes.NewReader(got)))
		})
		t.Run("fixed-size "+tc.name, func(t *testing.T) {
			d := &sizedDev{b: fill(tc.size)}
			o := opts
			o.AllowNoPayload = tc.allow
			_, vk, err := Format(ctx, d, []byte("pw"), o)
			if tc.wantErr || tc.allow {
				// A fixed-size device cannot grow: even with AllowNoPayload it must hold the header.
				require.ErrorIs(t, err, ErrDeviceTooSmall)
				assert.Equal(t, fill(tc.size), d.b, "nothing written")
				return
			}
			require.NoError(t, err)
			vk.Wipe()
		})
	}
}
