//go:build !unix

package grubconf

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Without openat (no unix), files are written by host path: the checks before each write
// (resolution inside the root, Check) still hold, but a directory swapped for a symlink in
// between is not caught.

// writeAtomic replaces root-relative file p with data: a temporary file in the same
// directory is written, fsynced, given the old file's mode and owner (or mode for a new
// file), renamed over p, and the directory is fsynced, so readers see the old or the new
// content, never a mix, and a crash leaves one of them.
func writeAtomic(root, p string, data []byte, mode fs.FileMode) error {
	hp := hostPath(root, p)
	dir := filepath.Dir(hp)
	if fi, err := os.Stat(hp); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(hp)+".cloudluks-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(name)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, hp); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// removeDurable removes root-relative p and fsyncs its directory.
func removeDurable(root, p string) error {
	hp := hostPath(root, p)
	if err := os.Remove(hp); err != nil && !os.IsNotExist(err) {
		return err
	}
	return syncDir(filepath.Dir(hp))
}

// removeEmptyDir removes root-relative directory d when it is empty.
func removeEmptyDir(root, d string) error { return os.Remove(hostPath(root, d)) }

// mkdirBeneath makes root-relative directory d and its missing parents with mode.
func mkdirBeneath(root, d string, mode fs.FileMode) error {
	return os.MkdirAll(hostPath(root, d), mode)
}

// openBeneath opens root-relative file p for reading.
func openBeneath(root, p string) (*os.File, error) { return os.Open(hostPath(root, p)) }
