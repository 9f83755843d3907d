package main

import (
	"io"
	"os"

	"golang.org/x/term"
)

// terminal is what the CLI needs from the controlling terminal. The real one is ttyTerminal;
// tests inject a fake so the prompt logic runs without a pty.
type terminal interface {
	// StdinIsTerminal reports whether standard input is a terminal. cryptsetup decides between
	// prompting and reading a line from stdin on exactly this test (isatty(STDIN_FILENO)).
	StdinIsTerminal() bool
	// ReadPassword writes prompt, reads one line without echo and ends the line on the
	// terminal. The returned slice belongs to the caller (who zeroes it).
	ReadPassword(prompt string) ([]byte, error)
}

// ttyTerminal talks to /dev/tty like cryptsetup's interactive_pass: the prompt goes to the
// terminal, not to stdout or stderr, so scripts capturing output never see it. Without
// /dev/tty it falls back to stdin for input and stderr for the prompt.
type ttyTerminal struct {
	stdin  *os.File
	stderr io.Writer
}

func (t ttyTerminal) StdinIsTerminal() bool { return term.IsTerminal(int(t.stdin.Fd())) }

func (t ttyTerminal) ReadPassword(prompt string) ([]byte, error) {
	var (
		fd  = int(t.stdin.Fd())
		out = t.stderr
	)
	if tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err == nil {
		defer tty.Close()
		fd, out = int(tty.Fd()), tty
	}
	if _, err := io.WriteString(out, prompt); err != nil {
		return nil, err
	}
	p, err := term.ReadPassword(fd)
	io.WriteString(out, "\n")
	return p, err
}
