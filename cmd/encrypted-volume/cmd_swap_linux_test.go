package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSys writes /sys/block/NAME/device/{model,serial} for NVMe namespaces, space-padded
// as the kernel shows them.
func fakeSys(t *testing.T, disks map[string][2]string) string {
	root := t.TempDir()
	for name, ms := range disks {
		d := filepath.Join(root, "block", name, "device")
		require.NoError(t, os.MkdirAll(d, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(d, "model"), []byte(ms[0]+"                \n"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(d, "serial"), []byte(ms[1]+"    \n"), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "block", "vda"), 0o755))
	return root
}

func TestInstanceStoreAndStableNames(t *testing.T) {
	sys := fakeSys(t, map[string][2]string{
		"nvme0n1": {"Amazon Elastic Block Store", "vol0123456789abcdef0"},
		"nvme2n1": {"Amazon EC2 NVMe Instance Storage", "AWS2B3C4D5E6F7A8B9C0"},
		"nvme1n1": {"Amazon EC2 NVMe Instance Storage", "AWS1A2B3C4D5E6F7A8B9"},
	})
	disks, err := instanceStoreDisks(sys)
	require.NoError(t, err)
	assert.Equal(t, []string{"/dev/nvme1n1", "/dev/nvme2n1"}, disks, "EBS volumes are not instance store")

	noUdev := filepath.Join(t.TempDir(), "by-id") // absent: the name is what udev will make
	n, err := stableName(sys, noUdev, "/dev/nvme1n1")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(noUdev, "nvme-Amazon_EC2_NVMe_Instance_Storage_AWS1A2B3C4D5E6F7A8B9"), n)
	n, err = stableName(sys, noUdev, "/dev/nvme0n1")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(noUdev, "nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"), n)

	_, err = stableName(sys, noUdev, "/dev/vda")
	require.ErrorIs(t, err, errUsage, "no serial: no stable name")
	_, err = stableName(sys, noUdev, "/dev/xvdf")
	require.ErrorIs(t, err, errUsage)

	// With udev, the link must exist and lead to the device.
	byID := t.TempDir()
	_, err = stableName(sys, byID, "/dev/nvme1n1")
	require.ErrorIs(t, err, errDeviceMissing)
	dev := filepath.Join(t.TempDir(), "nvme1n1")
	require.NoError(t, os.WriteFile(dev, nil, 0o644))
	require.NoError(t, os.Symlink(dev, filepath.Join(byID, "nvme-Amazon_EC2_NVMe_Instance_Storage_AWS1A2B3C4D5E6F7A8B9")))
	n, err = stableName(sys, byID, dev)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(byID, "nvme-Amazon_EC2_NVMe_Instance_Storage_AWS1A2B3C4D5E6F7A8B9"), n)
	_, err = stableName(sys, byID, filepath.Join(filepath.Dir(dev), "other"))
	require.Error(t, err)
}

func TestParseProcSwaps(t *testing.T) {
	got := parseProcSwaps([]byte("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/dm-0                               partition\t16380\t\t0\t\t-2\n/swap\\040file file 100 0 -3\n"))
	assert.Equal(t, []string{"/dev/dm-0", "/swap file"}, got)
	assert.Empty(t, parseProcSwaps([]byte("Filename\tType\tSize\tUsed\tPriority\n")))
}

// FuzzParseProcSwaps: any /proc/swaps text gives names without blanks (escapes undone
// only into the one name) and never panics.
func FuzzParseProcSwaps(f *testing.F) {
	f.Add([]byte("Filename\tType\tSize\tUsed\tPriority\n/dev/dm-0 partition 16380 0 -2\n"))
	f.Add([]byte("Filename\n/a\\040b file 1 0 -1\n\\\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, n := range parseProcSwaps(b) {
			if n == "" {
				t.Fatalf("empty name from %q", b)
			}
		}
	})
}
