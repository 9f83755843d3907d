package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// StdinReader buffers a program's standard input in a buffer it owns, so that the bytes of
// a passphrase line read through it can be wiped when the program is done: a bufio.Reader
// keeps every byte it buffered in an array nobody can clear. A program makes one StdinReader
// for its whole run, reads every passphrase and confirmation through it, and calls Wipe last.
type StdinReader struct {
	r    io.Reader
	buf  []byte
	r0   int // next unread byte in buf
	n    int // bytes of buf filled
	werr error
}

// NewStdinReader wraps r with a 4 KiB buffer.
func NewStdinReader(r io.Reader) *StdinReader {
	return &StdinReader{r: r, buf: make([]byte, 4096)}
}

func (s *StdinReader) fill() {
	if s.r0 == s.n {
		clear(s.buf[:s.n])
		s.r0, s.n = 0, 0
	}
	if s.werr != nil || s.n == len(s.buf) {
		return
	}
	for range 100 {
		n, err := s.r.Read(s.buf[s.n:])
		s.n += n
		if err != nil {
			s.werr = err
			return
		}
		if n > 0 {
			return
		}
	}
	s.werr = io.ErrNoProgress
}

// Read implements io.Reader.
func (s *StdinReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.r0 == s.n {
		s.fill()
		if s.r0 == s.n {
			err := s.werr
			s.werr = nil
			return 0, err
		}
	}
	n := copy(p, s.buf[s.r0:s.n])
	clear(s.buf[s.r0 : s.r0+n])
	s.r0 += n
	return n, nil
}

// ReadByte implements io.ByteReader; a line read byte by byte never takes more than it needs,
// so a second passphrase line stays for the next reader.
func (s *StdinReader) ReadByte() (byte, error) {
	if s.r0 == s.n {
		s.fill()
		if s.r0 == s.n {
			err := s.werr
			s.werr = nil
			return 0, err
		}
	}
	c := s.buf[s.r0]
	s.buf[s.r0] = 0
	s.r0++
	return c, nil
}

// Buffered is the number of bytes read from the underlying reader and not yet returned.
func (s *StdinReader) Buffered() int { return s.n - s.r0 }

// Wipe zeroes the buffer. Bytes already returned were cleared as they were handed out; Wipe
// also clears what was read ahead and never consumed.
func (s *StdinReader) Wipe() {
	clear(s.buf)
	s.r0, s.n = 0, 0
}

// ErrFileTooLarge is returned by ReadFileLimit for a file longer than its limit.
var ErrFileTooLarge = errors.New("file too large")

// ReadFileLimit reads the file at path whole, refusing one longer than limit bytes while it
// reads (a FIFO or /dev/zero has no size to check first), and gives up when ctx ends — the
// program's signal context — so that opening a FIFO nobody writes to, or reading one that
// never ends, does not outlive SIGTERM. The abandoned open or read finishes in the background.
func ReadFileLimit(ctx context.Context, path string, limit int64) ([]byte, error) {
	b, err := readUntil(ctx, func() ([]byte, error) { return readFileLimit(path, limit) })
	if err == errStopped {
		return nil, fmt.Errorf("%s: %w", path, ctx.Err())
	}
	return b, err
}

func readFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w (limit %d bytes)", path, ErrFileTooLarge, limit)
	}
	return b, nil
}
