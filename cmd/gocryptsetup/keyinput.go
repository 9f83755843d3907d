package main

import (
	"errors"

	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/luks"
)

// keySource says where one passphrase comes from, with cryptsetup's key-file semantics
// (cli.KeySource with the option names of this program).
type keySource struct {
	file   string // "" = terminal prompt or one line of stdin; "-" = all of stdin
	offset int64  // --keyfile-offset: bytes skipped first
	size   int64  // --keyfile-size: at most this many bytes (0 = no limit)
}

func (s keySource) cli() cli.KeySource {
	return cli.KeySource{File: s.file, Offset: s.offset, Size: s.size}
}

var (
	errMismatch      = &cliError{code: 2, msg: cli.ErrPassphraseMismatch.Error()}
	errNothingToRead = &cliError{code: 1, msg: cli.ErrNothingToRead.Error()}
	errKeyFileOpen   = &cliError{code: 1, msg: cli.ErrKeyFileOpen.Error()}
	errTermOffset    = &cliError{code: 1, msg: cli.ErrTerminalOffset.Error()}
)

// keyReadError words a failed passphrase read as cryptsetup does (crypt_keyfile_device_read
// and tools_get_key): exit 2 for a verify mismatch, 1 for everything else.
func keyReadError(err error) error {
	switch {
	case errors.Is(err, cli.ErrPassphraseMismatch):
		return errMismatch
	case errors.Is(err, cli.ErrNothingToRead), errors.Is(err, luks.ErrNothingToRead):
		return errNothingToRead
	case errors.Is(err, cli.ErrKeyFileOpen):
		return errKeyFileOpen
	case errors.Is(err, cli.ErrTerminalOffset):
		return errTermOffset
	case errors.Is(err, cli.ErrTerminalRead):
		// Interrupted at the prompt (SIGINT/SIGTERM): cryptsetup's words and exit code 1.
		return &cliError{code: exitParams, msg: string(cli.ErrTerminalRead)}
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

// getKey obtains one passphrase as cryptsetup's tools_get_key does (see cli.KeyInput.Read);
// verify asks twice at a terminal. The caller zeroes the returned slice.
func (a *app) getKey(prompt string, src keySource, verify bool) ([]byte, error) {
	p, err := cli.KeyInput{Stdin: a.stdin, Term: a.term, Ctx: a.ctx}.Read(prompt, src.cli(), verify)
	if err != nil {
		return nil, keyReadError(err)
	}
	return p, nil
}
