package main

import (
	"fmt"
	"io"
)

// cmdWrite (extension) encrypts stdin into the payload of DEVICE at --offset bytes. Without a
// key file the passphrase is the first line of stdin (or a terminal prompt) and the data
// follows it. Input longer than the room left in the payload is an error; the chunk that would
// cross the end (1 MiB reads) is not written.
func cmdWrite(a *app, args []string) error {
	vol, done, err := a.openVolume(args[0], true)
	if err != nil {
		return err
	}
	off := a.opts.offset
	if off > vol.Size() {
		done()
		return &cliError{code: exitParams, msg: fmt.Sprintf("Offset %d is beyond the end of the payload (%d bytes).", off, vol.Size())}
	}
	w := io.NewOffsetWriter(vol, off)
	room := vol.Size() - off
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
