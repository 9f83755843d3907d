package main

import (
	"fmt"
	"io"

	"github.com/cloudluks/cloudluks/luks"
)

// cmdRead (extension) unlocks the device and copies decrypted payload bytes to stdout:
// from --offset (bytes into the payload, default 0), --size bytes (default: to the end).
// No device-mapper, no root: the luks userspace volume does the decryption.
func cmdRead(a *app, args []string) error {
	vol, done, err := a.openVolume(args[0], false)
	if err != nil {
		return err
	}
	defer done()
	off, n := a.opts.offset, vol.Size()-a.opts.offset
	if off > vol.Size() {
		return &cliError{code: exitParams, msg: fmt.Sprintf("Offset %d is beyond the end of the payload (%d bytes).", off, vol.Size())}
	}
	if a.opts.set["size"] {
		if a.opts.size > n {
			return &cliError{code: exitParams, msg: fmt.Sprintf("Requested %d bytes at offset %d, but the payload has %d bytes.", a.opts.size, off, vol.Size())}
		}
		n = a.opts.size
	}
	_, err = io.Copy(a.stdout, io.NewSectionReader(vol, off, n))
	return err
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
