//go:build linux

package dmcrypt

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/dmcrypt/internal/dm"
	"github.com/cloudluks/cloudluks/dmcrypt/internal/loop"
	"github.com/cloudluks/cloudluks/internal/vmtest"
)

// crossSpecs are the cipher specs checked both ways against cryptsetup and the kernel.
var crossSpecs = []string{
	"aes-xts-plain64",
	"aes-cbc-essiv:sha256",
	"aes-cbc-plain64",
	"twofish-xts-plain64",
	"serpent-cbc-essiv:sha256",
}

const nvmeSerial = "vol0123456789abcdef0"

// TestVMInterop boots the Debian cloud kernel once and, for every cipher spec, checks both
// directions against the real cryptsetup and the kernel against the userspace volume:
//   - an image formatted by the luks package, written through luks.Volume, mapped by Open:
//     the kernel reads the userspace data; data the kernel writes decrypts with luks.Volume;
//     `cryptsetup status` prints exactly our text; `cryptsetup close` removes our mapping and
//     the loop device goes; cryptsetup then opens the same image, reads our data, and our
//     Status/Close handle its mapping;
//   - an image formatted by cryptsetup, written through cryptsetup's mapping, opened by us
//     (reads cryptsetup's data), written by us, read back by cryptsetup and by luks.Volume.
//
// It also uses an emulated NVMe disk (how EBS volumes appear on Nitro instances) as the
// backing block device.
func TestVMInterop(t *testing.T) {
	if !vmtest.Run(t, vmtest.Options{
		Tools:   []string{"cryptsetup"},
		Disks:   []vmtest.Disk{{Path: vmtest.NewDiskImage(t, 16<<20), NVMeSerial: nvmeSerial}},
		Timeout: 6 * time.Minute,
	}) {
		return
	}
	ctx := context.Background()
	any := OpenOptions{}

	for _, spec := range crossSpecs {
		t.Run(spec, func(t *testing.T) {
			pass := []byte("correct horse " + spec)

			// Formatted by us.
			img := newImage(t, 6<<20)
			h := formatOurs(t, img, spec, pass)
			d1 := randBytes(t, 64<<10)
			userspaceRW(t, img, pass, 4096, d1, 0)

			m, err := Open(ctx, img, "ours", pass, any)
			require.NoError(t, err)
			assert.Equal(t, "/dev/mapper/ours", m.Path)
			assert.True(t, strings.HasPrefix(m.Device, "/dev/loop"), m.Device)
			assert.Equal(t, img, m.BackingFile)
			assert.Equal(t, 0, m.Keyslot)
			assert.Equal(t, dm.LUKS1UUID(h.UUID, "ours"), m.UUID)
			found, err := loop.Find(img)
			require.NoError(t, err)
			assert.Equal(t, m.Device, found)

			assert.Equal(t, d1, devRW(t, m.Path, 4096, nil, len(d1)), "kernel reads what userspace wrote")
			d2 := randBytes(t, 96<<10)
			devRW(t, m.Path, 1<<20, d2, 0)

			st, err := Status("ours")
			require.NoError(t, err)
			assert.Equal(t, "LUKS1", st.Type)
			assert.Equal(t, spec, st.Cipher)
			assert.Equal(t, keyBitsFor(spec)/8, st.KeySize)
			assert.Equal(t, uint64(h.PayloadOffset), st.Offset)
			assert.Equal(t, img, st.Loop)
			ours := ourStatusText(t, "ours")
			assert.Equal(t, mustRun(t, nil, "cryptsetup", "status", "ours"), ours, "cryptsetup status of our mapping")
			t.Logf("status:\n%s", ours)

			mustRun(t, nil, "cryptsetup", "close", "ours")
			assertNothingLeft(t)
			assert.Equal(t, d2, userspaceRW(t, img, pass, 1<<20, nil, len(d2)), "userspace reads what the kernel wrote")

			mustRun(t, pass, "cryptsetup", "open", "--type", "luks1", "--key-file", "-", img, "theirs")
			assert.Equal(t, d1, devRW(t, "/dev/mapper/theirs", 4096, nil, len(d1)), "cryptsetup reads our data")
			assert.Equal(t, mustRun(t, nil, "cryptsetup", "status", "theirs"), ourStatusText(t, "theirs"), "our status of cryptsetup's mapping")
			require.NoError(t, Close(ctx, "theirs"))
			assertNothingLeft(t)

			// Formatted by cryptsetup.
			img2 := newImage(t, 6<<20)
			formatCryptsetup(t, img2, spec, pass)
			d3 := randBytes(t, 64<<10)
			mustRun(t, pass, "cryptsetup", "open", "--key-file", "-", img2, "theirs")
			devRW(t, "/dev/mapper/theirs", 8192, d3, 0)
			mustRun(t, nil, "cryptsetup", "close", "theirs")
			assertNothingLeft(t)

			m, err = Open(ctx, img2, "ours", pass, any)
			require.NoError(t, err)
			assert.Equal(t, d3, devRW(t, m.Path, 8192, nil, len(d3)), "we read cryptsetup's data")
			d4 := randBytes(t, 32<<10)
			devRW(t, m.Path, 2<<20, d4, 0)
			assert.Equal(t, mustRun(t, nil, "cryptsetup", "status", "ours"), ourStatusText(t, "ours"))
			require.NoError(t, Close(ctx, "ours"))
			assertNothingLeft(t)

			mustRun(t, pass, "cryptsetup", "open", "--key-file", "-", img2, "theirs")
			assert.Equal(t, d4, devRW(t, "/dev/mapper/theirs", 2<<20, nil, len(d4)), "cryptsetup reads our data")
			mustRun(t, nil, "cryptsetup", "close", "theirs")
			assert.Equal(t, d3, userspaceRW(t, img2, pass, 8192, nil, len(d3)))
			assert.Equal(t, d4, userspaceRW(t, img2, pass, 2<<20, nil, len(d4)))
			assertNothingLeft(t)
		})
	}

	t.Run("nvme", func(t *testing.T) {
		dev := vmtest.GuestDisk(0)
		require.True(t, strings.HasPrefix(dev, "/dev/nvme"), dev)
		serial, err := os.ReadFile("/sys/block/" + strings.TrimPrefix(dev, "/dev/") + "/device/serial")
		require.NoError(t, err)
		assert.Equal(t, nvmeSerial, strings.TrimSpace(string(serial)))

		pass := []byte("nvme pass")
		h := formatOurs(t, dev, "aes-cbc-essiv:sha256", pass)
		m, err := Open(ctx, dev, "ebs", pass, any)
		require.NoError(t, err)
		assert.Equal(t, dev, m.Device)
		assert.Empty(t, m.BackingFile)
		d := randBytes(t, 128<<10)
		devRW(t, m.Path, 0, d, 0)
		st, err := Status("ebs")
		require.NoError(t, err)
		assert.Equal(t, dev, st.Device)
		assert.Empty(t, st.Loop)
		assert.Equal(t, uint64(16<<20)/512-uint64(h.PayloadOffset), st.Size)
		assert.Equal(t, mustRun(t, nil, "cryptsetup", "status", "ebs"), ourStatusText(t, "ebs"))
		mustRun(t, nil, "cryptsetup", "close", "ebs")
		assertNothingLeft(t)

		mustRun(t, pass, "cryptsetup", "open", "--key-file", "-", dev, "ebs")
		assert.Equal(t, d, devRW(t, "/dev/mapper/ebs", 0, nil, len(d)))
		require.NoError(t, Close(ctx, "ebs"))
		assert.Equal(t, d, userspaceRW(t, dev, pass, 0, nil, len(d)))
		assertNothingLeft(t)
	})
}
