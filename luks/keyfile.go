package luks

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxKeyFileSize is cryptsetup's limit for a key file read without --keyfile-size
// (DEFAULT_KEYFILE_SIZE_MAXKB = 8192 KiB).
const MaxKeyFileSize = 8192 * 1024

// MaxKeyFileSizeLimit is the largest explicit size ReadKey and ReadKeyFile accept: cryptsetup
// parses --keyfile-size into a uint32, so it never reads more than 4 GiB - 1 bytes of key; a
// larger size is refused before anything is read, which also bounds the memory an endless
// source (/dev/zero, a pipe) can make the reader allocate.
const MaxKeyFileSizeLimit = 1<<32 - 1

// ReadKeyFile reads a key file the way cryptsetup does for -d FILE with --keyfile-offset
// and --keyfile-size (crypt_keyfile_device_read): offset bytes are skipped; with size 0 the
// rest of the file is the key, newlines included, up to MaxKeyFileSize (a longer file is
// refused: "Maximum keyfile size exceeded.", ErrKeyFileTooLarge); with size > 0 exactly size
// bytes are read ("Cannot read requested amount of data.", ErrKeyFileShort, otherwise). An
// offset beyond the end of a regular file is refused ("Cannot seek to requested keyfile
// offset.", ErrKeyFileOffset), and so is a size above MaxKeyFileSizeLimit. "-" for stdin is
// the caller's job: use ReadKey(os.Stdin, ...). Errors wrap ErrInvalidParameter.
func ReadKeyFile(path string, offset int64, size int64) ([]byte, error) {
	if err := checkKeyRange(offset, size); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: failed to open key file: %w", ErrInvalidParameter, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: failed to stat key file: %w", ErrInvalidParameter, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%w: key file %s is a directory", ErrInvalidParameter, path)
	}
	regular := fi.Mode().IsRegular()
	if regular && offset > fi.Size() {
		return nil, fmt.Errorf("%w: %w %d (file has %d bytes)", ErrInvalidParameter, ErrKeyFileOffset, offset, fi.Size())
	}
	avail := int64(-1)
	if regular {
		avail = fi.Size() - offset
	}
	return readKey(f, offset, size, avail)
}

// ReadKey is ReadKeyFile for a stream such as stdin (cryptsetup -d -): skipping past the end
// or reading nothing at all is an error ("Nothing to read on input.", ErrNothingToRead).
func ReadKey(r io.Reader, offset int64, size int64) ([]byte, error) {
	if err := checkKeyRange(offset, size); err != nil {
		return nil, err
	}
	return readKey(r, offset, size, -1)
}

func checkKeyRange(offset, size int64) error {
	if offset < 0 || size < 0 {
		return fmt.Errorf("%w: key file offset %d / size %d", ErrInvalidParameter, offset, size)
	}
	if size > MaxKeyFileSizeLimit {
		return fmt.Errorf("%w: key file size %d above the maximum %d", ErrInvalidParameter, size, int64(MaxKeyFileSizeLimit))
	}
	return nil
}

// readKey reads the key after skipping offset bytes. avail is what a regular file holds
// past the offset, -1 for a stream. Memory: a key of explicit size is read into one buffer
// allocated once — exactly size bytes for a stream (as cryptsetup does), no more than the
// file holds for a regular file — so a 2 GiB key costs 2 GiB, not the 3-6 GiB a growing
// buffer and its copies would; without a size the buffer grows up to MaxKeyFileSize.
func readKey(r io.Reader, offset, size, avail int64) ([]byte, error) {
	regular := avail >= 0
	if offset > 0 {
		// A pipe that ends inside the offset cannot be "seeked" (cryptsetup reads it away
		// and says so); one that ends exactly there has nothing to read, below.
		skipped, err := skip(r, offset)
		if err != nil || skipped < offset {
			return nil, fmt.Errorf("%w: %w %d", ErrInvalidParameter, ErrKeyFileOffset, offset)
		}
	}
	unlimited := size == 0
	want := size
	if unlimited {
		want = MaxKeyFileSize + 1
	}
	var buf []byte
	switch {
	case unlimited:
		buf = make([]byte, 0, min(want, 4096))
	case regular:
		buf = make([]byte, 0, min(want, avail))
	default:
		buf = make([]byte, 0, want)
	}
	chunk := make([]byte, 4096)
	defer clear(chunk)
	for int64(len(buf)) < want {
		n, err := r.Read(chunk[:min(int64(len(chunk)), want-int64(len(buf)))])
		if len(buf)+n > cap(buf) {
			// Only without a size, or for a regular file that grew while read: never more
			// than want.
			nb := make([]byte, len(buf), min(int64(2*cap(buf)+n), want))
			copy(nb, buf)
			clear(buf)
			buf = nb
		}
		buf = append(buf, chunk[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			clear(buf)
			return nil, fmt.Errorf("%w: error reading passphrase: %w", ErrInvalidParameter, err)
		}
	}
	switch {
	case len(buf) == 0 && !regular:
		return nil, fmt.Errorf("%w: %w", ErrInvalidParameter, ErrNothingToRead)
	case unlimited && int64(len(buf)) == want:
		clear(buf)
		return nil, fmt.Errorf("%w: %w (%d bytes)", ErrInvalidParameter, ErrKeyFileTooLarge, MaxKeyFileSize)
	case !unlimited && int64(len(buf)) != size:
		clear(buf)
		return nil, fmt.Errorf("%w: %w (%d bytes)", ErrInvalidParameter, ErrKeyFileShort, size)
	}
	return buf, nil
}

// skip discards n bytes, seeking when r can seek (regular files), reading otherwise (pipes).
func skip(r io.Reader, n int64) (int64, error) {
	if s, ok := r.(io.Seeker); ok {
		if _, err := s.Seek(n, io.SeekCurrent); err == nil {
			return n, nil
		}
	}
	return io.CopyN(io.Discard, r, n)
}
