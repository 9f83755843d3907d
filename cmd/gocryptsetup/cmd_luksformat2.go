package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/cloudluks/cloudluks/internal/blkid"
	"github.com/cloudluks/cloudluks/luks"
)

// cmdLuksFormat2 is luksFormat --type luks2 (cryptsetup 2.6's default type): the same
// dialogue as the LUKS1 path (signature warning, YES confirmation, passphrase twice on a
// terminal) and cryptsetup's LUKS2 options. Options the tool refuses as usage errors are
// checked first, the metadata sizes before the device is probed, the rest by
// luks.FormatLUKS2 before its first write.
func cmdLuksFormat2(a *app, args []string) error {
	dev := args[0]
	o := a.opts
	if o.set["sector-size"] && (o.sectorSize < luks.SectorSize || o.sectorSize > 4096 || o.sectorSize&(o.sectorSize-1) != 0) {
		return &usageError{msg: "Unsupported encryption sector size."}
	}
	if o.set["pbkdf"] {
		switch o.l2.pbkdf {
		case luks.KDFPBKDF2, luks.KDFArgon2i, luks.KDFArgon2id:
		default:
			return &usageError{msg: "Password-based key derivation function (PBKDF) can be only pbkdf2 or argon2i/argon2id."}
		}
	}
	metaSize, err := luks2SizeOption(o, "luks2-metadata-size", o.l2.metadataSize)
	if err != nil {
		return err
	}
	ksSize, err := luks2SizeOption(o, "luks2-keyslots-size", o.l2.keyslotsSize)
	if err != nil {
		return err
	}
	detached := o.header != ""
	hp := a.headerPath(dev)
	data, err := openDevice(dev, !detached)
	if err != nil {
		return err
	}
	defer data.Close()
	if !luks.ValidLUKS2Sizes(metaSize, ksSize) {
		return &cliError{code: exitParams, msg: "Unsupported LUKS2 metadata size options."}
	}
	hdr := data
	if detached {
		hdr, err = openOrCreateHeader(hp)
		if err != nil {
			return err
		}
		defer hdr.Close()
	}
	sigs, err := blkid.ProbeFile(a.ctx, hp)
	if err != nil {
		return onDevice(hp, err)
	}
	if !o.batch {
		for _, s := range sigs {
			a.logStd("WARNING: Device %s already contains a '%s' %s signature.", hp, s.Type, s.Usage)
		}
	}
	if err := a.confirm(fmt.Sprintf("This will overwrite data on %s irrevocably.", hp),
		&cliError{code: exitParams, msg: "Operation aborted.\n"}); err != nil {
		return err
	}
	src := a.keyFromOptions()
	if len(args) > 1 {
		src.file = args[1]
	}
	pass, err := a.getKey(passPrompt(dev), src, true)
	if err != nil {
		return err
	}
	defer clear(pass)

	fo := luks.LUKS2FormatOptions{
		Cipher:          o.cipher,
		KeySize:         o.keySize,
		Hash:            o.hash,
		PBKDF:           o.l2.pbkdf,
		ForceIterations: uint32(o.forceIterations),
		Memory:          uint32(o.l2.pbkdfMemory),
		Parallel:        uint32(o.l2.pbkdfParallel),
		SectorSize:      int(o.sectorSize),
		Label:           o.l2.label,
		Subsystem:       o.l2.subsystem,
		MetadataSize:    metaSize,
		KeyslotsSize:    ksSize,
		AlignPayload:    uint32(o.alignPayload),
		Offset:          uint64(o.offset),
		UUID:            o.uuid,
		KeyslotCipher:   o.l2.keyslotCipher,
		KeyslotKeySize:  int(o.l2.keyslotKeyLen / 8),
		Keyslot:         a.slotOption(),
		Detached:        detached,
	}
	if detached {
		fo.Data = data
	}
	if o.set["iter-time"] {
		fo.IterTime = time.Duration(o.iterTime) * time.Millisecond
	}
	for _, s := range sigs {
		if len(s.Magics) == 0 {
			a.logVerbose("Existing '%s' %s signature on device %s will be wiped.", s.Type, s.Usage, hp)
		}
		for _, m := range s.Magics {
			a.logVerbose("Existing '%s' %s signature on device %s will be wiped.", m.Type, s.Usage, hp)
		}
	}
	info, vk, err := luks.FormatLUKS2(a.ctx, hdr, pass, fo)
	if err != nil {
		var oe *luks.OptionError
		if errors.As(err, &oe) {
			msg := oe.Msg
			if oe.PBKDF {
				msg += "\nFailed to set pbkdf parameters."
			}
			return &cliError{code: exitParams, msg: msg}
		}
		return onDevice(hp, err)
	}
	vk.Wipe()
	for _, w := range info.Warnings {
		a.logStd("%s", w)
	}
	// Old magics outside the new header (a GPT backup, another LUKS2 secondary) go as in
	// the LUKS1 path; the two new header copies are never looked at.
	if _, err := blkid.Wipe(hdr, sigs, int64(2*info.MetadataSize)); err != nil {
		return onDevice(hp, err)
	}
	if err := hdr.Sync(); err != nil {
		return onDevice(hp, err)
	}
	a.logVerbose("Key slot %d created.", info.Keyslot)
	if !detached {
		if fi, err := data.Stat(); err == nil && fi.Mode().IsRegular() && uint64(fi.Size()) <= info.DataOffset {
			a.logStd("Device %s is too small for activation, there is no remaining space for data.", dev)
		}
	}
	return nil
}
