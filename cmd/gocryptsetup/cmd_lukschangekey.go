package main

import (
	"github.com/cloudluks/cloudluks/luks"
)

// cmdLuksChangeKey replaces a passphrase in cryptsetup's LUKS1 order: the new passphrase goes
// into the first free slot, then the old slot is destroyed (so a crash never loses the only
// key); with no free slot the old slot is rewritten in place. With -S N cryptsetup 2.6 asks
// libcryptsetup to change slot N into slot N, so the key is rewritten in place there too and
// the slot number stays N.
func cmdLuksChangeKey(a *app, args []string) error {
	dev := args[0]
	if a.isLUKS2(dev) {
		return cmdLuksChangeKey2(a, args)
	}
	if err := a.checkPBKDF1(); err != nil {
		return err
	}
	f, _, err := a.loadHeader(dev, true)
	if err != nil {
		return err
	}
	if err := a.checkKeyslotCipher(false); err != nil {
		f.Close()
		return err
	}
	slotOpt := a.slotOption()
	if slotOpt != nil && *slotOpt >= luks.NumKeyslots {
		f.Close()
		return errNoUsableSlot
	}
	hp := a.headerPath(dev)
	oldPass, err := a.getKey("Enter passphrase to be changed: ", a.keyFromOptions(), false)
	if err != nil {
		f.Close()
		return err
	}
	defer clear(oldPass)
	_, vk, slot, err := luks.Unlock(a.ctx, f, oldPass, luks.UnlockOptions{Keyslot: slotOpt})
	if err != nil {
		f.Close()
		return onDevice(hp, err)
	}
	vk.Wipe()
	a.logVerbose("Key slot %d unlocked.", slot)

	src := a.newKeySource(args)
	newPass, err := a.getKey("Enter new passphrase: ", src, true)
	if err != nil {
		f.Close()
		return err
	}
	defer clear(newPass)
	opts := a.addKeyOptions(slotOpt)
	_, created, err := luks.ChangeKey(a.ctx, f, oldPass, newPass, opts)
	if err := syncClose(f, onDevice(hp, err)); err != nil {
		return err
	}
	a.logVerbose("Key slot %d created.", created)
	return nil
}
