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
		logNoUsableToken(a, h)
	}
	vk, slot, _, err := a.unlockAny(a.headerPath(dev), f, passPrompt(dev), src, a.slotOption(), a.unlockTriesFor(src))
	if err != nil {
		return err
	}
	vk.Wipe()
	a.logVerbose("Key slot %d unlocked.", slot)
	return nil
}

// logNoUsableToken is what cryptsetup -v says after trying the LUKS2 tokens first
// (tools_token_error_msg of LUKS2_token_open_and_activate's result). No token unlocks here:
// external token types need libcryptsetup plugins (-ENOENT), and the kernel keyring holds no
// key for a luks2-keyring token (-EPERM, which cryptsetup does not report when no token was
// named). So "No usable token is available." unless a luks2-keyring token is assigned to a
// key slot whose priority is not "ignore".
func logNoUsableToken(a *app, h *luks.Header2) {
	for _, t := range h.Tokens {
		if t.Type != "luks2-keyring" {
			continue
		}
		for _, k := range t.Keyslots {
			if ks := h.Keyslots[k]; ks != nil && (ks.Priority == nil || *ks.Priority != luks.PriorityIgnore) {
				return
			}
		}
	}
	a.logVerbose("No usable token is available.")
}
