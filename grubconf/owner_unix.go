//go:build unix

package grubconf

import (
	"errors"
	"io/fs"
	"syscall"
)

// fileOwner returns the uid and gid of fi (-1, -1 when unknown).
func fileOwner(fi fs.FileInfo) (int, int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}

// isNotDir reports ENOTDIR: a path component is a file, so the path does not exist.
func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }
