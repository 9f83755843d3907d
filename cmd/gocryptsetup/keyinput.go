package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"

	"github.com/cloudluks/cloudluks/luks"
)

// keySource says where one passphrase comes from, with cryptsetup's key-file semantics.
type keySource struct {
	file   string // "" = terminal prompt or one line of stdin; "-" = all of stdin
	offset int64  // --keyfile-offset: bytes skipped first
	size   int64  // --keyfile-size: at most this many bytes (0 = no limit)
}

// maxPassphrase is cryptsetup's limit for interactive and line-read passphrases (512 chars).
const maxPassphrase = 512

var (
	errMismatch      = &cliError{code: 2, msg: "Passphrases do not match."}
	errNothingToRead = &cliError{code: 1, msg: "Nothing to read on input."}
	errKeyFileOpen   = &cliError{code: 1, msg: "Failed to open key file."}
	errTermOffset    = &cliError{code: 1, msg: "Cannot use offset with terminal input."}
)

// keyReadError words a failed key-file read as cryptsetup's crypt_keyfile_device_read does
// (all exit 1); nil (stdin gave an empty key) is "Nothing to read on input.".
func keyReadError(err error) error {
	switch {
	case err == nil, errors.Is(err, luks.ErrNothingToRead):
		return errNothingToRead
	case errors.Is(err, luks.ErrKeyFileOffset):
		return &cliError{code: exitParams, msg: "Cannot seek to requested keyfile offset."}
	case errors.Is(err, luks.ErrKeyFileTooLarge):
		return &cliError{code: exitParams, msg: "Maximum keyfile size exceeded."}
	case errors.Is(err, luks.ErrKeyFileShort):
		return &cliError{code: exitParams, msg: "Cannot read requested amount of data."}
	}
	// A directory, an I/O error: the read itself failed.
	return &cliError{code: exitParams, msg: "Error reading passphrase."}
}

// keyFromOptions is the existing-key source given by -d/--keyfile-offset/-l.
func (a *app) keyFromOptions() keySource {
	return keySource{file: a.opts.keyFile, offset: a.opts.keyfileOffset, size: a.opts.keyfileSize}
}

// newKeyFromPositional is the source of a new key given as a positional file argument
// (luksFormat DEVICE KEYFILE uses the normal offsets; luksAddKey/luksChangeKey NEW_KEY_FILE
// use --new-keyfile-offset/--new-keyfile-size).
func (a *app) newKeyFromPositional(path string) keySource {
	return keySource{file: path, offset: a.opts.newKeyfileOff, size: a.opts.newKeyfileSize}
}

// getKey obtains one passphrase as cryptsetup's tools_get_key does:
//   - a key file (not "-") is read whole, from offset, at most size bytes;
//   - "-" reads all of stdin the same way;
//   - otherwise, with a terminal on stdin, prompt without echo (and ask again to verify);
//   - otherwise read one line of stdin (up to, not including, the first '\n').
//
// The caller zeroes the returned slice.
func (a *app) getKey(prompt string, src keySource, verify bool) ([]byte, error) {
	switch src.file {
	case "":
	case "-":
		p, err := luks.ReadKey(a.stdin, src.offset, src.size)
		if err != nil || len(p) == 0 {
			clear(p)
			return nil, keyReadError(err)
		}
		return p, nil
	default:
		if _, err := os.Stat(src.file); err != nil {
			return nil, errKeyFileOpen
		}
		p, err := luks.ReadKeyFile(src.file, src.offset, src.size)
		if err != nil {
			return nil, keyReadError(err)
		}
		return p, nil
	}
	if a.term.StdinIsTerminal() {
		return a.promptKey(prompt, src, verify)
	}
	return readLineKey(a.stdin, src)
}

func (a *app) promptKey(prompt string, src keySource, verify bool) ([]byte, error) {
	if src.offset > 0 {
		return nil, errTermOffset
	}
	p, err := a.term.ReadPassword(prompt)
	if err != nil {
		clear(p)
		return nil, errNothingToRead
	}
	if len(p) > maxPassphrase {
		clear(p[maxPassphrase:])
		p = p[:maxPassphrase]
	}
	if src.size > 0 && int64(len(p)) > src.size {
		clear(p[src.size:])
		p = p[:src.size]
	}
	if verify {
		q, err := a.term.ReadPassword("Verify passphrase: ")
		same := err == nil && bytes.Equal(q, p)
		clear(q)
		if !same {
			clear(p)
			return nil, errMismatch
		}
	}
	return p, nil
}

// readLineKey reads a passphrase piped on stdin: skip offset bytes, then bytes up to the first
// newline (not included), at most size (or the interactive maximum). EOF before any byte is
// cryptsetup's "Nothing to read on input.".
func readLineKey(r *bufio.Reader, src keySource) ([]byte, error) {
	if src.offset > 0 {
		if _, err := io.CopyN(io.Discard, r, src.offset); err != nil {
			return nil, errNothingToRead
		}
	}
	limit := int64(maxPassphrase)
	if src.size > 0 {
		limit = src.size
	}
	p := make([]byte, 0, min(limit, 8192))
	sawAny := false
	for int64(len(p)) < limit {
		c, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && sawAny {
				break
			}
			clear(p)
			return nil, errNothingToRead
		}
		sawAny = true
		if c == '\n' {
			break
		}
		if len(p) == cap(p) {
			// Grow by hand (only with -l above 8192) so no unwiped copy stays behind.
			np := make([]byte, len(p), min(2*int64(cap(p)), limit))
			copy(np, p)
			clear(p)
			p = np
		}
		p = append(p, c)
	}
	return p, nil
}
