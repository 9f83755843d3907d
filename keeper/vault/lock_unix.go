//go:build unix

package vault

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lock takes the writers' exclusive flock on path+".lock", waiting at most LockTimeout.
// flock rather than fcntl locks: they belong to the open file, so two Vaults of one process
// (two goroutines) exclude each other too.
func lock(path string) (func(), error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	deadline := time.Now().Add(LockTimeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%s: %w (waited %v)", name, ErrLocked, LockTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
