package main

import (
	"errors"
	"io/fs"
)

// cmdIsLuks: exit 0 for a valid LUKS header (LUKS1 or LUKS2, or only the --type asked
// for), 1 (silently) for anything else that is a readable device, 4 with a message for a
// missing or incompatible path. cryptsetup performs the full header load, so a damaged
// header also answers 1; a LUKS2 header with one good copy answers 0.
func cmdIsLuks(a *app, args []string) error {
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
