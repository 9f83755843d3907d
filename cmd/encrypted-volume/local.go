package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// sysLocal is the real machine: luks + dmcrypt for the mapping (local_crypt.go), the ebs
// package for device resolution, mke2fs as a child process and mount(2) directly.
type sysLocal struct{}

// probePath names what device holds ("" = nothing known).
func probePath(ctx context.Context, device string) (string, error) {
	f, err := os.Open(device)
	if err != nil {
		return "", deviceErr(device, err)
	}
	defer f.Close()
	return probeDevice(ctx, f, device)
}

// Mkfs runs the filesystem program with the mapper device as its last argument, a clean
// environment and no standard input: it gets nothing secret.
func (sysLocal) Mkfs(ctx context.Context, argv []string, device string, stdout, stderr io.Writer) error {
	full := append(append([]string{}, argv...), device)
	return runChild(ctx, full, childEnv(), stdout, stderr)
}

func (sysLocal) Mounts() ([]mountEntry, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseMountinfo(string(data)), nil
}

// fsType reads the filesystem type from the device's superblock.
func fsType(device string) (string, error) {
	f, err := os.Open(device)
	if err != nil {
		return "", deviceErr(device, err)
	}
	defer f.Close()
	buf := make([]byte, probeSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%s: %w", device, err)
	}
	switch probe(buf[:n]) {
	case "ext2/3/4 filesystem":
		return "ext4", nil // the ext4 driver mounts ext2 and ext3 too
	case "xfs filesystem":
		return "xfs", nil
	case "btrfs filesystem":
		return "btrfs", nil
	}
	return "", fmt.Errorf("%s: no filesystem this program can mount (ext2/3/4, xfs, btrfs)", device)
}

func deviceErr(device string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", device, errDeviceMissing)
	}
	return fmt.Errorf("%s: %w", device, err)
}

// statBlock checks that path exists and is a block device (or, for tests and images, a
// regular file).
func statBlock(path string) (os.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, deviceErr(path, err)
	}
	if st.Mode()&os.ModeDevice == 0 && !st.Mode().IsRegular() {
		return nil, coded(fmt.Errorf("%s: not a block device", path), errDeviceMissing)
	}
	return st, nil
}

// deviceUsers describes what uses the block device numbered majMin ("259:1") or one of its
// partitions: holders in sysfs (device-mapper mappings, named when sysfs knows the name; md,
// …) and mounts. "" when nothing does. sysRoot is normally "/sys".
func deviceUsers(sysRoot, majMin string, mounts []mountEntry) string {
	dir := filepath.Join(sysRoot, "dev", "block", majMin)
	nums := []string{majMin}
	var users []string
	holders := func(d string) {
		ents, _ := os.ReadDir(filepath.Join(d, "holders"))
		for _, e := range ents {
			h := e.Name()
			if name, err := os.ReadFile(filepath.Join(sysRoot, "class", "block", h, "dm", "name")); err == nil {
				h += " (mapping " + strings.TrimSpace(string(name)) + ")"
			}
			users = append(users, "held by "+h)
		}
	}
	holders(dir)
	// Partitions are subdirectories with their own dev number and holders.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		sub := filepath.Join(dir, e.Name())
		if b, err := os.ReadFile(filepath.Join(sub, "partition")); err == nil && len(b) > 0 {
			if dev, err := os.ReadFile(filepath.Join(sub, "dev")); err == nil {
				nums = append(nums, strings.TrimSpace(string(dev)))
			}
			holders(sub)
		}
	}
	for _, m := range mounts {
		for _, n := range nums {
			if m.MajorMinor == n {
				users = append(users, "mounted on "+m.MountPoint)
			}
		}
	}
	sort.Strings(users)
	return strings.Join(users, ", ")
}
