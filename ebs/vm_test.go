package ebs_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/internal/vmtest"
)

func TestMain(m *testing.M) { vmtest.Main(m) }

// TestResolveDeviceNVMeKernel boots a real kernel with two qemu NVMe disks whose serials are
// EBS volume IDs without the dash, as on a Nitro instance, and resolves each volume from its
// ID alone through the real sysfs and devtmpfs, then reads the controller with the real NVMe
// admin ioctl. qemu leaves the vendor area (where EBS writes the requested name) zero, so the
// name cross-check must tolerate its absence.
func TestResolveDeviceNVMeKernel(t *testing.T) {
	const (
		volA = "vol-0123456789abcdef0"
		volB = "vol-0fedcba9876543210"
	)
	var imgA, imgB string
	if !vmtest.InVM() {
		imgA = vmtest.NewDiskImage(t, 1<<20)
		imgB = vmtest.NewDiskImage(t, 1<<20)
	}
	// B first, so that enumeration order and volume order differ.
	if !vmtest.Run(t, vmtest.Options{Disks: []vmtest.Disk{
		{Path: imgB, NVMeSerial: ebs.NVMeSerial(volB)},
		{Path: imgA, NVMeSerial: ebs.NVMeSerial(volA)},
	}}) {
		return
	}

	ctx := context.Background()
	opts := ebs.ResolveOptions{Timeout: 30 * time.Second}
	devA, err := ebs.ResolveDevice(ctx, volA, "", opts)
	require.NoError(t, err)
	assert.Equal(t, vmtest.GuestDisk(1), devA)
	devB, err := ebs.ResolveDevice(ctx, volB, "", opts)
	require.NoError(t, err)
	assert.Equal(t, vmtest.GuestDisk(0), devB)
	assert.NotEqual(t, devA, devB)
	st, err := os.Stat(devA)
	require.NoError(t, err)
	assert.NotZero(t, st.Mode()&os.ModeDevice, "a real block device node")

	// The real Identify Controller: serial as sysfs says, qemu's vendor, empty vendor area.
	buf, err := ebs.IdentifyController(devA)
	require.NoError(t, err)
	ctrl, err := ebs.ParseIdentifyController(buf)
	require.NoError(t, err)
	assert.Equal(t, ebs.NVMeSerial(volA), ctrl.Serial)
	assert.Equal(t, uint16(0x1b36), ctrl.VendorID)
	assert.Equal(t, "", ctrl.BlockDevice)
	assert.False(t, ctrl.IsEBS())

	// With the requested name known, the (absent) vendor name does not get in the way.
	dev, err := ebs.ResolveDevice(ctx, volA, "/dev/sdf", opts)
	require.NoError(t, err)
	assert.Equal(t, devA, dev)

	// A volume that is not attached is not found (and nothing else is returned).
	_, err = ebs.ResolveDevice(ctx, "vol-0aaaaaaaaaaaaaaaa", "/dev/sdg", ebs.ResolveOptions{Timeout: 50 * time.Millisecond})
	require.ErrorIs(t, err, ebs.ErrDeviceNotFound)
}
