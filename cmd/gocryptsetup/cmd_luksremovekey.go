package main

import "github.com/cloudluks/cloudluks/luks"

var errLastSlotAborted = &cliError{code: exitPermission, msg: "Operation aborted, the keyslot was NOT wiped.\n"}

const lastSlotWarning = "This is the last keyslot. Device will become unusable after purging this key."

// cmdLuksRemoveKey destroys the key slot that the given passphrase (or key file, also as a
// positional argument) opens. Removing the last slot asks for confirmation on a terminal.
func cmdLuksRemoveKey(a *app, args []string) error {
	dev := args[0]
	if a.isLUKS2(dev) {
		return cmdLuksRemoveKey2(a, args)
	}
	f, _, err := a.loadHeader(dev, true)
	if err != nil {
		return err
	}
	hp := a.headerPath(dev)
	src := a.keyFromOptions()
	if len(args) > 1 {
		src.file = args[1]
	}
	vk, slot, h, err := a.unlockOnce(hp, f, "Enter passphrase to be deleted: ", src, nil)
	if err != nil {
		f.Close()
		return err
	}
	vk.Wipe()
	a.logVerbose("Key slot %d unlocked.", slot)
	if h.ActiveKeyslots() == 1 {
		if err := a.confirm(lastSlotWarning, errLastSlotAborted); err != nil {
			f.Close()
			return err
		}
	}
	a.logVerbose("Keyslot %d is selected for deletion.", slot)
	if err := syncClose(f, onDevice(hp, luks.KillSlot(f, slot))); err != nil {
		return err
	}
	a.logVerbose("Key slot %d removed.", slot)
	return nil
}
