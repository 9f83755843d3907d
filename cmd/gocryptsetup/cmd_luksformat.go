package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/cloudluks/cloudluks/internal/blkid"
	"github.com/cloudluks/cloudluks/luks"
)

// cmdLuksFormat writes a new LUKS1 header and key material, like cryptsetup luksFormat
// --type luks1 (the default type, LUKS2, is cmdLuksFormat2): existing-signature warning, the YES confirmation on a terminal (not with -q,
// not when stdin is piped), the passphrase asked twice on a terminal, a positional key file.
func cmdLuksFormat(a *app, args []string) error {
	if formatsLUKS2(a.opts) {
		return cmdLuksFormat2(a, args)
	}
	dev := args[0]
	o := a.opts
	if o.set["pbkdf-force-iterations"] && o.forceIterations < 1000 {
		return &cliError{code: exitParams, msg: "Forced iteration count is too low for pbkdf2 (minimum is 1000).\nFailed to set pbkdf parameters."}
	}
	detached := o.header != ""
	hp := a.headerPath(dev)

	// The data device must exist even with a detached header.
	data, err := openDevice(dev, !detached)
	if err != nil {
		return err
	}
	defer data.Close()
	// cryptsetup grows a short image file up to the payload, but refuses one shorter than a
	// sector, before asking for anything. With a detached header the data device only has to
	// exist (cryptsetup formats the header file whatever the data device's size).
	if fi, err := data.Stat(); err == nil && !detached && fi.Mode().IsRegular() && fi.Size() < luks.SectorSize {
		return onDevice(dev, luks.ErrDeviceTooSmall)
	}
	hdr := data
	if detached {
		hdr, err = openOrCreateHeader(hp)
		if err != nil {
			return err
		}
		defer hdr.Close()
	}

	// cryptsetup names every signature libblkid finds on the header device; -q silences
	// the warning (it goes to the debug log there), not the wipe.
	sigs, err := blkid.ProbeFile(a.ctx, hp)
	if err != nil {
		return onDevice(hp, err)
	}
	if !o.batch {
		for _, s := range sigs {
			a.logStd("WARNING: Device %s already contains a '%s' %s signature.", hp, s.Type, s.Usage)
		}
	}
	// cryptsetup checks the UUID after the device and its signature warning.
	if o.set["uuid"] && !uuidPattern.MatchString(o.uuid) {
		return errBadUUID
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

	fo := luks.FormatOptions{
		Cipher:          o.cipher,
		KeySize:         o.keySize,
		Hash:            o.hash,
		UUID:            o.uuid,
		AlignPayload:    uint32(o.alignPayload),
		Keyslot:         a.slotOption(),
		Detached:        detached,
		ForceIterations: uint32(o.forceIterations),
		// cryptsetup formats an image with no room for data and only warns (below).
		AllowNoPayload: true,
	}
	if o.set["key-size"] && o.keySize == 0 {
		// -s 0 is libcryptsetup's LUKS1 default of 256 bits whatever the mode, not the
		// tool's 512 for xts when -s is absent.
		fo.KeySize = 256
	}
	if o.set["iter-time"] {
		fo.IterTime = time.Duration(o.iterTime) * time.Millisecond
	}
	if o.set["key-slot"] && o.keySlot >= luks.NumKeyslots {
		return &cliError{code: exitParams, msg: fmt.Sprintf("Key slot %d is invalid, please select between 0 and 7.", o.keySlot)}
	}
	// cryptsetup lists what it wipes (wipefs's magics) just before it formats.
	for _, s := range sigs {
		if len(s.Magics) == 0 {
			a.logVerbose("Existing '%s' %s signature on device %s will be wiped.", s.Type, s.Usage, hp)
		}
		for _, m := range s.Magics {
			a.logVerbose("Existing '%s' %s signature on device %s will be wiped.", m.Type, s.Usage, hp)
		}
	}
	// cryptsetup formats, then refuses the LUKS2-only options; nothing is written here.
	if err := a.checkKeyslotCipher(false); err != nil {
		return err
	}
	h, vk, err := luks.Format(a.ctx, hdr, pass, fo)
	if err != nil {
		return onDevice(hp, err)
	}
	vk.Wipe()
	// Old magics that survived the format (a GPT's backup header in the last sector, a
	// LUKS2 secondary header, anything between the key slots and a far payload offset)
	// would still make blkid, udev and partitioners see the old content, so they are
	// erased as cryptsetup's wipe erases them. Wipe only touches magics whose bytes are
	// still there; the one place it must never look is the new LUKS1 header itself,
	// which now holds "LUKS\xba\xbe" where an old LUKS magic was.
	written := int64(luks.HeaderSize)
	if _, err := blkid.Wipe(hdr, sigs, written); err != nil {
		return onDevice(hp, err)
	}
	if err := hdr.Sync(); err != nil {
		return onDevice(hp, err)
	}
	slot := 0
	for i, ks := range h.Keyslots {
		if ks.Enabled() {
			slot = i
			break
		}
	}
	a.logVerbose("Key slot %d created.", slot)
	if !detached {
		if fi, err := data.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() <= h.PayloadOffsetBytes() {
			a.logStd("Device %s is too small for activation, there is no remaining space for data.", dev)
		}
	}
	return nil
}

// openOrCreateHeader opens a detached header file for writing, creating it (mode 0600) when it
// does not exist, as cryptsetup luksFormat --header does.
func openOrCreateHeader(path string) (*os.File, error) {
	f, err := openDevice(path, true)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, cerr := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if cerr != nil {
		return nil, err
	}
	return f, nil
}
