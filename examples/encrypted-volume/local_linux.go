package main

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
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
