package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/cloudluks/cloudluks/luks"
)

// cmdLuksKillSlot destroys key slot N. Unless -q is given on a terminal (or with a key file or
// piped stdin) it first asks for any remaining passphrase and checks it, like cryptsetup; when
// piped stdin holds nothing, cryptsetup prints "Nothing to read on input." and wipes the slot
// anyway, and so does this.
func cmdLuksKillSlot(a *app, args []string) error {
	dev := args[0]
	// cryptsetup reads the slot with atoi, so "x" or "1x" would name slot 0 or 1; a key slot
	// is never destroyed on a typo here.
	slot, err := strconv.Atoi(args[1])
	if err != nil || slot < 0 {
		return &cliError{code: exitParams, msg: fmt.Sprintf("Key slot %s is invalid, please select between 0 and 7.", args[1])}
	}
	f, h, err := a.loadHeader(dev, true)
	if err != nil {
		return err
	}
	if slot >= luks.NumKeyslots {
		// cryptsetup fails here without a message (libcryptsetup's -EINVAL).
		f.Close()
		return &cliError{code: exitParams}
	}
	hp := a.headerPath(dev)
	if !h.Keyslots[slot].Enabled() {
		f.Close()
		return &cliError{code: exitParams, msg: fmt.Sprintf("Keyslot %d is not active.", slot)}
	}
	a.logVerbose("Keyslot %d is selected for deletion.", slot)
	if !a.opts.batch || a.opts.keyFile != "" || !a.term.IsTerminal() {
		if h.ActiveKeyslots() == 1 {
			if err := a.confirm(lastSlotWarning, errLastSlotAborted); err != nil {
				f.Close()
				return err
			}
		}
		vk, unlocked, _, err := a.unlockOnce(hp, f, "Enter any remaining passphrase: ", a.keyFromOptions(), nil)
		switch {
		case errors.Is(err, errNothingToRead) && (a.opts.keyFile == "" || a.opts.keyFile == "-"):
			fmt.Fprintln(a.stderr, errNothingToRead.msg)
		case err != nil:
			f.Close()
			return err
		default:
			vk.Wipe()
			a.logVerbose("Key slot %d unlocked.", unlocked)
		}
	}
	if err := syncClose(f, onDevice(hp, luks.KillSlot(f, slot))); err != nil {
		return err
	}
	a.logVerbose("Key slot %d removed.", slot)
	return nil
}
