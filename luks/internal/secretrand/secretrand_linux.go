package secretrand

import (
	"crypto/rand"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// getrandom is the raw system call (not unix.Getrandom, which prefers the vDSO); a test
// replaces it to produce the interruptions and short reads the kernel rarely does.
var getrandom = func(b []byte) (int, error) {
	n, _, e := unix.Syscall(unix.SYS_GETRANDOM, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// Read fills b with random bytes from getrandom(2) with flags 0: it blocks until the kernel's
// pool is initialised (early boot only) and never fails after that. EINTR (a signal before
// any byte was written) is retried; a short read (a signal mid-way, or more than 32 MiB asked
// for) continues where it stopped. Read writes nothing but b and keeps no copy.
func Read(b []byte) error {
	for len(b) > 0 {
		n, err := getrandom(b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ENOSYS:
			_, err = rand.Read(b) // a kernel older than 3.17: best effort, see the package doc
			return err
		case err != nil:
			return fmt.Errorf("getrandom: %w", err)
		case n <= 0 || n > len(b):
			return fmt.Errorf("getrandom: returned %d of %d bytes", n, len(b))
		}
		b = b[n:]
	}
	return nil
}
