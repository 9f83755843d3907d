package main

import (
	"errors"
	"io/fs"
)

// cmdIsLuks: exit 0 for a valid LUKS header (LUKS1 or LUKS2, or only the --type asked
// for), 1 (silently) for anything else that is a readable device, 4 with a message for a
// missing or incompatible path. cryptsetup performs the full header load, so a damaged
// header also answers 1; a LUKS2 header with one good copy answers 0.
// foreignType is crypt_load of a --type that is not LUKS (plain, tcrypt…): after the
// device is found, exit 1 without a message.
func (a *app) foreignType(device string) error {
	switch a.opts.typ {
	case "", "luks", "luks1", "luks2":
		return nil
	}
	f, err := openDevice(a.headerPath(device), false)
	if err != nil {
		return err
	}
	f.Close()
	return &cliError{code: exitParams}
}

func cmdIsLuks(a *app, args []string) error {
	if err := a.foreignType(args[0]); err != nil {
		return err
	}
	f, _, err := a.loadMetadata(args[0])
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, errNotCompatible) {
			return err
		}
		return &cliError{code: exitParams} // isLuks loads quietly: no message at all
	}
	f.Close()
	return nil
}
