package main

import (
	"fmt"
	"time"

	"github.com/cloudluks/cloudluks/luks"
)

// addKeyOptions are the PBKDF2 settings for a new key slot (-i or --pbkdf-force-iterations).
func (a *app) addKeyOptions(slot *int) luks.AddKeyOptions {
	o := luks.AddKeyOptions{Keyslot: slot, ForceIterations: uint32(a.opts.forceIterations)}
	if a.opts.set["iter-time"] {
		o.IterTime = time.Duration(a.opts.iterTime) * time.Millisecond
	}
	return o
}

func (a *app) checkForceIterations() error {
	if a.opts.set["pbkdf-force-iterations"] && a.opts.forceIterations < 1000 {
		return &cliError{code: exitParams, msg: "Forced iteration count is too low for pbkdf2 (minimum is 1000).\nFailed to set pbkdf parameters."}
	}
	return nil
}

// cmdLuksAddKey adds a passphrase: the existing one (-d/-l/--keyfile-offset or prompt) is
// verified first, then the new one is read (positional NEW_KEY_FILE or prompt, verified on a
// terminal) into the first free slot or -S.
func cmdLuksAddKey(a *app, args []string) error {
	dev := args[0]
	_, _, warn := a.addKeySlots()
	if warn {
		// Printed before the device is even opened, as cryptsetup does.
		a.logStd("WARNING: The --key-slot parameter is used for new keyslot number.")
	}
	if a.isLUKS2(dev) {
		return cmdLuksAddKey2(a, args)
	}
	if err := a.checkPBKDF1(); err != nil {
		return err
	}
	f, h, err := a.loadHeader(dev, true)
	if err != nil {
		return err
	}
	if err := a.checkKeyslotCipher(false); err != nil {
		f.Close()
		return err
	}
	hp := a.headerPath(dev)
	_, newSlot, _ := a.addKeySlots() // nil: the first free slot
	if newSlot != nil {
		switch n := *newSlot; {
		case n >= luks.NumKeyslots:
			f.Close()
			return &cliError{code: exitParams, msg: fmt.Sprintf("Key slot %d is invalid, please select between 0 and 7.", n)}
		case h.Keyslots[n].Enabled():
			f.Close()
			return &cliError{code: exitParams, msg: fmt.Sprintf("Key slot %d is full, please select another one.", n)}
		}
	} else if h.ActiveKeyslots() == luks.NumKeyslots {
		f.Close()
		return luks.ErrNoFreeKeyslot
	}
	vk, slot, _, err := a.unlockOnce(hp, f, "Enter any existing passphrase: ", a.keyFromOptions(), nil)
	if err != nil {
		f.Close()
		return err
	}
	defer vk.Wipe()
	if a.opts.keyFile == "" {
		// cryptsetup reports the slot only when it asked for a passphrase, not for -d.
		a.logVerbose("Key slot %d unlocked.", slot)
	}

	src := a.newKeySource(args)
	newPass, err := a.getKey("Enter new passphrase for key slot: ", src, true)
	if err != nil {
		f.Close()
		return err
	}
	defer clear(newPass)
	_, created, err := luks.AddKeyByVolumeKey(a.ctx, f, vk, newPass, a.addKeyOptions(newSlot))
	if err != nil {
		f.Close()
		return onDevice(hp, err)
	}
	if err := syncClose(f, nil); err != nil {
		return err
	}
	a.logVerbose("Key slot %d created.", created)
	return nil
}
