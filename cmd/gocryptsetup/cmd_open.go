package main

import "github.com/cloudluks/cloudluks/luks"

// cmdOpen: with --test-passphrase only checks that a passphrase opens a key slot (no
// device-mapper needed, so it works rootless on image files). Otherwise it creates the
// mapping NAME through openMapping.
func cmdOpen(a *app, args []string) error {
	if a.opts.typ == "plain" {
		return cmdOpenPlain(a, args)
	}
	dev := args[0]
	if !a.opts.testPassphrase {
		if len(args) < 2 {
			return &usageError{msg: "open: requires <device> <name> as arguments"}
		}
		return openMapping(a, dev, args[1])
	}
	f, m, err := a.loadMetadata(dev)
	if err != nil {
		return err
	}
	defer f.Close()
	src := a.keyFromOptions()
	if h, ok := m.(*luks.Header2); ok && h != nil {
		// cryptsetup tries the LUKS2 tokens first; none of them can unlock here.
		a.logVerbose("No usable token is available.")
	}
	vk, slot, _, err := a.unlockAny(a.headerPath(dev), f, passPrompt(dev), src, a.slotOption(), a.unlockTriesFor(src))
	if err != nil {
		return err
	}
	vk.Wipe()
	a.logVerbose("Key slot %d unlocked.", slot)
	return nil
}
