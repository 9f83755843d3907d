package main

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"

	"github.com/cloudluks/cloudluks/luks"
)

// uuidPattern is what libuuid's uuid_parse accepts: 8-4-4-4-12 hex digits, any case.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

var errBadUUID = &cliError{code: exitParams, msg: "Wrong LUKS UUID format provided."}

// cmdLuksUUID prints the UUID, or with --uuid sets it (after the terminal confirmation).
func cmdLuksUUID(a *app, args []string) error {
	dev := args[0]
	if err := a.foreignType(dev); err != nil {
		return err
	}
	if !a.opts.set["uuid"] {
		f, h, err := a.loadMetadata(dev)
		if err != nil {
			return quietUnlessDevice(err)
		}
		f.Close()
		fmt.Fprintln(a.stdout, metadataUUID(h))
		return nil
	}
	if a.isLUKS2(dev) {
		return luksSetUUID2(a, dev)
	}
	// The device is checked first, as cryptsetup does.
	f, _, err := a.loadHeader(dev, true)
	if err != nil {
		return quietUnlessDevice(err)
	}
	if !uuidPattern.MatchString(a.opts.uuid) {
		f.Close()
		return errBadUUID
	}
	if err := a.confirm("Do you really want to change UUID of device?", &cliError{code: exitPermission, msg: "Operation aborted.\n"}); err != nil {
		f.Close()
		return err
	}
	return syncClose(f, onDevice(f.Name(), luks.SetUUID(f, a.opts.uuid)))
}

// luksSetUUID2 is luksUUID --uuid on LUKS2: the same checks and question, then both
// header copies get the new UUID.
func luksSetUUID2(a *app, dev string) error {
	f, _, err := a.loadHeader2(dev)
	if err != nil {
		return quietUnlessDevice(err)
	}
	if !uuidPattern.MatchString(a.opts.uuid) {
		f.Close()
		return errBadUUID
	}
	if err := a.confirm("Do you really want to change UUID of device?", &cliError{code: exitPermission, msg: "Operation aborted.\n"}); err != nil {
		f.Close()
		return err
	}
	return syncClose(f, onDevice(f.Name(), luks.SetUUIDLUKS2(f, a.opts.uuid, nil)))
}

// quietUnlessDevice keeps device errors (exit 4 with a message) and reduces "not LUKS" to
// libcryptsetup's own line about the header, if any, with exit 1, as luksUUID does.
func quietUnlessDevice(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, errNotCompatible) {
		return err
	}
	if d := detailOnly(err, false); d != err {
		return d
	}
	return &cliError{code: exitParams}
}
