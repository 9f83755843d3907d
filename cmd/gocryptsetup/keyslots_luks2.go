package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/cloudluks/cloudluks/luks"
)

// The key-slot verbs on LUKS2 (luksAddKey, luksRemoveKey, luksChangeKey, luksKillSlot):
// cryptsetup 2.6.1's dialogue, the checks libcryptsetup makes and in its order, and
// LUKS2's 32 slots. Each cmd_*.go verb hands a LUKS2 header (or --type luks2) to the
// function here.

// luks2KeyslotsMax is LUKS2_KEYSLOTS_MAX.
const luks2KeyslotsMax = 32

// isLUKS2 reports whether the verb on device takes the LUKS2 path: --type luks2 always
// (the loader then refuses a LUKS1 header as cryptsetup's crypt_load(cd, LUKS2) does),
// --type luks1 never, otherwise when the header device carries a LUKS2 header (or only a
// LUKS2 secondary header, as cryptsetup finds it).
func (a *app) isLUKS2(device string) bool {
	switch a.opts.typ {
	case "luks2":
		return true
	case "luks1":
		return false
	}
	return a.holdsLUKS2(device)
}

// holdsLUKS2 reports whether the header device of device carries a LUKS2 header, whatever
// --type says (luksHeaderBackup and luksHeaderRestore ignore it, as cryptsetup does).
func (a *app) holdsLUKS2(device string) bool {
	f, err := os.Open(a.headerPath(device))
	if err != nil {
		return false // the LUKS1 path reports the device error as before
	}
	defer f.Close()
	switch luks.Version(f) {
	case 2:
		return true
	case 0:
		_, err := luks.ReadHeader2(f)
		return err == nil
	}
	return false
}

// loadHeader2 opens device's header for writing and loads its LUKS2 header; any other
// header is cryptsetup's "not a valid LUKS device".
func (a *app) loadHeader2(device string) (*os.File, *luks.Header2, error) {
	f, m, err := a.loadMetadataMode(device, true)
	if err != nil {
		return nil, nil, err
	}
	h, ok := m.(*luks.Header2)
	if !ok {
		f.Close()
		p := a.headerPath(device)
		return nil, nil, onDevice(p, &loadFailure{cliError: cliError{code: exitParams, msg: fmt.Sprintf("Device %s is not a valid LUKS device.", p)}, err: luks.ErrNotLUKS})
	}
	return f, h, nil
}

// keyslotOptions2 are the PBKDF settings of a new LUKS2 slot from --pbkdf,
// --pbkdf-memory, --pbkdf-parallel, --pbkdf-force-iterations, -i and -h.
func (a *app) keyslotOptions2(slot *int) luks.LUKS2KeyslotOptions {
	o := a.opts
	ko := luks.LUKS2KeyslotOptions{Hash: o.hash, PBKDF: o.l2.pbkdf, ForceIterations: uint32(o.forceIterations),
		Memory: uint32(o.l2.pbkdfMemory), Parallel: uint32(o.l2.pbkdfParallel), Keyslot: slot,
		KeyslotCipher: o.l2.keyslotCipher, KeyslotKeySize: int(o.l2.keyslotKeyLen / 8)}
	if o.set["iter-time"] {
		ko.IterTime = time.Duration(o.iterTime) * time.Millisecond
	}
	return ko
}

// checkPBKDF2 is set_pbkdf_params for a LUKS2 slot, checked before any passphrase is read:
// an unknown --pbkdf is popt's usage error, the limits libcryptsetup's "Failed to set
// pbkdf parameters.".
func (a *app) checkPBKDF2() error {
	if a.opts.set["pbkdf"] {
		switch a.opts.l2.pbkdf {
		case luks.KDFPBKDF2, luks.KDFArgon2i, luks.KDFArgon2id:
		default:
			return &usageError{msg: "Password-based key derivation function (PBKDF) can be only pbkdf2 or argon2i/argon2id."}
		}
	}
	return optionError(a.keyslotOptions2(nil).Check())
}

// optionError words a luks.OptionError as cryptsetup prints it; other errors pass through.
func optionError(err error) error {
	var oe *luks.OptionError
	if errors.As(err, &oe) {
		msg := oe.Msg
		if oe.PBKDF {
			msg += "\nFailed to set pbkdf parameters."
		}
		return &cliError{code: exitParams, msg: msg}
	}
	return err
}

