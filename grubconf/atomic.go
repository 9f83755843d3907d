package grubconf

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeAtomic replaces file p with data: a temporary file in the same directory is
// written, fsynced, given the old file's mode and owner (or mode for a new file), renamed
// over p, and the directory is fsynced, so readers see the old or the new content, never a
// mix, and a crash leaves one of them.
func writeAtomic(p string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(p)
	uid, gid := -1, -1
	if fi, err := os.Stat(p); err == nil {
		mode = fi.Mode().Perm()
		uid, gid = fileOwner(fi)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(p)+".cloudluks-*")
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
	if uid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil && !os.IsPermission(err) {
			return fmt.Errorf("keeping owner %d:%d: %w", uid, gid, err)
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, p); err != nil {
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

// removeDurable removes p and fsyncs its directory.
func removeDurable(p string) error {
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return err
	}
	return syncDir(filepath.Dir(p))
}
