//go:build unix

package grubconf

import (
	"errors"
	"syscall"
)

// isNotDir reports ENOTDIR: a path component is a file, so the path does not exist.
func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }
