//go:build linux

package dm

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// withThreadKey adds key as a "logon" key named desc to the thread keyring of a dedicated OS
// thread, runs fn on that thread, then invalidates and unlinks the key. dm-crypt looks the key
// up with the credentials of the thread doing DM_TABLE_LOAD and copies it, so the key is only
// needed for the duration of fn. The goroutine never unlocks its thread: when it returns, the
// Go runtime ends the thread, and the thread keyring (with anything a failed cleanup left) dies
// with it — no path leaves the key in a keyring.
func WithThreadKey(desc string, key []byte, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Deliberately no UnlockOSThread: see above.
		id, err := unix.AddKey("logon", desc, key, unix.KEY_SPEC_THREAD_KEYRING)
		if err != nil {
			done <- fmt.Errorf("add logon key to the thread keyring: %w", err)
			return
		}
		ferr := fn()
		rerr := dropKey(id, unix.KEY_SPEC_THREAD_KEYRING)
		if ferr == nil && rerr != nil {
			ferr = fmt.Errorf("remove key from the thread keyring: %w", rerr)
		}
		done <- ferr
	}()
	return <-done
}

// dropKey invalidates key id (removing it from every keyring at once) and unlinks it from
// keyring in case invalidation is unavailable.
func dropKey(id, keyring int) error {
	_, ierr := unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0)
	_, uerr := unix.KeyctlInt(unix.KEYCTL_UNLINK, id, keyring, 0, 0)
	if ierr == nil || uerr == nil || errors.Is(uerr, unix.ENOKEY) || errors.Is(uerr, unix.ENOENT) {
		return nil
	}
	return errors.Join(ierr, uerr)
}
