//go:build linux

package loop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/dmcrypt/internal/dm"
)

const loopControlPath = "/dev/loop-control"

// Loop is a loop device attached by Attach. It holds the loop device open: with
// Autoclear, the device detaches when the last holder (this handle, a dm table on top) closes.
type Loop struct {
	Path        string // "/dev/loopN"
	Index       int
	BackingFile string
	ReadOnly    bool
	f           *os.File
}

// Close releases this handle (detaching an autoclear loop nothing else holds).
func (l *Loop) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Detach detaches the loop device now (LOOP_CLR_FD) and closes the handle.
func (l *Loop) Detach() error {
	if l.f == nil {
		return Detach(l.Path)
	}
	err := unix.IoctlSetInt(int(l.f.Fd()), unix.LOOP_CLR_FD, 0)
	cerr := l.Close()
	if err != nil {
		return fmt.Errorf("detach %s: %w", l.Path, err)
	}
	return cerr
}

// Attach binds file to a free loop device: LOOP_CTL_GET_FREE, then LOOP_CONFIGURE (Linux
// 5.8+), falling back to LOOP_SET_FD + LOOP_SET_STATUS64 on older kernels. A read-only request,
// or a file that cannot be opened for writing (EACCES/EROFS, as cryptsetup does), gives a
// read-only loop device. Another process taking the same free index is retried.
func Attach(file string, opts Options) (*Loop, error) {
	return attach(file, opts, false)
}

// AttachLegacy is Attach without LOOP_CONFIGURE: the LOOP_SET_FD + LOOP_SET_STATUS64 path of
// kernels before 5.8, so tests on a newer kernel exercise it too.
func AttachLegacy(file string, opts Options) (*Loop, error) {
	return attach(file, opts, true)
}

// attach is Attach; legacy skips LOOP_CONFIGURE (the pre-5.8 path, for tests).
func attach(file string, opts Options, legacy bool) (*Loop, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	ro := opts.ReadOnly
	flag := os.O_RDWR
	if ro {
		flag = os.O_RDONLY
	}
	bf, err := os.OpenFile(abs, flag|unix.O_CLOEXEC, 0)
	if err != nil && !ro && (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EROFS)) {
		ro = true
		bf, err = os.OpenFile(abs, os.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", file, dm.ErrNoDevice)
		}
		return nil, dm.PermErr(file, err)
	}
	defer bf.Close()

	ctl, err := os.OpenFile(loopControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		if err = unix.Mknod(loopControlPath, unix.S_IFCHR|0o600, int(unix.Mkdev(10, 237))); err == nil || errors.Is(err, unix.EEXIST) {
			ctl, err = os.OpenFile(loopControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
		}
	}
	if err != nil {
		return nil, dm.PermErr(loopControlPath, err)
	}
	defer ctl.Close()

	var flags uint32
	if ro {
		flags |= unix.LO_FLAGS_READ_ONLY
	}
	if opts.Autoclear {
		flags |= unix.LO_FLAGS_AUTOCLEAR
	}
	var lastErr error
	for range 16 {
		idx, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("%s: get free loop device: %w", loopControlPath, err)
		}
		path := "/dev/loop" + strconv.Itoa(idx)
		lf, err := openLoopNode(path, idx, ro)
		if err != nil {
			return nil, err
		}
		err = configureLoop(lf, bf, abs, flags, legacy)
		if errors.Is(err, unix.EBUSY) {
			lf.Close()
			lastErr = err
			continue // raced with another attacher
		}
		if err != nil {
			lf.Close()
			return nil, fmt.Errorf("attach %s to %s: %w", file, path, err)
		}
		return &Loop{Path: path, Index: idx, BackingFile: abs, ReadOnly: ro, f: lf}, nil
	}
	return nil, fmt.Errorf("attach %s: %w (%w)", file, dm.ErrBusy, lastErr)
}

func openLoopNode(path string, idx int, ro bool) (*os.File, error) {
	flag := os.O_RDWR
	if ro {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		// Static /dev without devtmpfs: make the node from sysfs.
		b, rerr := os.ReadFile(fmt.Sprintf("/sys/block/loop%d/dev", idx))
		if rerr != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		maj, min, perr := dm.ParseMajorMinor(strings.TrimSpace(string(b)))
		if perr != nil {
			return nil, perr
		}
		if merr := unix.Mknod(path, unix.S_IFBLK|0o660, int(unix.Mkdev(maj, min))); merr != nil && !errors.Is(merr, unix.EEXIST) {
			return nil, dm.PermErr(path, merr)
		}
		f, err = os.OpenFile(path, flag|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, dm.PermErr(path, err)
	}
	return f, nil
}

func configureLoop(lf, bf *os.File, name string, flags uint32, legacy bool) error {
	cfg := unix.LoopConfig{Fd: uint32(bf.Fd())}
	cfg.Info.Flags = flags
	copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], name)
	if !legacy {
		err := unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
		if err == nil || !(errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL)) {
			return err
		}
	}
	// Pre-5.8 kernels: two steps. SET_STATUS64 can only set AUTOCLEAR (and PARTSCAN); read-only
	// then comes from the O_RDONLY backing fd.
	if err := unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_SET_FD, int(bf.Fd())); err != nil {
		return err
	}
	info := cfg.Info
	info.Flags &= unix.LO_FLAGS_AUTOCLEAR
	if err := unix.IoctlLoopSetStatus64(int(lf.Fd()), &info); err != nil {
		_ = unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_CLR_FD, 0)
		return err
	}
	return nil
}

// Detach detaches the loop device at path (LOOP_CLR_FD). With the device still open
// elsewhere the kernel turns this into autoclear.
func Detach(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return dm.PermErr(path, err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil {
		if errors.Is(err, unix.ENXIO) {
			return nil // not bound
		}
		return fmt.Errorf("detach %s: %w", path, err)
	}
	return nil
}

// BackingFile returns the file bound to a loop device given as a path ("/dev/loop0") or a
// sysfs name ("loop0"), or "" when the device is not a bound loop device. This is cryptsetup's
// crypt_loop_backing_file: the sysfs backing_file attribute.
func BackingFile(dev string) string {
	base := filepath.Base(dev)
	if !strings.HasPrefix(base, "loop") {
		return ""
	}
	b, err := os.ReadFile("/sys/block/" + base + "/loop/backing_file")
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(b), "\n")
}

// Find returns the loop device ("/dev/loopN") that already backs file, or "" when none
// does. Files are compared by device and inode, so any path to the same file matches.
func Find(file string) (string, error) {
	var want unix.Stat_t
	if err := unix.Stat(file, &want); err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	ents, err := os.ReadDir("/sys/block")
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "loop") {
			continue
		}
		bf := BackingFile(e.Name())
		if bf == "" {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(bf, &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			return "/dev/" + e.Name(), nil
		}
	}
	return "", nil
}
