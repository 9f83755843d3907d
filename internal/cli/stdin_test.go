package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStdinReaderWipes: after two passphrase lines are read through a StdinReader and Wipe
// is called, no byte of either line is left in the reader's buffer — the bufio.Reader it
// replaces kept the whole 4 KiB it read ahead.
func TestStdinReaderWipes(t *testing.T) {
	s := NewStdinReader(strings.NewReader("first-secret\nsecond-secret\nthird-read-ahead\n"))
	p1, err := ReadKeyLine(s, KeySource{})
	require.NoError(t, err)
	assert.Equal(t, "first-secret", string(p1))
	p2, err := ReadKeyLine(s, KeySource{})
	require.NoError(t, err)
	assert.Equal(t, "second-secret", string(p2))
	// What was handed out is already gone from the buffer; the rest goes with Wipe.
	assert.NotContains(t, string(s.buf), "first-secret")
	assert.NotContains(t, string(s.buf), "second-secret")
	assert.Contains(t, string(s.buf), "third-read-ahead", "read ahead, not yet consumed")
	assert.Equal(t, len("third-read-ahead\n"), s.Buffered())
	s.Wipe()
	assert.Equal(t, make([]byte, len(s.buf)), s.buf)
	assert.Zero(t, s.Buffered())
}

func TestStdinReaderReads(t *testing.T) {
	long := strings.Repeat("0123456789", 1000) // several buffer fills
	s := NewStdinReader(strings.NewReader(long))
	b, err := io.ReadAll(s)
	require.NoError(t, err)
	assert.Equal(t, long, string(b))
	_, err = s.ReadByte()
	assert.ErrorIs(t, err, io.EOF)
}

func TestReadFileLimit(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	require.NoError(t, os.WriteFile(ok, []byte("12345678"), 0o600))
	b, err := ReadFileLimit(context.Background(), ok, 8)
	require.NoError(t, err)
	assert.Equal(t, "12345678", string(b))

	_, err = ReadFileLimit(context.Background(), ok, 7)
	assert.ErrorIs(t, err, ErrFileTooLarge)

	// /dev/zero never ends: refused at the limit, not read until memory runs out.
	_, err = ReadFileLimit(context.Background(), "/dev/zero", 1<<20)
	assert.ErrorIs(t, err, ErrFileTooLarge)

	_, err = ReadFileLimit(context.Background(), filepath.Join(dir, "missing"), 8)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestReadFileLimitFIFOEndsOnCancel: opening a FIFO nobody writes to blocks in open(2); the
// read still ends as soon as the context (the program's signal context) is done.
func TestReadFileLimitFIFOEndsOnCancel(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() {
		_, err := ReadFileLimit(ctx, fifo, 1<<20)
		done <- err
	}()
	select {
	case err := <-done:
		assert.True(t, errors.Is(err, context.Canceled), "got %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("ReadFileLimit on a FIFO did not end after its context was cancelled")
	}
	// Let the abandoned open finish so the goroutine does not outlive the test.
	if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		w.Close()
	}
}