// checkPBKDF1 refuses the argon2 PBKDFs for a LUKS1 slot, as libcryptsetup does.
func (a *app) checkPBKDF1() error {
	if a.opts.set["pbkdf"] && a.opts.l2.pbkdf != luks.KDFPBKDF2 {
		if err := a.checkPBKDF2(); err != nil {
			if _, ok := err.(*usageError); ok {
				return err
			}
		}
		return &cliError{code: exitParams, msg: "Requested PBKDF type is not supported for LUKS1.\nFailed to set pbkdf parameters."}
	}
	return a.checkForceIterations()
}

// addKeySlots are cryptsetup 2.6's slot numbers for luksAddKey: with --new-key-slot, -S
// names the slot the existing passphrase must open; -S alone (the older syntax) names the
// new slot, with a warning.
func (a *app) addKeySlots() (old, new *int, warn bool) {
	o := a.opts
	if o.set["new-key-slot"] {
		return a.slotOption(), luks.Slot(int(o.l2.newKeySlot)), false
	}
	return nil, a.slotOption(), o.set["key-slot"]
}

// newKeySource is the new passphrase's source: the positional key file, else --new-keyfile,
// else the prompt.
func (a *app) newKeySource(args []string) keySource {
	switch {
	case len(args) > 1:
		return a.newKeyFromPositional(args[1])
	case a.opts.l2.newKeyfile != "":
		return a.newKeyFromPositional(a.opts.l2.newKeyfile)
	}
	return keySource{}
}

const memoryWarning = "Warning: keyslot operation could fail as it requires more than available memory."

// warnMemory prints cryptsetup's memory warning once for each argon2 slot among tried
// whose memory cost is above limit (see luks.LUKS2KeyslotOptions.MemoryLimit).
func (a *app) warnMemory(h *luks.Header2, limit uint32, tried []int) {
	for _, i := range tried {
		ks := h.Keyslots[i]
		if ks != nil && limit > 0 && (ks.KDF.Type == luks.KDFArgon2i || ks.KDF.Type == luks.KDFArgon2id) && ks.KDF.Memory > int64(limit) {
			a.logStd(memoryWarning)
		}
	}
}

// triedSlots are the slots an unlock tried: the one asked for, else those of the unlock
// order up to the one that opened (all of them when none did).
func triedSlots(h *luks.Header2, asked *int, opened int) []int {
	if asked != nil {
		return []int{*asked}
	}
	order := h.UnlockOrder()
	if i := slices.Index(order, opened); i >= 0 {
		return order[:i+1]
	}
	return order
}

func isStdinFile(p string) bool { return p == "-" || p == "/dev/stdin" }

func cmdLuksAddKey2(a *app, args []string) error {
	dev := args[0]
	oldSlot, newSlot, _ := a.addKeySlots()
	f, h, err := a.loadHeader2(dev)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := a.checkKeyslotCipher(true); err != nil {
		return err
	}
	if err := a.checkPBKDF2(); err != nil {
		return err
	}
	hp := a.headerPath(dev)
	src := a.newKeySource(args)
	// crypt_keyslot_add_by_keyfile (both keys in files) reports no unlocked slot.
	quiet := a.opts.keyFile != "" && !isStdinFile(a.opts.keyFile) && src.file != "" && !isStdinFile(src.file)
	pass, err := a.getKey("Enter any existing passphrase: ", a.keyFromOptions(), false)
	if err != nil {
		return err
	}
	defer clear(pass)
	limit := a.keyslotOptions2(nil).MemoryLimit()
	_, vk, slot, err := luks.Unlock2(a.ctx, f, pass, luks.UnlockOptions{})
	if !quiet {
		// The check before the new passphrase is read (crypt_activate_by_passphrase).
		a.warnMemory(h, limit, triedSlots(h, nil, slot))
	}
	if err != nil {
		return onDevice(hp, err)
	}
	defer vk.Wipe()
	if !quiet {
		a.logVerbose("Key slot %d unlocked.", slot)
	}
	newPass, err := a.getKey("Enter new passphrase for key slot: ", src, true)
	if err != nil {
		return err
	}
	defer clear(newPass)
	// From here on, crypt_keyslot_add_by_passphrase: the new slot's number first, then the
	// existing passphrase again, through the slot -S names when --new-key-slot is given.
	if newSlot != nil {
		switch n := *newSlot; {
		case n < 0 || n >= luks2KeyslotsMax:
			return &cliError{code: exitParams, msg: fmt.Sprintf("Key slot %d is invalid, please select between 0 and %d.", n, luks2KeyslotsMax-1)}
		case h.Keyslots[n] != nil:
			return &cliError{code: exitParams, msg: fmt.Sprintf("Key slot %d is full, please select another one.", n)}
		}
	} else if len(h.Keyslots) >= luks2KeyslotsMax {
		return luks.ErrNoFreeKeyslot
	}
	a.warnMemory(h, limit, triedSlots(h, oldSlot, slot))
	if oldSlot != nil && *oldSlot != slot {
		_, ovk, _, err := luks.Unlock2(a.ctx, f, pass, luks.UnlockOptions{Keyslot: oldSlot})
		if err != nil {
			if errors.Is(err, luks.ErrWrongPassphrase) {
				return &cliError{code: exitPermission} // libcryptsetup says nothing here
			}
			return onDevice(hp, err)
		}
		ovk.Wipe()
	}
	created, err := luks.AddKeyLUKS2ByVolumeKey(a.ctx, f, vk, newPass, a.keyslotOptions2(newSlot))
	if err := syncClose(f, onDevice(hp, optionError(err))); err != nil {
		return err
	}
	a.logVerbose("Key slot %d created.", created)
	return nil
}

