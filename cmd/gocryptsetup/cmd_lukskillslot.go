package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/cloudluks/cloudluks/luks"
)

// cmdLuksKillSlot destroys key slot N. Unless -q is given on a terminal (or with a key file or
// piped stdin) it first asks for any remaining passphrase and checks that it opens another
// slot (remainingPassphrase), like cryptsetup; when
// piped stdin holds nothing, cryptsetup prints "Nothing to read on input." and wipes the slot
// anyway, and so does this — but never after a signal ended the read.
func cmdLuksKillSlot(a *app, args []string) error {
	dev := args[0]
	// cryptsetup reads the slot with atoi, so "x" or "1x" would name slot 0 or 1; a key slot
	// is never destroyed on a typo here.
	max := luks.NumKeyslots
	lk2 := a.isLUKS2(dev)
	if lk2 {
		max = luks2KeyslotsMax
	}
	slot, err := parseKillSlot(args[1], max)
	if err != nil {
		return err
	}
	if lk2 {
		return cmdLuksKillSlot2(a, dev, slot)
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
		unlocked, err := a.remainingPassphrase(hp, f, h, slot)
		switch {
		case errors.Is(err, errNothingToRead) && (a.opts.keyFile == "" || a.opts.keyFile == "-") && a.ctx.Err() == nil:
			fmt.Fprintln(a.stderr, errNothingToRead.msg)
		case err != nil:
			f.Close()
			return err
		default:
			a.logVerbose("Key slot %d unlocked.", unlocked)
		}
	}
	if err := syncClose(f, onDevice(hp, luks.KillSlot(f, slot))); err != nil {
		return err
	}
	a.logVerbose("Key slot %d removed.", slot)
	return nil
}

// remainingPassphrase asks once for "any remaining passphrase" and checks it as cryptsetup's
// verify_keyslot does: it must open a slot other than the one being killed, so that the
// user cannot destroy the only passphrase they know; only when that slot is the last one
// must the passphrase open it. It returns the slot that opened.
func (a *app) remainingPassphrase(hp string, f *os.File, h *luks.Header, kill int) (int, error) {
	pass, err := a.getKey("Enter any remaining passphrase: ", a.keyFromOptions(), false)
	if err != nil {
		return -1, err
	}
	defer clear(pass)
	last := h.ActiveKeyslots() == 1
	var candidates []int
	for i, ks := range h.Keyslots {
		if ks.Enabled() && (i != kill || last) {
			candidates = append(candidates, i)
		}
	}
	for _, i := range candidates {
		_, vk, s, err := luks.Unlock(a.ctx, f, pass, luks.UnlockOptions{Keyslot: luks.Slot(i)})
		if err == nil {
			vk.Wipe()
			return s, nil
		}
		if !errors.Is(err, luks.ErrWrongPassphrase) {
			return -1, onDevice(hp, err)
		}
	}
	return -1, onDevice(hp, luks.ErrWrongPassphrase)
}
