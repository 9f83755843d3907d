package main

import (
	"fmt"
	"io"
	"os"
)

// writeVerbHelp is write's line in --help, with what a pipe larger than the payload does.
const writeVerbHelp = "encrypt stdin into the payload at --offset-bytes N (default 0); " +
	"input from a regular file that does not fit is refused before anything is written; " +
	"from a pipe, whose size is unknown, 1 MiB chunks are written until one would cross the end " +
	"of the payload, then it fails with \"Input does not fit\" and what was written stays written"

// cmdWrite (extension) encrypts stdin into the payload of DEVICE at --offset-bytes. Without a
// key file the passphrase is the first line of stdin (or a terminal prompt) and the data
// follows it. When stdin is a regular file its size is known, and input longer than the room
// left in the payload is refused before anything is written. From a pipe the size is not
// known: the payload is written up to the 1 MiB chunk that would cross the end, then the
// command fails with "Input does not fit" and what was written stays written.
func cmdWrite(a *app, args []string) error {
	if err := checkByteOptions(a.opts, "write"); err != nil {
		return err
	}
	vol, done, err := a.openVolume(args[0], true)
	if err != nil {
		return err
	}
	off := a.opts.offsetBytes
	if off > vol.Size() {
		done()
		return &cliError{code: exitParams, msg: fmt.Sprintf("Offset %d is beyond the end of the payload (%d bytes).", off, vol.Size())}
	}
	w := io.NewOffsetWriter(vol, off)
	room := vol.Size() - off
	if n, ok := a.stdinRemaining(); ok && n > room {
		done()
		return &cliError{code: exitParams, msg: fmt.Sprintf("Input does not fit: %d bytes of input, %d bytes left in the payload after offset %d. Nothing written.", n, room, off)}
	}
	buf := make([]byte, 1<<20)
	var total int64
	for {
		n, rerr := io.ReadFull(a.stdin, buf)
		if n > 0 {
			if total+int64(n) > room {
				done()
				return &cliError{code: exitParams, msg: fmt.Sprintf("Input does not fit: %d bytes left in the payload after offset %d.", room, off)}
			}
			if _, err := w.Write(buf[:n]); err != nil {
				done()
				return err
			}
			total += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			done()
			return rerr
		}
	}
	a.logVerbose("%d bytes written.", total)
	return done()
}

// stdinRemaining is how many bytes are left to read on stdin when it is a regular file: the
// file's size less what has been consumed from it, plus what the passphrase read left
// buffered.
func (a *app) stdinRemaining() (int64, bool) {
	f, ok := a.rawIn.(*os.File)
	if !ok {
		return 0, false
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, false
	}
	return fi.Size() - pos + int64(a.stdin.Buffered()), true
}