func cmdLuksRemoveKey2(a *app, args []string) error {
	dev := args[0]
	f, h, err := a.loadHeader2(dev)
	if err != nil {
		return err
	}
	defer f.Close()
	hp := a.headerPath(dev)
	src := a.keyFromOptions()
	if len(args) > 1 {
		src.file = args[1]
	}
	pass, err := a.getKey("Enter passphrase to be deleted: ", src, false)
	if err != nil {
		return err
	}
	defer clear(pass)
	_, vk, slot, err := luks.Unlock2(a.ctx, f, pass, luks.UnlockOptions{})
	a.warnMemory(h, luks.LUKS2KeyslotOptions{}.MemoryLimit(), triedSlots(h, nil, slot))
	if err != nil {
		return onDevice(hp, err)
	}
	vk.Wipe()
	a.logVerbose("Key slot %d unlocked.", slot)
	a.logVerbose("Keyslot %d is selected for deletion.", slot)
	if len(h.Keyslots) == 1 {
		if err := a.confirm(lastSlotWarning, errLastSlotAborted); err != nil {
			return err
		}
	}
	if err := syncClose(f, onDevice(hp, luks.KillSlotLUKS2(f, slot, nil))); err != nil {
		return err
	}
	a.logVerbose("Key slot %d removed.", slot)
	return nil
}

func cmdLuksChangeKey2(a *app, args []string) error {
	dev := args[0]
	f, h, err := a.loadHeader2(dev)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := a.checkKeyslotCipher(true); err != nil {
		return err
	}
	if err := a.checkPBKDF2(); err != nil {
		return err
	}
	limit := a.keyslotOptions2(nil).MemoryLimit()
	slotOpt := a.slotOption()
	hp := a.headerPath(dev)
	oldPass, err := a.getKey("Enter passphrase to be changed: ", a.keyFromOptions(), false)
	if err != nil {
		return err
	}
	defer clear(oldPass)
	if slotOpt != nil && (*slotOpt < 0 || *slotOpt >= luks2KeyslotsMax) {
		return onDevice(hp, luks.ErrWrongPassphrase)
	}
	// crypt_activate_by_passphrase with CRYPT_ACTIVATE_ALLOW_UNBOUND_KEY checks it first.
	_, vk, slot, err := luks.Unlock2(a.ctx, f, oldPass, luks.UnlockOptions{Keyslot: slotOpt, AllowUnbound: true, Activation: true})
	a.warnMemory(h, limit, triedSlots(h, slotOpt, slot))
	if errors.Is(err, luks.ErrReencryptKeys) {
		return &cliError{code: exitParams} // -EINVAL, silent
	}
	if err != nil {
		return onDevice(hp, err)
	}
	vk.Wipe()
	a.logVerbose("Key slot %d unlocked.", slot)
	newPass, err := a.getKey("Enter new passphrase: ", a.newKeySource(args), true)
	if err != nil {
		return err
	}
	defer clear(newPass)
	// crypt_keyslot_change_by_passphrase opens the old slot again.
	a.warnMemory(h, limit, triedSlots(h, slotOpt, slot))
	created, err := luks.ChangeKeyLUKS2(a.ctx, f, oldPass, newPass, a.keyslotOptions2(slotOpt))
	if err := syncClose(f, onDevice(hp, optionError(err))); err != nil {
		return err
	}
	a.logVerbose("Key slot %d created.", created)
	return nil
}

