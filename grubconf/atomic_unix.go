//go:build unix

package grubconf

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Every write (and read) goes through a directory opened beneath the root without
// following any symlink: the paths Plan produced are the real files, links already
// resolved inside the root, so a symlink found on the way now means a directory was
// swapped since (possibly for a link out of the root). That is refused with ErrConflict
// instead of being followed. openat2 (RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS) does it in
// one call where the kernel has it; otherwise each component is opened with O_NOFOLLOW.

// swapped is the error for a path component that is not the directory Plan saw.
func swapped(p string) error {
	return fmt.Errorf("%s: a symlink or not a directory now (it was a directory when planned): %w", p, ErrConflict)
}

// openDir opens root-relative directory dir beneath root. With mkmode != 0, missing
// components are made with that mode (like MkdirAll, but never through a link).
func openDir(root, dir string, mkmode uint32) (int, error) {
	rfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	rel := strings.Trim(path.Clean("/"+dir), "/")
	if rel == "" {
		return rfd, nil
	}
	fd, err := openat2Dir(rfd, rel)
	switch {
	case err == nil:
		_ = unix.Close(rfd)
		return fd, nil
	case err == unix.ENOENT && mkmode == 0:
		_ = unix.Close(rfd)
		return -1, &fs.PathError{Op: "open", Path: path.Clean("/" + dir), Err: err}
	case err == unix.ELOOP || err == unix.EXDEV || err == unix.ENOTDIR:
		_ = unix.Close(rfd)
		return -1, swapped(path.Clean("/" + dir))
	}
	return walkDir(rfd, rel, mkmode)
}

// walkDir opens rel beneath the directory rfd (which it closes) one component at a time
// with O_NOFOLLOW, making missing ones with mkmode != 0.
func walkDir(rfd int, rel string, mkmode uint32) (int, error) {
	cur, done := rfd, "/"
	for _, comp := range strings.Split(rel, "/") {
		done = path.Join(done, comp)
		const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		fd, err := unix.Openat(cur, comp, flags, 0)
		if err == unix.ENOENT && mkmode != 0 {
			if err = unix.Mkdirat(cur, comp, mkmode); err == nil || err == unix.EEXIST {
				fd, err = unix.Openat(cur, comp, flags, 0)
			}
		}
		_ = unix.Close(cur)
		switch {
		case err == unix.ELOOP || err == unix.ENOTDIR:
			return -1, swapped(done)
		case err != nil:
			return -1, &fs.PathError{Op: "open", Path: done, Err: err}
		}
		cur = fd
	}
	return cur, nil
}

// openBeneath opens root-relative file p for reading, beneath root and through no
// symlink. O_NONBLOCK keeps a FIFO put in a file's place from blocking the open.
func openBeneath(root, p string) (*os.File, error) {
	dfd, err := openDir(root, path.Dir(p), 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, path.Base(p), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == unix.ELOOP {
		return nil, fmt.Errorf("%s: a symlink now: %w", p, ErrConflict)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), hostPath(root, p)), nil
}

// writeAtomic replaces root-relative file p with data: a temporary file in the same
// directory is written, fsynced, given the old file's mode and owner (or mode for a new
// file), renamed over p, and the directory is fsynced, so readers see the old or the new
// content, never a mix, and a crash leaves one of them.
func writeAtomic(root, p string, data []byte, mode fs.FileMode) error {
	dfd, err := openDir(root, path.Dir(p), 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	base := path.Base(p)
	uid, gid := -1, -1
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("%s: no longer a regular file: %w", p, ErrConflict)
		}
		mode, uid, gid = fs.FileMode(st.Mode&0o777), int(st.Uid), int(st.Gid)
	}
	var tmp string
	var fd int
	for range 100 {
		tmp = "." + base + ".cloudluks-" + strconv.FormatUint(rand.Uint64(), 36)
		fd, err = unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != unix.EEXIST {
			break
		}
	}
	if err != nil {
		return &fs.PathError{Op: "create", Path: path.Join(path.Dir(p), tmp), Err: err}
	}
	f := os.NewFile(uintptr(fd), hostPath(root, path.Join(path.Dir(p), tmp)))
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = unix.Unlinkat(dfd, tmp, 0)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if uid >= 0 {
		if err := f.Chown(uid, gid); err != nil && !errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("keeping owner %d:%d: %w", uid, gid, err)
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		ok = true
		return &fs.PathError{Op: "rename", Path: p, Err: err}
	}
	ok = true
	return syncFd(dfd, path.Dir(p))
}

func syncFd(fd int, name string) error {
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	return nil
}

// removeDurable removes root-relative p and fsyncs its directory.
func removeDurable(root, p string) error {
	dfd, err := openDir(root, path.Dir(p), 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Unlinkat(dfd, path.Base(p), 0); err != nil && err != unix.ENOENT {
		return &fs.PathError{Op: "remove", Path: p, Err: err}
	}
	return syncFd(dfd, path.Dir(p))
}

// removeEmptyDir removes root-relative directory d when it is empty (never a link).
func removeEmptyDir(root, d string) error {
	dfd, err := openDir(root, path.Dir(d), 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Unlinkat(dfd, path.Base(d), unix.AT_REMOVEDIR); err != nil {
		return &fs.PathError{Op: "remove", Path: d, Err: err}
	}
	return nil
}

// mkdirBeneath makes root-relative directory d and its missing parents with mode.
func mkdirBeneath(root, d string, mode fs.FileMode) error {
	fd, err := openDir(root, d, uint32(mode.Perm()))
	if err != nil {
		return err
	}
	return unix.Close(fd)
}
