package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/luks"
)

// maxKeyFileSize is cryptsetup's default --keyfile-size limit (8 MiB).
const maxKeyFileSize = luks.MaxKeyFileSize

// This program's errors end up inside longer messages ("step 3/9 failed (...): operation
// aborted"), so they keep Go's lower-case wording rather than cli's cryptsetup sentences.
var (
	errPassMismatch = errors.New("passphrases do not match")
	errEmptyPass    = errors.New("empty passphrase")
	errAborted      = errors.New("operation aborted")
)

// terminal is the interactive side of standard input: a line without echo for passphrases,
// a line with echo for the YES confirmation. nil when standard input is not a terminal.
type terminal interface {
	// ReadPassword reads a line without echo; it gives up when ctx is done (nil: never).
	ReadPassword(ctx context.Context) ([]byte, error)
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

func (t ttyTerminal) ReadPassword(ctx context.Context) ([]byte, error) {
	return cli.ReadPasswordContext(ctx, int(t.f.Fd()))
}

// ReadLine reads one line with echo, one byte at a time so nothing past it is consumed (the
// rest of standard input may belong to someone else).
func (t ttyTerminal) ReadLine() (string, error) {
	line, err := cli.ReadLine(t.f, 4096)
	if errors.Is(err, cli.ErrNothingToRead) {
		return "", nil
	}
	return string(line), err
}

// promptTerm is this program's terminal as a cli.Terminal: prompts go to w (stdout), and an
// empty first answer is refused at once, before any "Verify passphrase: ".
type promptTerm struct {
	ctx context.Context
	t   terminal
	w   io.Writer
}

func (p promptTerm) IsTerminal() bool { return p.t != nil }

func (p promptTerm) ReadPassword(prompt string) ([]byte, error) {
	fmt.Fprint(p.w, prompt)
	pass, err := p.t.ReadPassword(p.ctx)
	fmt.Fprintln(p.w)
	if err == nil && len(pass) == 0 && prompt != cli.VerifyPrompt {
		err = errEmptyPass
	}
	if err != nil {
		clear(pass)
		return nil, err
	}
	return pass, nil
}

// passSource says where the passphrase comes from.
type passSource struct {
	// ctx ends a read that blocks (a key-file FIFO nobody writes to, a pipe held open) when
	// the program is told to stop; nil never ends it.
	ctx     context.Context
	keyFile string // "" = none, "-" = all of stdin
	stdin   io.Reader
	term    terminal
	prompt  io.Writer // where terminal prompts go
}

// read returns the passphrase for device with cryptsetup's semantics (cli.KeyInput): a key
// file or "-" whole, else a prompt on a terminal (verify asks twice: setup), else the first
// line of stdin. An empty passphrase is refused. The caller zeroes the result.
func (p passSource) read(device string, verify bool) ([]byte, error) {
	in := cli.KeyInput{Stdin: p.stdin, Term: promptTerm{ctx: p.ctx, t: p.term, w: p.prompt}, Ctx: p.ctx}
	pass, err := in.Read("Enter passphrase for "+device+": ", cli.KeySource{File: p.keyFile}, verify)
	switch {
	case errors.Is(err, errEmptyPass), errors.Is(err, cli.ErrNothingToRead):
		return nil, errEmptyPass
	case errors.Is(err, cli.ErrPassphraseMismatch):
		return nil, errPassMismatch
	case err != nil:
		return nil, fmt.Errorf("reading passphrase: %w", err)
	case len(pass) == 0:
		return nil, errEmptyPass
	}
	return pass, nil
}

// confirm asks cryptsetup's question on a terminal; without a terminal or with -q it says
// yes, as cryptsetup's batch mode does.
func confirm(t terminal, w io.Writer, batch bool, msg string) error {
	if t == nil || batch {
		return nil
	}
	if cli.Confirm(w, &answerReader{t: t}, msg) != nil {
		return errAborted
	}
	return nil
}

// answerReader hands cli.Confirm the one line the terminal reads, with its newline.
type answerReader struct {
	t    terminal
	line []byte
	read bool
}

func (r *answerReader) Read(p []byte) (int, error) {
	if !r.read {
		r.read = true
		l, err := r.t.ReadLine()
		if err != nil {
			return 0, err
		}
		r.line = []byte(l + "\n")
	}
	if len(r.line) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.line)
	r.line = r.line[n:]
	return n, nil
}
