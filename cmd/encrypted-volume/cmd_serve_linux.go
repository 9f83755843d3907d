package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive flock on path (creating it and its directory), waiting up to
// wait and calling waiting once if another process holds it. The lock goes with the
// process: a serve killed mid-unlock cannot leave it held.
func lockFile(ctx context.Context, path string, wait time.Duration, waiting func()) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	said := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		if !said {
			waiting()
			said = true
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%s: held by another process for more than %s: %w", path, wait, errBusy)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(serveLockPoll):
		}
	}
}

// ignoreHangup keeps serve alive when the keeper's side of the channel goes away: a write
// to it then fails with EPIPE instead of killing the process, and sshd's hangup is not
// fatal either.
func ignoreHangup() { signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP) }

// sameDevice reports whether a mapping's backing device (a path, or "MAJOR:MINOR") is
// dev, by device number when both can be read.
func sameDevice(mapped, dev string) bool {
	if mapped == dev {
		return true
	}
	st, err := os.Stat(dev)
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || st.Mode()&os.ModeDevice == 0 {
		a, err1 := filepath.EvalSymlinks(mapped)
		b, err2 := filepath.EvalSymlinks(dev)
		return err1 == nil && err2 == nil && a == b
	}
	var maj, min uint32
	if _, err := fmt.Sscanf(mapped, "%d:%d", &maj, &min); err == nil {
		return unix.Major(uint64(sys.Rdev)) == maj && unix.Minor(uint64(sys.Rdev)) == min
	}
	mst, err := os.Stat(mapped)
	if err != nil {
		return false
	}
	msys, ok := mst.Sys().(*syscall.Stat_t)
	return ok && mst.Mode()&os.ModeDevice != 0 && msys.Rdev == sys.Rdev
}
