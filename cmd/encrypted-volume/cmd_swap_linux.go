package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/dmcrypt"
)

// The scratchLocal half of sysLocal: dmcrypt.OpenEphemeral, swapon(2)/swapoff(2) and
// sysfs. Swap is switched on with the system call, not swapon(8), so nothing but mkswap
// and mkfs.ext4 is needed from the system.

func (sysLocal) OpenEphemeral(ctx context.Context, device, name, cipher string, keyBits int) (string, error) {
	m, err := dmcrypt.OpenEphemeral(ctx, device, name, dmcrypt.PlainParams{Cipher: cipher, KeySize: keyBits / 8}, dmcrypt.OpenOptions{})
	if err != nil {
		return "", mapDMErr(err)
	}
	return m.Path, nil
}

func (sysLocal) Ephemeral(name string) (bool, bool, *dmcrypt.MappingStatus, error) {
	st, err := dmcrypt.Status(name)
	switch {
	case errors.Is(err, dmcrypt.ErrNotFound), errors.Is(err, dmcrypt.ErrNoDeviceMapper), errors.Is(err, dmcrypt.ErrUnsupported):
		return false, false, nil, nil
	case err != nil:
		return false, false, nil, err
	}
	return true, st.Ephemeral(), st, nil
}

func (sysLocal) ScratchMappings() ([]*dmcrypt.MappingStatus, error) {
	ms, err := dmcrypt.List()
	if err != nil {
		return nil, err
	}
	var out []*dmcrypt.MappingStatus
	for _, m := range ms {
		if !strings.HasPrefix(m.UUID, "CRYPT-") {
			continue
		}
		st, err := dmcrypt.Status(m.Name)
		if err == nil && st.Type == "PLAIN" {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func swapCall(nr uintptr, op, device string) error {
	p, err := unix.BytePtrFromString(device)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, device, err)
	}
	if _, _, e := unix.Syscall(nr, uintptr(unsafe.Pointer(p)), 0, 0); e != 0 {
		if e == unix.EBUSY {
			return coded(fmt.Errorf("%s %s: %w", op, device, e), errBusy)
		}
		if e == unix.EPERM {
			return coded(fmt.Errorf("%s %s: %w", op, device, e), errNoPermission)
		}
		return fmt.Errorf("%s %s: %w", op, device, e)
	}
	return nil
}

func (sysLocal) Swapon(device string) error  { return swapCall(unix.SYS_SWAPON, "swapon", device) }
func (sysLocal) Swapoff(device string) error { return swapCall(unix.SYS_SWAPOFF, "swapoff", device) }

// SwapActive compares device numbers: /proc/swaps shows the path swapon was given, which
// may be /dev/dm-N or /dev/mapper/NAME for the same device.
func (sysLocal) SwapActive(path string) (bool, error) {
	var want unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("%s: %w", path, err)
	}
	data, err := os.ReadFile("/proc/swaps")
	if err != nil {
		return false, err
	}
	for _, p := range parseProcSwaps(data) {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == want.Rdev && want.Mode&unix.S_IFMT == unix.S_IFBLK {
			return true, nil
		}
	}
	return false, nil
}

// parseProcSwaps returns the file names of /proc/swaps (first column, octal escapes undone).
func parseProcSwaps(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	first := true
	for sc.Scan() {
		if first {
			first = false // header: Filename Type Size Used Priority
			continue
		}
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			out = append(out, unescapeOctal(f[0]))
		}
	}
	return out
}

func (sysLocal) MountType(source, target, fstype string) error {
	if err := unix.Mount(source, target, fstype, unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return coded(fmt.Errorf("mount %s on %s: %w", source, target, err), errBusy)
		}
		return fmt.Errorf("mount %s on %s: %w", source, target, err)
	}
	return nil
}

func (sysLocal) InstanceStore() ([]string, error) { return instanceStoreDisks("/sys") }

// instanceStoreDisks lists the NVMe namespaces whose controller model is the instance
// store's, in name order.
func instanceStoreDisks(sysRoot string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(sysRoot, "block"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "nvme") {
			continue
		}
		model, err := os.ReadFile(filepath.Join(sysRoot, "block", e.Name(), "device", "model"))
		if err == nil && strings.TrimSpace(string(model)) == instanceStoreModel {
			out = append(out, "/dev/"+e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

func (sysLocal) StableName(device string) (string, error) {
	return stableName("/sys", "/dev/disk/by-id", device)
}

// stableName is udev's by-id name of an NVMe namespace (60-persistent-storage.rules:
// "nvme-" + model + "_" + serial, runs of blanks as one "_"): on Nitro
// nvme-Amazon_Elastic_Block_Store_vol… for EBS, nvme-Amazon_EC2_NVMe_Instance_Storage_AWS…
// for the instance store. Where udev runs (byID exists) the link must lead to device;
// without udev (an initramfs, the test VM) the name is what udev will make at boot.
func stableName(sysRoot, byID, device string) (string, error) {
	base := filepath.Base(device)
	dir := filepath.Join(sysRoot, "block", base, "device")
	model, err1 := os.ReadFile(filepath.Join(dir, "model"))
	serial, err2 := os.ReadFile(filepath.Join(dir, "serial"))
	if !strings.HasPrefix(base, "nvme") || err1 != nil || err2 != nil || len(strings.Fields(string(serial))) == 0 {
		return "", coded(fmt.Errorf("%s has no NVMe model and serial for a stable /dev/disk/by-id/ name (its kernel name can change between boots; give --device /dev/disk/by-id/…)", device), errUsage)
	}
	name := "nvme-" + strings.Join(strings.Fields(string(model)), "_") + "_" + strings.Join(strings.Fields(string(serial)), "_")
	link := filepath.Join(byID, name)
	if _, err := os.Stat(byID); err != nil {
		return link, nil
	}
	got, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", coded(fmt.Errorf("%s: udev has no %s for it: %w", device, link, err), errDeviceMissing)
	}
	if got != device {
		return "", coded(fmt.Errorf("%s leads to %s, not %s", link, got, device), errUsage)
	}
	return link, nil
}

func (sysLocal) DeviceSize(device string) (int64, error) {
	f, err := os.Open(device)
	if err != nil {
		return 0, deviceErr(device, err)
	}
	defer f.Close()
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", device, err)
	}
	return n, nil
}

// Users adds active swap to what deviceUsers finds (holders, mounts).
func (l sysLocal) Users(device string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(device, &st); err != nil {
		return "", deviceErr(device, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return "", nil
	}
	mounts, err := l.Mounts()
	if err != nil {
		return "", err
	}
	users := deviceUsers("/sys", fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)), mounts)
	if on, _ := l.SwapActive(device); on {
		users = strings.TrimPrefix(users+", active swap", ", ")
	}
	return users, nil
}
