package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// Messages are cryptsetup 2.6.1's, so that every program says the same thing a cryptsetup
// user already knows.
const (
	VerifyPrompt  = "Verify passphrase: "
	ConfirmPrompt = "Are you sure? (Type 'yes' in capital letters): "
)

// Error is a message of this package; its text is cryptsetup's wording, which programs
// print as it is.
type Error string

func (e Error) Error() string { return string(e) }

// The errors of prompts and key input. Key-file errors of the luks package
// (luks.ErrKeyFileOffset, luks.ErrKeyFileTooLarge, luks.ErrKeyFileShort) pass through.
const (
	ErrPassphraseMismatch Error = "Passphrases do not match."
	ErrNothingToRead      Error = "Nothing to read on input."
	ErrKeyFileOpen        Error = "Failed to open key file."
	ErrTerminalOffset     Error = "Cannot use offset with terminal input."
	ErrAborted            Error = "Operation aborted."
	ErrTerminalRead       Error = "Error reading passphrase from terminal."
)

// interrupted is msg (cryptsetup's sentence, printed as it is) ended by cause (the signal
// context's error); errors.Is matches both.
type interrupted struct {
	msg   Error
	cause error
}

func (e interrupted) Error() string   { return string(e.msg) }
func (e interrupted) Unwrap() []error { return []error{e.msg, e.cause} }

// Terminal is what a program needs from the terminal on its standard input. TTY is the real
// one; tests pass a fake so that the prompt logic runs without a pty.
type Terminal interface {
	// IsTerminal reports whether standard input is a terminal; cryptsetup decides between a
	// prompt and one line of stdin on exactly this (isatty(STDIN_FILENO)).
	IsTerminal() bool
	// ReadPassword shows prompt, reads one line without echo and ends the line on the
	// terminal. The returned slice belongs to the caller, who zeroes it.
	ReadPassword(prompt string) ([]byte, error)
}

// TTY is the Terminal of a real terminal. With DevTTY the prompt is written to and the
// answer read from /dev/tty when it can be opened, as cryptsetup's interactive_pass does: a
// script capturing stdout and stderr never sees a prompt. Otherwise (or without /dev/tty) the
// prompt goes to Out and the answer comes from In.
type TTY struct {
	In     *os.File
	Out    io.Writer
	DevTTY bool
	// Ctx, if set, ends a prompt when it is done (the program's signal context: with
	// SIGINT caught for cleanup, Ctrl-C at a prompt would otherwise do nothing), restoring
	// the terminal's echo first. See ReadPasswordContext.
	Ctx context.Context
}

// IsTerminal reports whether In is a terminal.
func (t TTY) IsTerminal() bool { return t.In != nil && term.IsTerminal(int(t.In.Fd())) }

// ReadPassword shows prompt and reads a line without echo.
func (t TTY) ReadPassword(prompt string) ([]byte, error) {
	fd, out := int(t.In.Fd()), t.Out
	if t.DevTTY {
		if tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err == nil {
			defer tty.Close()
			fd, out = int(tty.Fd()), tty
		}
	}
	if _, err := io.WriteString(out, prompt); err != nil {
		return nil, err
	}
	p, err := ReadPasswordContext(t.Ctx, fd)
	io.WriteString(out, "\n")
	return p, err
}

// ReadPassphrase asks for a passphrase on t; with verify it asks again ("Verify
// passphrase: ") and returns ErrPassphraseMismatch when the two differ. The second copy is
// zeroed; the caller zeroes the result.
func ReadPassphrase(t Terminal, prompt string, verify bool) ([]byte, error) {
	p, err := t.ReadPassword(prompt)
	if err != nil {
		clear(p)
		return nil, err
	}
	if !verify {
		return p, nil
	}
	q, err := t.ReadPassword(VerifyPrompt)
	if errors.Is(err, ErrTerminalRead) {
		// Interrupted (a signal) at the second prompt: that, not a mismatch. End of input
		// stays an empty answer, which does not match, as in cryptsetup.
		clear(p)
		clear(q)
		return nil, err
	}
	same := err == nil && bytes.Equal(p, q)
	clear(q)
	if !same {
		clear(p)
		return nil, ErrPassphraseMismatch
	}
	return p, nil
}

