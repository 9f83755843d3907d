//go:build unix && !linux

package grubconf

import "golang.org/x/sys/unix"

// openat2Dir: no openat2 here; the caller walks component by component with O_NOFOLLOW.
func openat2Dir(int, string) (int, error) { return -1, unix.ENOSYS }
