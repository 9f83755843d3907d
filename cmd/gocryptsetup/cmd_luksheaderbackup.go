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
	lk2 := a.holdsLUKS2(dev)
	var f *os.File
	var err error
	if lk2 {
		var h luks.Metadata
		typ := a.opts.typ
		a.opts.typ = "" // cryptsetup backs up either version whatever --type says
		f, h, err = a.loadMetadata(dev)
		a.opts.typ = typ
		if err == nil && h.LUKSVersion() != 2 {
			f.Close()
			lk2 = false
		}
	}
	if !lk2 {
		f, _, err = a.loadHeader(dev, false)
	}
	if err != nil {
		return detailOnly(err, true)
	}
	defer f.Close()
	exists := &cliError{code: exitParams, msg: fmt.Sprintf("Requested header backup file %s already exists.", file)}
	if _, err := os.Lstat(file); err == nil {
		return exists
	}
	backup := luks.BackupHeader
	if lk2 {
		backup = luks.BackupHeader2
	}
	if err := backup(f, file); err != nil {
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
	if luks.Version(bf) == 2 {
		defer bf.Close()
		return cmdLuksHeaderRestore2(a, dev, file, bf)
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
	if luks.Version(f) == 2 {
		// The LUKS1 loader's complaint about the device; the restore goes on.
		fmt.Fprintln(a.stderr, "Unsupported LUKS version 2.")
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
	if err := syncClose(f, onDevice(hp, luks.RestoreHeader(f, file))); err != nil {
		return err
	}
	// libcryptsetup reloads the restored LUKS1 header with its repair check.
	a.logVerbose("No known problems detected for LUKS header.")
	return nil
}

// cmdLuksHeaderRestore2 is luksHeaderRestore of a LUKS2 backup (LUKS2_hdr_restore): the
// backup must load as LUKS2 with no requirement but an online reencryption; a LUKS2 header
// on the device must have the backup's data offset and header-and-areas size unless it is
// in an offline reencryption; then the question (with cryptsetup's warnings for the
// device's requirements), then the write.
func cmdLuksHeaderRestore2(a *app, dev, file string, bf *os.File) error {
	bh, err := luks.ReadHeader2(bf)
	if err != nil {
		msg := "Backup file does not contain valid LUKS header."
		if m := luks2SizeInError.FindStringSubmatch(err.Error()); m != nil && errors.Is(err, luks.ErrDeviceTooSmall) {
			msg = fmt.Sprintf("Device %s is too small. Need at least %s bytes.\n%s", file, m[1], msg)
		}
		return &cliError{code: exitParams, msg: msg}
	}
	if bh.UnmetRequirements(true) != nil {
		return &cliError{code: exitParams, msg: fmt.Sprintf("Forbidden LUKS2 requirements detected in backup %s.", file)}
	}
	hp := a.headerPath(dev)
	f, err := openDevice(hp, true)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Device %s does not contain LUKS2 header. Replacing header can destroy data on that device.", hp)
	if dh, err := luks.ReadHeader2(f); err == nil {
		// An unfinished offline reencryption may have moved the data: cryptsetup then
		// skips the layout checks and warns instead.
		switch legacy := dh.LegacyReencryption(); {
		case !legacy && dh.DataOffset() != bh.DataOffset():
			f.Close()
			return &cliError{code: exitParams, msg: "Data offset differ on device and backup, restore failed."}
		case !legacy && dh.AreasSize() != bh.AreasSize():
			f.Close()
			return &cliError{code: exitParams, msg: "Binary header with keyslot areas size differ on device and backup, restore failed."}
		}
		msg = fmt.Sprintf("Device %s already contains LUKS2 header. Replacing header will destroy existing keyslots.", hp)
		if dh.UUID != bh.UUID {
			msg += "\nWARNING: real device header has different UUID than backup!"
		}
		if dh.UnknownRequirements() {
			msg += "\nWARNING: unknown LUKS2 requirements detected in real device header!" +
				"\nReplacing header with backup may corrupt the data on that device!"
		}
		if dh.LegacyReencryption() {
			msg += "\nWARNING: Unfinished offline reencryption detected on the device!" +
				"\nReplacing header with backup may corrupt data."
		}
	}
	if err := a.confirm(msg, &cliError{code: exitParams}); err != nil {
		f.Close()
		return err
	}
	return syncClose(f, onDevice(hp, luks.RestoreHeader2(f, file)))
}
