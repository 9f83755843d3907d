//go:build !unix

package grubconf

import "io/fs"

// fileOwner: ownership is not carried over where the platform has no uid/gid.
func fileOwner(fs.FileInfo) (int, int) { return -1, -1 }

func isNotDir(error) bool { return false }
