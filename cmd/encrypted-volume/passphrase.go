package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// maxKeyFileSize is cryptsetup's default --keyfile-size limit (8 MiB).
const maxKeyFileSize = 8 << 20

var (
	errPassMismatch = errors.New("passphrases do not match")
	errEmptyPass    = errors.New("empty passphrase")
	errAborted      = errors.New("operation aborted")
)

// terminal is the interactive side of standard input: a line without echo for passphrases,
// a line with echo for the YES confirmation. nil when standard input is not a terminal.
type terminal interface {
	ReadPassword() ([]byte, error)
	ReadLine() (string, error)
}

// ttyTerminal reads from a real terminal file descriptor.
type ttyTerminal struct{ f *os.File }

func detectTerminal(stdin io.Reader) terminal {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return ttyTerminal{f: f}
}

func (t ttyTerminal) ReadPassword() ([]byte, error) { return term.ReadPassword(int(t.f.Fd())) }

func (t ttyTerminal) ReadLine() (string, error) {
	line, err := readLine(t.f, 4096)
	return string(line), err
}

// readLine reads one byte at a time up to '\n' so nothing past the line is consumed (the
// rest of standard input may belong to someone else). The newline is not returned.
func readLine(r io.Reader, limit int) ([]byte, error) {
	var line []byte
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				return line, nil
			}
			if len(line) >= limit {
				clear(line)
				return nil, fmt.Errorf("line longer than %d bytes", limit)
			}
			line = appendSecret(line, b[0])
			continue
		}
		if errors.Is(err, io.EOF) {
			return line, nil
		}
		if err != nil {
			clear(line)
			return nil, err
		}
	}
}

// passSource says where the passphrase comes from.
type passSource struct {
	keyFile string // "" = none, "-" = all of stdin
	stdin   io.Reader
	term    terminal
	prompt  io.Writer // where terminal prompts go
}

// read returns the passphrase for device; verify asks twice on a terminal (setup).
// The caller zeroes the result.
func (p passSource) read(device string, verify bool) ([]byte, error) {
	switch {
	case p.keyFile == "-":
		return readAllLimited(p.stdin, "standard input")
	case p.keyFile != "":
		f, err := os.Open(p.keyFile)
		if err != nil {
			return nil, fmt.Errorf("key file: %w", err)
		}
		defer f.Close()
		return readAllLimited(f, p.keyFile)
	case p.term != nil:
		fmt.Fprintf(p.prompt, "Enter passphrase for %s: ", device)
		pass, err := p.term.ReadPassword()
		fmt.Fprintln(p.prompt)
		if err != nil {
			return nil, fmt.Errorf("reading passphrase: %w", err)
		}
		if len(pass) == 0 {
			return nil, errEmptyPass
		}
		if verify {
			fmt.Fprint(p.prompt, "Verify passphrase: ")
			again, err := p.term.ReadPassword()
			fmt.Fprintln(p.prompt)
			defer clear(again)
			if err != nil {
				clear(pass)
				return nil, fmt.Errorf("reading passphrase: %w", err)
			}
			if !bytes.Equal(pass, again) {
				clear(pass)
				return nil, errPassMismatch
			}
		}
		return pass, nil
	default:
		// Not a terminal and no key file: the first line of standard input, as cryptsetup.
		pass, err := readLine(p.stdin, maxKeyFileSize)
		if err != nil {
			return nil, fmt.Errorf("reading passphrase from standard input: %w", err)
		}
		if len(pass) == 0 {
			return nil, errEmptyPass
		}
		return pass, nil
	}
}

func readAllLimited(r io.Reader, what string) ([]byte, error) {
	lr := io.LimitReader(r, maxKeyFileSize+1)
	var b []byte
	chunk := make([]byte, 512)
	defer clear(chunk)
	for {
		n, err := lr.Read(chunk)
		for _, c := range chunk[:n] {
			b = appendSecret(b, c)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			clear(b[:cap(b)])
			return nil, fmt.Errorf("key file %s: %w", what, err)
		}
	}
	if len(b) > maxKeyFileSize {
		clear(b[:cap(b)])
		return nil, fmt.Errorf("key file %s: larger than %d bytes", what, maxKeyFileSize)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("key file %s: %w", what, errEmptyPass)
	}
	return b, nil
}

// appendSecret appends c to a buffer holding secret bytes. Where append would leave the
// old backing array behind for the garbage collector with the secret still in it, this
// copies into a larger array itself and zeroes the old one, so that every copy of a
// passphrase is cleared by the caller's final clear.
func appendSecret(buf []byte, c byte) []byte {
	if len(buf) == cap(buf) {
		grown := make([]byte, len(buf), max(2*cap(buf), 64))
		copy(grown, buf)
		clear(buf)
		buf = grown
	}
	return append(buf, c)
}

// confirm asks cryptsetup's question on a terminal; without a terminal or with -q it says
// yes, as cryptsetup's batch mode does.
func confirm(t terminal, w io.Writer, batch bool, msg string) error {
	if t == nil || batch {
		return nil
	}
	fmt.Fprintf(w, "\nWARNING!\n========\n%s\n\nAre you sure? (Type 'yes' in capital letters): ", msg)
	ans, err := t.ReadLine()
	if err != nil || ans != "YES" {
		return errAborted
	}
	return nil
}
