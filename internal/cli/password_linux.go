package cli

import (
	"context"
	"io"

	"golang.org/x/sys/unix"
)

// ReadPasswordContext reads one line from the terminal fd with echo off, as
// term.ReadPassword does, but gives up when ctx is done (nil: never). With SIGINT and SIGTERM
// caught for cleanup, Ctrl-C at a prompt would otherwise do nothing; now the terminal's
// state is restored and the result is ErrTerminalRead wrapping ctx's error. Echo is turned
// off and back on here, on the calling goroutine, so that a read abandoned by a signal can
// never switch echo off after the state was restored; the abandoned read ends with the next
// line typed or with the program, and its bytes are zeroed.
func ReadPasswordContext(ctx context.Context, fd int) ([]byte, error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	p, err := readUntil(ctx, func() ([]byte, error) { return readSecretLine(fd) })
	if err == errStopped {
		return nil, interrupted{ErrTerminalRead, ctx.Err()}
	}
	return p, err
}

// readSecretLine reads up to '\n' one byte at a time (nothing past the line is consumed),
// keeping at most MaxPassphrase bytes in a buffer whose old copies are zeroed as it grows.
// The terminal's line discipline has already applied erase and kill. End of input (Ctrl-D)
// ends a non-empty line and is io.EOF on an empty one, as term.ReadPassword has it.
func readSecretLine(fd int) ([]byte, error) {
	var p []byte
	var b [1]byte
	for {
		n, err := unix.Read(fd, b[:])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			clear(p)
			return nil, err
		case n == 0:
			if len(p) > 0 {
				return p, nil
			}
			return nil, io.EOF
		case b[0] == '\n':
			return p, nil
		case len(p) < MaxPassphrase:
			p = AppendSecret(p, b[0])
		}
	}
}
