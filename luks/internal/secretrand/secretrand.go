// Package secretrand is the random source for secrets: volume keys, ephemeral plain-mode
// keys. It exists because crypto/rand, and golang.org/x/sys/unix.Getrandom too, take Go's
// vDSO getrandom path on Linux 6.11 and later: the random bytes are made in user space by
// vDSO code that runs on the calling goroutine's stack and may spill registers there, and a
// signal arriving meanwhile saves those registers, key bytes included, in a signal frame
// that nothing clears. A memory scan can then find the key long after the caller wiped its
// buffer.
//
// On Linux, Read issues the getrandom(2) system call itself, so the kernel writes into the
// caller's buffer and nowhere else in the process. Elsewhere, and on a Linux kernel older
// than 3.17 (ENOSYS), it falls back to crypto/rand: the bytes are as good, the "no other
// copy" guarantee is best effort only.
//
// Public random values (salts, UUIDs, wipe patterns) need none of this; crypto/rand is fine
// for them.
package secretrand

import "io"

// Reader is an io.Reader whose Read is [Read]; it fills the whole buffer or fails.
var Reader io.Reader = reader{}

type reader struct{}

func (reader) Read(b []byte) (int, error) {
	if err := Read(b); err != nil {
		return 0, err
	}
	return len(b), nil
}
