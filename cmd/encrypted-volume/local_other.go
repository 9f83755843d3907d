//go:build !linux

package main

import (
	"context"
	"errors"
	"fmt"
)

// mount(2) is Linux-only here, like dm-crypt itself.
func (sysLocal) Mount(source, target string) error {
	return fmt.Errorf("mount %s on %s: %w", source, target, errors.ErrUnsupported)
}

func (sysLocal) Unmount(target string) error {
	return fmt.Errorf("umount %s: %w", target, errors.ErrUnsupported)
}

// DeviceUsers: no block devices of EBS volumes outside Linux here.
func (sysLocal) DeviceUsers(ctx context.Context, volumeID string) (string, string, error) {
	return "", "", nil
}
