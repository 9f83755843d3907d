package main

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
	f, _, err := a.loadHeader(dev, false)
	if err != nil {
		return err
	}
	defer f.Close()
	vk, slot, _, err := a.unlock(a.headerPath(dev), f, passPrompt(dev), a.keyFromOptions(), a.slotOption())
	if err != nil {
		return err
	}
	vk.Wipe()
	a.logVerbose("Key slot %d unlocked.", slot)
	return nil
}
