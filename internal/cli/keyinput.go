package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cloudluks/cloudluks/luks"
)

// MaxPassphrase is cryptsetup's limit for a passphrase typed at a terminal (512 characters).
const MaxPassphrase = 512

// KeySource says where one passphrase comes from, with cryptsetup's options.
type KeySource struct {
	// File is --key-file/-d: "" means a prompt at a terminal or else one line of stdin; "-"
	// means all of stdin, read as a key file.
	File string
	// Offset is --keyfile-offset: bytes skipped first (refused at a terminal).
	Offset int64
	// Size is --keyfile-size/-l: at most this many bytes; 0 means cryptsetup's defaults
	// (luks.MaxKeyFileSize for files and lines of stdin, MaxPassphrase at a terminal).
	Size int64
}

// KeyInput reads passphrases as cryptsetup's tools_get_key does. Stdin must be the one
// reader a program uses for its standard input, so that a line read for one passphrase does
// not swallow the next.
type KeyInput struct {
	Stdin io.Reader
	Term  Terminal
	// Ctx, if set, ends a read that blocks (a FIFO with no writer, a pipe that stays open)
	// when it is done — the program's signal context — with ErrKeyFileOpen for a key file
	// and ErrNothingToRead for stdin, cryptsetup's messages when it is interrupted there.
	// The abandoned read finishes in the background and its bytes are zeroed.
	Ctx context.Context
}

// Read obtains one passphrase from src:
//   - a key file (not "-") is read whole from Offset, at most Size bytes, newlines included;
//   - "-" reads all of stdin the same way;
//   - otherwise, with a terminal on stdin, it prompts without echo (and, with verify, asks
//     again: ErrPassphraseMismatch), keeping at most MaxPassphrase (or Size) bytes;
//   - otherwise it reads one line of stdin, up to (not including) the first '\n'.
//
// Nothing at all on stdin is ErrNothingToRead (an empty regular key file is an empty key); a
// missing key file is ErrKeyFileOpen wrapping the os error. The caller zeroes the result.
func (k KeyInput) Read(prompt string, src KeySource, verify bool) ([]byte, error) {
	if k.Ctx == nil || (src.File == "" && k.Term != nil && k.Term.IsTerminal()) {
		return k.read(prompt, src, verify)
	}
	p, err := readUntil(k.Ctx, func() ([]byte, error) { return k.read(prompt, src, verify) })
	switch {
	case err != errStopped:
		return p, err
	case src.File != "" && src.File != "-":
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFileOpen, src.File, k.Ctx.Err())
	}
	return nil, fmt.Errorf("%w: %w", ErrNothingToRead, k.Ctx.Err())
}

func (k KeyInput) read(prompt string, src KeySource, verify bool) ([]byte, error) {
	switch src.File {
	case "":
	case "-":
		p, err := luks.ReadKey(k.Stdin, src.Offset, src.Size)
		return nonEmpty(p, err)
	default:
		if _, err := os.Stat(src.File); err != nil {
			return nil, fmt.Errorf("%w %s: %w", ErrKeyFileOpen, src.File, err)
		}
		// An empty regular file is an empty key, as in cryptsetup.
		p, err := luks.ReadKeyFile(src.File, src.Offset, src.Size)
		if err != nil {
			return nonEmpty(p, err)
		}
		return p, nil
	}
	if k.Term != nil && k.Term.IsTerminal() {
		return k.prompt(prompt, src, verify)
	}
	return ReadKeyLine(k.Stdin, src)
}

func nonEmpty(p []byte, err error) ([]byte, error) {
	if err != nil {
		clear(p)
		if errors.Is(err, luks.ErrNothingToRead) {
			return nil, ErrNothingToRead
		}
		return nil, err
	}
	if len(p) == 0 {
		return nil, ErrNothingToRead
	}
	return p, nil
}

func (k KeyInput) prompt(prompt string, src KeySource, verify bool) ([]byte, error) {
	if src.Offset > 0 {
		return nil, ErrTerminalOffset
	}
	limit := int64(MaxPassphrase)
	if src.Size > 0 {
		limit = min(limit, src.Size)
	}
	// Both answers are cut to the limit before they are compared: cryptsetup reads each into
	// a buffer of that size.
	p, err := ReadPassphrase(limited{k.Term, limit}, prompt, verify)
	if err != nil && !errors.Is(err, ErrPassphraseMismatch) && !errors.Is(err, ErrTerminalRead) {
		return nil, fmt.Errorf("%w: %w", ErrNothingToRead, err)
	}
	return p, err
}

// limited cuts every answer of a Terminal to n bytes, zeroing the rest.
type limited struct {
	Terminal
	n int64
}

func (l limited) ReadPassword(prompt string) ([]byte, error) {
	p, err := l.Terminal.ReadPassword(prompt)
	if int64(len(p)) > l.n {
		clear(p[l.n:])
		p = p[:l.n]
	}
	return p, err
}

// ReadKeyLine reads a passphrase piped on stdin: skip src.Offset bytes, then the bytes up to
// the first '\n' (not included). Without src.Size the line may hold up to luks.MaxKeyFileSize
// bytes (cryptsetup 2.6.1 takes a 3000-byte line whole) and a longer one is refused
// (luks.ErrKeyFileTooLarge, "Maximum keyfile size exceeded."); with src.Size exactly that
// many bytes are taken and a shorter line is refused (luks.ErrKeyFileShort, "Cannot read
// requested amount of data."), as cryptsetup does. End of input before any byte is
// ErrNothingToRead.
func ReadKeyLine(r io.Reader, src KeySource) ([]byte, error) {
	next := byteReader(r)
	for range src.Offset {
		if _, err := next(); err != nil {
			return nil, ErrNothingToRead
		}
	}
	limit := int64(luks.MaxKeyFileSize) + 1
	if src.Size > 0 {
		limit = src.Size
	}
	var p []byte
	sawAny := false
	for int64(len(p)) < limit {
		c, err := next()
		if err != nil {
			if errors.Is(err, io.EOF) && sawAny {
				break
			}
			clear(p)
			return nil, ErrNothingToRead
		}
		sawAny = true
		if c == '\n' {
			break
		}
		p = AppendSecret(p, c)
	}
	switch {
	case src.Size == 0 && int64(len(p)) > luks.MaxKeyFileSize:
		clear(p)
		return nil, fmt.Errorf("%w: %w (%d bytes)", luks.ErrInvalidParameter, luks.ErrKeyFileTooLarge, luks.MaxKeyFileSize)
	case src.Size > 0 && int64(len(p)) < src.Size:
		clear(p)
		return nil, fmt.Errorf("%w: %w (%d bytes)", luks.ErrInvalidParameter, luks.ErrKeyFileShort, src.Size)
	}
	return p, nil
}