func cmdLuksKillSlot2(a *app, dev string, slot int) error {
	f, h, err := a.loadHeader2(dev)
	if err != nil {
		return err
	}
	defer f.Close()
	if slot >= luks2KeyslotsMax {
		return &cliError{code: exitParams} // libcryptsetup's -EINVAL, no message
	}
	hp := a.headerPath(dev)
	if h.Keyslots[slot] == nil {
		return &cliError{code: exitParams, msg: fmt.Sprintf("Keyslot %d is not active.", slot)}
	}
	a.logVerbose("Keyslot %d is selected for deletion.", slot)
	if !a.opts.batch || a.opts.keyFile != "" || !a.term.IsTerminal() {
		last := len(h.Keyslots) == 1
		if last && a.opts.keyFile == "" {
			if err := a.confirm(lastSlotWarning, errLastSlotAborted); err != nil {
				return err
			}
		}
		unlocked, err := a.remainingPassphrase2(hp, f, h, slot, last)
		switch {
		case errors.Is(err, errNothingToRead) && (a.opts.keyFile == "" || isStdinFile(a.opts.keyFile)) && a.ctx.Err() == nil:
			fmt.Fprintln(a.stderr, errNothingToRead.msg)
		case err != nil:
			return err
		default:
			a.logVerbose("Key slot %d unlocked.", unlocked)
		}
	}
	if err := syncClose(f, onDevice(hp, luks.KillSlotLUKS2(f, slot, nil))); err != nil {
		return err
	}
	a.logVerbose("Key slot %d removed.", slot)
	return nil
}

// remainingPassphrase2 is verify_keyslot on LUKS2: the passphrase must open a slot other
// than the one being killed, or that slot itself when it is the last one.
func (a *app) remainingPassphrase2(hp string, f *os.File, h *luks.Header2, kill int, last bool) (int, error) {
	pass, err := a.getKey("Enter any remaining passphrase: ", a.keyFromOptions(), false)
	if err != nil {
		return -1, err
	}
	defer clear(pass)
	limit := luks.LUKS2KeyslotOptions{}.MemoryLimit()
	for i := 0; i < luks2KeyslotsMax; i++ {
		if h.Keyslots[i] == nil || (i == kill && !last) {
			continue
		}
		a.warnMemory(h, limit, []int{i})
		_, vk, s, err := luks.Unlock2(a.ctx, f, pass, luks.UnlockOptions{Keyslot: luks.Slot(i), Activation: true})
		if err == nil {
			vk.Wipe()
			return s, nil
		}
		// verify_keyslot goes on after any failure and reports -ENOENT (a slot unusable
		// here, e.g. one of the old key during a reencryption) as a wrong passphrase.
		if !errors.Is(err, luks.ErrWrongPassphrase) && !errors.Is(err, luks.ErrKeyslotInactive) {
			return -1, onDevice(hp, err)
		}
	}
	return -1, onDevice(hp, luks.ErrWrongPassphrase)
}

// parseKillSlot reads luksKillSlot's slot argument (strictly: see cmdLuksKillSlot).
func parseKillSlot(s string, max int) (int, error) {
	slot, err := strconv.Atoi(s)
	if err != nil || slot < 0 {
		return 0, &cliError{code: exitParams, msg: fmt.Sprintf("Key slot %s is invalid, please select between 0 and %d.", s, max-1)}
	}
	return slot, nil
}

// checkKeyslotCipher is _set_keyslot_encryption_params after the header is loaded: on
// LUKS1 the options are refused with cryptsetup's message; on LUKS2 a cipher that cannot
// encrypt a key slot fails silently (crypt_keyslot_set_encryption returns -EINVAL and
// nothing is logged). Whether the key size fits the cipher is found when the slot is made.
func (a *app) checkKeyslotCipher(luks2 bool) error {
	o := a.opts
	if !o.set["keyslot-cipher"] && !o.set["keyslot-key-size"] {
		return nil
	}
	if !luks2 {
		return &cliError{code: exitParams, msg: "Keyslot encryption parameters can be set only for LUKS2 device."}
	}
	if err := luks.CheckKeyslotCipher(o.l2.keyslotCipher); err != nil {
		return &cliError{code: exitParams}
	}
	return nil
}
