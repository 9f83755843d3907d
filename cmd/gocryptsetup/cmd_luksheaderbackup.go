package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cloudluks/cloudluks/luks"
)

var errNeedBackupFile = &cliError{code: exitParams, msg: "Option --header-backup-file is required."}

// cmdLuksHeaderBackup stores the header and key material in cryptsetup's backup format
// (a new file, mode 0400; an existing file is never overwritten).
func cmdLuksHeaderBackup(a *app, args []string) error {
	dev := args[0]
	file := a.opts.backupFile
	if file == "" {
		return errNeedBackupFile
	}
	f, _, err := a.loadHeader(dev, false)
	if err != nil {
		return detailOnly(err, true)
	}
	defer f.Close()
	exists := &cliError{code: exitParams, msg: fmt.Sprintf("Requested header backup file %s already exists.", file)}
	if _, err := os.Lstat(file); err == nil {
		return exists
	}
	if err := luks.BackupHeader(f, file); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return exists
		}
		return &cliError{code: exitParams, msg: fmt.Sprintf("Cannot create header backup file %s.", file)}
	}
	return nil
}

// cmdLuksHeaderRestore writes a backup over the device's header area, after cryptsetup's
// checks: the backup must hold a valid LUKS1 header, and a LUKS header already on the device
// must have the same payload offset and key size. On a terminal it asks first.
func cmdLuksHeaderRestore(a *app, args []string) error {
	dev := args[0]
	file := a.opts.backupFile
	if file == "" {
		return errNeedBackupFile
	}
	notCompatible := "Header backup file does not contain compatible LUKS header."
	bf, err := os.Open(file)
	if err != nil {
		return &cliError{code: exitParams, msg: fmt.Sprintf("Device %s does not exist or access denied.\n%s", file, notCompatible)}
	}
	bh, err := luks.ReadHeader(bf)
	bf.Close()
	if err != nil {
		return &cliError{code: exitParams, msg: notCompatible}
	}
	hp := a.headerPath(dev)
	f, err := openDevice(hp, true)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Device %s does not contain LUKS header. Replacing header can destroy data on that device.", hp)
	if dh, err := luks.ReadHeader(f); err == nil {
		if dh.PayloadOffset != bh.PayloadOffset || dh.KeyBytes != bh.KeyBytes {
			f.Close()
			return &cliError{code: exitParams, msg: "Data offset or key size differs on device and backup, restore failed."}
		}
		msg = fmt.Sprintf("Device %s already contains LUKS header. Replacing header will destroy existing keyslots.", hp)
		if dh.UUID != bh.UUID {
			msg += "\nWARNING: real device header has different UUID than backup!"
		}
	}
	if err := a.confirm(msg, &cliError{code: exitParams}); err != nil {
		f.Close()
		return err
	}
	return syncClose(f, onDevice(hp, luks.RestoreHeader(f, file)))
}
