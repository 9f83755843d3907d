package main

import (
	"errors"
	"fmt"

	"github.com/cloudluks/cloudluks/dmcrypt"
	"github.com/cloudluks/cloudluks/luks"
)

// openMapping is "open DEVICE NAME" without --test-passphrase: unlock the header and create
// the dm-crypt mapping /dev/mapper/NAME for DEVICE through the dmcrypt package (an image file
// gets an autoclear loop device first, as with cryptsetup).
func openMapping(a *app, device, name string) error {
	// cryptsetup's order: the device and its header first (exit 4 / 1), then device-mapper
	// and the name (OpenWith checks them before it calls the unlock function) — here before
	// the passphrase is asked for rather than after.
	f, hm, err := a.loadMetadata(device)
	if err != nil {
		return err
	}
	defer f.Close()
	o := a.opts
	var slot int
	var unlocked bool
	var unlockErr error
	_, err = dmcrypt.OpenWithAny(a.ctx, device, name, func() (luks.Metadata, *luks.VolumeKey, int, error) {
		unlocked = true
		src := a.keyFromOptions()
		if h, ok := hm.(*luks.Header2); ok {
			logNoUsableToken(a, h)
		}
		vk, s, h, err := a.unlockAny(a.headerPath(device), f, passPrompt(device), src, a.slotOption(), a.unlockTriesFor(src))
		slot, unlockErr = s, err
		return h, vk, s, err
	}, dmcrypt.OpenOptions{
		Header:              o.header,
		ReadOnly:            o.readonly,
		AllowDiscards:       o.allowDiscards,
		SameCPUCrypt:        o.perfSameCPUCrypt,
		SubmitFromCryptCPUs: o.perfSubmitFromCrypt,
		NoReadWorkqueue:     o.perfNoReadWQ,
		NoWriteWorkqueue:    o.perfNoWriteWQ,
	})
	switch {
	case err != nil && unlockErr != nil:
		return unlockErr
	case err != nil:
		merr := mappingError(name, device, err)
		var ce *cliError
		if !unlocked && errors.As(merr, &ce) && ce.code == exitParams && !errors.Is(err, dmcrypt.ErrInvalidName) {
			// cryptsetup's activation adds this line after the device-mapper message.
			ce.msg += fmt.Sprintf("\nCannot use device %s, name is invalid or still in use.", name)
		}
		return merr
	}
	a.logVerbose("Key slot %d unlocked.", slot)
	return nil
}

// mappingError turns dmcrypt's sentinels into cryptsetup's messages and exit codes
// (lib/libdevmapper.c, lib/setup.c of cryptsetup 2.6). Other errors (luks ones) go through
// exitStatus unchanged.
func mappingError(name, device string, err error) error {
	switch {
	case errors.Is(err, dmcrypt.ErrNotRoot):
		return &cliError{code: exitParams, msg: "Cannot initialize device-mapper, running as non-root user."}
	case errors.Is(err, dmcrypt.ErrNoDeviceMapper), errors.Is(err, dmcrypt.ErrUnsupported):
		return &cliError{code: exitParams, msg: "Cannot initialize device-mapper. Is dm_mod kernel module loaded?"}
	case errors.Is(err, dmcrypt.ErrExists):
		return &cliError{code: exitBusy, msg: fmt.Sprintf("Device %s already exists.", name)}
	case errors.Is(err, dmcrypt.ErrNotFound):
		return &cliError{code: exitDevice, msg: fmt.Sprintf("Device %s is not active.", name)}
	case errors.Is(err, dmcrypt.ErrBusy):
		return &cliError{code: exitBusy, msg: fmt.Sprintf("Device %s is still in use.", name)}
	case errors.Is(err, dmcrypt.ErrNoDevice):
		return &cliError{code: exitDevice, msg: fmt.Sprintf("Device %s does not exist or access denied.", device)}
	case errors.Is(err, dmcrypt.ErrInvalidName):
		return &cliError{code: exitParams, msg: fmt.Sprintf("Device name %s is not valid.", name)}
	}
	return onDevice(device, err)
}
