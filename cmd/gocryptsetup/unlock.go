package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/cloudluks/cloudluks/luks"
)

var errNoUsableSlot = &cliError{code: exitParams, msg: "No usable keyslot is available."}

// unlock asks for a passphrase and opens the header with it, as open does: on a terminal a
// wrong passphrase is reported and asked again, up to --tries times (cryptsetup's default is
// 3); key files and piped input get one attempt. slot is -S (nil when absent: any slot).
func (a *app) unlock(hdrPath string, hdr io.ReaderAt, prompt string, src keySource, slot *int) (*luks.VolumeKey, int, *luks.Header, error) {
	tries := 1
	if src.file == "" && a.term.IsTerminal() {
		tries = max(a.opts.tries, 1)
	}
	return a.unlockTries(hdrPath, hdr, prompt, src, slot, tries)
}

// unlockOnce is unlock with a single attempt whatever --tries says: cryptsetup 2.6.1 retries
// only open; luksAddKey, luksRemoveKey, luksKillSlot, luksChangeKey and luksDump
// --dump-volume-key ask once and exit 2 on a wrong passphrase.
func (a *app) unlockOnce(hdrPath string, hdr io.ReaderAt, prompt string, src keySource, slot *int) (*luks.VolumeKey, int, *luks.Header, error) {
	return a.unlockTries(hdrPath, hdr, prompt, src, slot, 1)
}

func (a *app) unlockTries(hdrPath string, hdr io.ReaderAt, prompt string, src keySource, slot *int, tries int) (*luks.VolumeKey, int, *luks.Header, error) {
	if slot != nil && *slot >= luks.NumKeyslots {
		return nil, -1, nil, errNoUsableSlot
	}
	for i := 0; ; i++ {
		pass, err := a.getKey(prompt, src, false)
		if err != nil {
			return nil, -1, nil, err
		}
		h, vk, s, err := luks.Unlock(a.ctx, hdr, pass, luks.UnlockOptions{Keyslot: slot})
		clear(pass)
		if err == nil {
			return vk, s, h, nil
		}
		if errors.Is(err, luks.ErrWrongPassphrase) && i+1 < tries {
			fmt.Fprintln(a.stderr, "No key available with this passphrase.")
			continue
		}
		return nil, -1, nil, onDevice(hdrPath, err)
	}
}

// slotOption is -S as the luks package wants it: luks.Slot(N) for -S N, nil (any slot, or
// slot 0 for luksFormat) without -S.
func (a *app) slotOption() *int {
	if a.opts.set["key-slot"] {
		return luks.Slot(a.opts.keySlot)
	}
	return nil
}

func passPrompt(device string) string { return "Enter passphrase for " + device + ": " }
