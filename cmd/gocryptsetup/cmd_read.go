package main

import (
	"fmt"
	"io"

	"github.com/cloudluks/cloudluks/luks"
)

// readVerbHelp is read's line in --help: the units are in the option names because
// cryptsetup's -o/--offset and -b/--size count 512-byte sectors.
const readVerbHelp = "write decrypted payload bytes to stdout, from --offset-bytes N (default 0), " +
	"--size-bytes N bytes (default, or 0: to the end of the payload)"

// cmdRead (extension) unlocks the device and copies decrypted payload bytes to stdout:
// from --offset-bytes (default 0), --size-bytes bytes (absent or 0: to the end, as 0 means
// "all" for cryptsetup's --size and --keyfile-size). No device-mapper, no root: the luks
// userspace volume does the decryption.
func cmdRead(a *app, args []string) error {
	if err := checkByteOptions(a.opts, "read"); err != nil {
		return err
	}
	vol, done, err := a.openVolume(args[0], false)
	if err != nil {
		return err
	}
	defer done()
	off := a.opts.offsetBytes
	if off > vol.Size() {
		return &cliError{code: exitParams, msg: fmt.Sprintf("Offset %d is beyond the end of the payload (%d bytes).", off, vol.Size())}
	}
	n := vol.Size() - off
	if s := a.opts.sizeBytes; s > 0 {
		if s > n {
			return &cliError{code: exitParams, msg: fmt.Sprintf("Requested %d bytes at offset %d, but the payload has %d bytes.", s, off, vol.Size())}
		}
		n = s
	}
	_, err = io.Copy(a.stdout, io.NewSectionReader(vol, off, n))
	return err
}

// checkByteOptions refuses cryptsetup's sector-unit -o/--offset and -b/--size on read and
// write, which once meant bytes here: reinterpreting them as sectors would silently read or
// overwrite a place 512 times further into the payload. It runs before the passphrase.
func checkByteOptions(o *options, action string) error {
	for _, n := range []struct{ long, short, bytes string }{{"offset", "o", "offset-bytes"}, {"size", "b", "size-bytes"}} {
		if o.set[n.long] {
			return &usageError{msg: fmt.Sprintf("Option -%s/--%s counts 512-byte sectors in cryptsetup; %s takes --%s in bytes.", n.short, n.long, action, n.bytes)}
		}
	}
	return nil
}

// openVolume unlocks DEVICE (header from --header when given) and returns the userspace
// volume over its payload and a function that wipes the key and closes the files.
func (a *app) openVolume(dev string, write bool) (*luks.Volume, func() error, error) {
	hp := a.headerPath(dev)
	hf, _, err := a.loadHeader(dev, false)
	if err != nil {
		return nil, nil, err
	}
	vk, slot, h, err := a.unlock(hp, hf, passPrompt(dev), a.keyFromOptions(), a.slotOption())
	hf.Close()
	if err != nil {
		return nil, nil, err
	}
	a.logVerbose("Key slot %d unlocked.", slot)
	data, err := openDevice(dev, write)
	if err != nil {
		vk.Wipe()
		return nil, nil, err
	}
	vol, err := luks.NewVolume(data, h, vk)
	vk.Wipe()
	if err != nil {
		data.Close()
		return nil, nil, onDevice(dev, err)
	}
	done := func() error {
		vol.Close()
		if write {
			return syncClose(data, nil)
		}
		return data.Close()
	}
	return vol, done, nil
}
