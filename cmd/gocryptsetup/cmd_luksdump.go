package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/cloudluks/cloudluks/luks"
)

// cmdLuksDump prints the header exactly as cryptsetup luksDump does (line 1 names the header
// device as typed). --dump-volume-key (alias --dump-master-key) unlocks a key slot and prints
// the volume key instead; --dump-json-metadata prints a LUKS2 header's JSON; with --volume-key-file the key goes to that file (mode 0400).
// --disable-external-tokens leaves out the lines systemd's token plugins add.
func cmdLuksDump(a *app, args []string) error {
	dev := args[0]
	hp := a.headerPath(dev)
	f, h, err := a.loadMetadata(dev)
	if err != nil {
		return err
	}
	defer f.Close()
	if !a.opts.dumpVolumeKey && a.opts.dumpJSON {
		// cryptsetup's crypt_dump_json knows LUKS2 only; --dump-volume-key wins over it.
		h2, ok := h.(*luks.Header2)
		if !ok {
			return &cliError{code: exitParams, msg: "Dump operation is not supported for this device type."}
		}
		return onDevice(hp, h2.DumpJSON(a.stdout))
	}
	if !a.opts.dumpVolumeKey {
		if h2, ok := h.(*luks.Header2); ok {
			return onDevice(hp, h2.DumpWith(a.stdout, hp, luks.DumpOptions{DisableExternalTokens: a.opts.noExtTokens}))
		}
		return onDevice(hp, h.Dump(a.stdout, hp))
	}
	if err := a.confirm("The header dump with volume key is sensitive information\n"+
		"that allows access to encrypted partition without a passphrase.\n"+
		"This dump should be stored encrypted in a safe place.", &cliError{code: exitPermission}); err != nil {
		return err
	}
	vk, slot, h, err := a.unlockAny(hp, f, passPrompt(dev), a.keyFromOptions(), a.slotOption(), 1)
	if err != nil {
		return err
	}
	defer vk.Wipe()
	a.logVerbose("Key slot %d unlocked.", slot)

	// Line 1 names the device holding the header (with --header, the header file), as
	// cryptsetup 2.6.1 prints it.
	if a.opts.volumeKeyFile == "" {
		return dumpVolumeKey(a.stdout, hp, h, vk)
	}
	if err := writeVolumeKeyFile(a.opts.volumeKeyFile, vk); err != nil {
		return err
	}
	// The file variant prints the same header lines, then names the file instead of the key.
	var buf bytes.Buffer
	if err := dumpVolumeKey(&buf, hp, h, vk); err != nil {
		return err
	}
	// Work on the bytes, not a string copy, so the hex key can be wiped.
	b := buf.Bytes()
	defer clear(b)
	if i := bytes.Index(b, []byte("MK dump:")); i >= 0 {
		b = b[:i:i]
	}
	a.stdout.Write(b)
	fmt.Fprintf(a.stdout, "Key stored to file %s.\n", a.opts.volumeKeyFile)
	return nil
}

// writeVolumeKeyFile creates path (which must not exist) with mode 0400 and the raw key.
func writeVolumeKeyFile(path string, vk *luks.VolumeKey) error {
	fail := &cliError{code: exitParams, msg: fmt.Sprintf("Cannot open keyfile %s for write.", path)}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if err != nil {
		return fail
	}
	if _, err := f.Write(vk.Bytes()); err != nil {
		f.Close()
		return &cliError{code: exitParams, msg: fmt.Sprintf("Cannot write to keyfile %s.", path)}
	}
	return syncClose(f, nil)
}