// Confirm asks cryptsetup's yes/no question about msg on w and reads the answer from r: only
// the line "YES\n" says yes (cryptsetup's yesDialog compares the whole line, newline
// included); anything else, or end of input, returns ErrAborted. Whether to ask
// at all is the caller's decision: cryptsetup asks only when stdin is a terminal and
// -q/--batch-mode is absent. r is read one byte at a time (or through its ReadByte), so
// nothing after the answer is consumed.
func Confirm(w io.Writer, r io.Reader, msg string) error {
	fmt.Fprintf(w, "\nWARNING!\n========\n%s\n\n%s", msg, ConfirmPrompt)
	next := byteReader(r)
	var line []byte
	for len(line) < 4096 {
		c, err := next()
		if err != nil {
			return ErrAborted
		}
		if c == '\n' {
			if string(line) == "YES" {
				return nil
			}
			return ErrAborted
		}
		line = append(line, c)
	}
	return ErrAborted
}

// ConfirmContext is Confirm that gives up when ctx is done (the program's signal context):
// the answer is then ErrAborted ("Operation aborted.", as cryptsetup's yesDialog when its
// read is interrupted), matching ctx's error too. The abandoned read ends with the next
// line or with the program.
func ConfirmContext(ctx context.Context, w io.Writer, r io.Reader, msg string) error {
	_, err := readUntil(ctx, func() ([]byte, error) { return nil, Confirm(w, r, msg) })
	if err == errStopped {
		fmt.Fprintln(w)
		return interrupted{ErrAborted, ctx.Err()}
	}
	return err
}

// ReadLineContext is ReadLine that gives up when ctx is done (nil: never), with
// ErrNothingToRead matching ctx's error; the abandoned read's bytes are zeroed.
func ReadLineContext(ctx context.Context, r io.Reader, limit int) ([]byte, error) {
	p, err := readUntil(ctx, func() ([]byte, error) { return ReadLine(r, limit) })
	if err == errStopped {
		return nil, interrupted{ErrNothingToRead, ctx.Err()}
	}
	return p, err
}

// ReadLine reads up to the first '\n' (not returned), at most limit bytes before it, without
// reading past it: through r's ReadByte when it has one (a *bufio.Reader keeps what follows
// for the next read), else one byte per Read. End of input ends the line; end of input
// before any byte returns ErrNothingToRead. The line is grown with AppendSecret, so clearing
// the result clears every copy.
func ReadLine(r io.Reader, limit int) ([]byte, error) {
	next := byteReader(r)
	var line []byte
	sawAny := false
	for {
		c, err := next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if sawAny {
					return line, nil
				}
				return nil, ErrNothingToRead
			}
			clear(line)
			return nil, err
		}
		sawAny = true
		if c == '\n' {
			return line, nil
		}
		if len(line) >= limit {
			clear(line)
			return nil, fmt.Errorf("line longer than %d bytes", limit)
		}
		line = AppendSecret(line, c)
	}
}

func byteReader(r io.Reader) func() (byte, error) {
	if br, ok := r.(io.ByteReader); ok {
		return br.ReadByte
	}
	var b [1]byte
	return func() (byte, error) {
		for {
			n, err := r.Read(b[:])
			if n == 1 {
				return b[0], nil
			}
			if err != nil {
				return 0, err
			}
		}
	}
}

// AppendSecret appends c to a buffer holding secret bytes. Where append would leave the old
// backing array to the garbage collector with the secret still in it, this copies into a
// larger array itself and zeroes the old one, so the caller's final clear reaches every copy.
func AppendSecret(buf []byte, c byte) []byte {
	if len(buf) == cap(buf) {
		grown := make([]byte, len(buf), max(2*cap(buf), 64))
		copy(grown, buf)
		clear(buf)
		buf = grown
	}
	return append(buf, c)
}
