package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/ebs"
)

// Mount mounts source at target with the filesystem type found on it (the kernel does not
// guess types for mount(2)).
func (l sysLocal) Mount(source, target string) error {
	fstype, err := fsType(source)
	if err != nil {
		return err
	}
	if err := unix.Mount(source, target, fstype, 0, ""); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return coded(fmt.Errorf("mount %s on %s: %w", source, target, err), errBusy)
		}
		return fmt.Errorf("mount %s on %s: %w", source, target, err)
	}
	return nil
}

func (sysLocal) Unmount(target string) error {
	if err := unix.Unmount(target, 0); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("umount %s: mount point busy: a process still uses files on it (see fuser -vm %s): %w", target, target, errBusy)
		}
		return fmt.Errorf("umount %s: %w", target, err)
	}
	return nil
}

// deviceUsersResolveTimeout bounds the look for the device in DeviceUsers: the volume is
// attached (or not here at all), so its node is there already.
const deviceUsersResolveTimeout = time.Second

// DeviceUsers looks for the volume by NVMe serial only: that identifies the disk exactly,
// while the Xen name guess (/dev/sdf → /dev/xvdf) could name an unrelated disk on a machine
// that is not the instance. Nitro (NVMe) is where the check matters most: there a detach
// pulls the disk from under whatever still uses it.
func (l sysLocal) DeviceUsers(ctx context.Context, volumeID string) (string, string, error) {
	dev, err := ebs.ResolveDevice(ctx, volumeID, "", ebs.ResolveOptions{Timeout: deviceUsersResolveTimeout})
	if err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		return "", "", nil // no block device of this volume here
	}
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return "", "", fmt.Errorf("%s: %w", dev, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return dev, "", nil
	}
	mounts, err := l.Mounts()
	if err != nil {
		return "", "", err
	}
	majMin := fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	return dev, deviceUsers("/sys", majMin, mounts), nil
}
