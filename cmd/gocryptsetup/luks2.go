package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/cloudluks/cloudluks/luks"
)

// LUKS2 on the read side: the verbs that only read a header (isLuks, luksDump, luksUUID
// without --uuid, open --test-passphrase) load either version through luks.Load.

var luks2SizeInError = regexp.MustCompile(`need (\d+) bytes`)

// readTypes are the verbs that take --type luks2 (luksFormat and convert are let through
// by run itself).
var readTypes = map[string]bool{"isLuks": true, "luksDump": true, "luksUUID": true, "open": true,
	"luksAddKey": true, "luksRemoveKey": true, "luksChangeKey": true, "luksKillSlot": true,
	"luksHeaderBackup": true, "luksHeaderRestore": true, "config": true}

// loadMetadata opens the header device of device and loads its header of either version;
// --type luks1 or luks2 asks for that version only, as crypt_load(cd, type) does.
func (a *app) loadMetadata(device string) (*os.File, luks.Metadata, error) {
	return a.loadMetadataMode(device, false)
}

// loadMetadataMode is loadMetadata with the device opened for writing when write is set.
func (a *app) loadMetadataMode(device string, write bool) (*os.File, luks.Metadata, error) {
	p := a.headerPath(device)
	f, err := openDevice(p, write)
	if err != nil {
		return nil, nil, err
	}
	ver := luks.Version(f)
	if (a.opts.typ == "luks1" && ver == 2) || (a.opts.typ == "luks2" && ver == 1) {
		f.Close()
		return nil, nil, onDevice(p, &loadFailure{cliError: cliError{code: exitParams, msg: fmt.Sprintf("Device %s is not a valid LUKS device.", p)}, err: luks.ErrNotLUKS})
	}
	// Without a LUKS2 primary (version 0: no magic, or another version), cryptsetup still
	// looks for a secondary LUKS2 header; if there is none, the LUKS1 loader's complaint is
	// what it reports.
	if ver == 0 && a.opts.typ != "luks1" {
		if h, err := luks.ReadHeader2(f); err == nil {
			return f, h, nil
		}
	}
	if ver != 2 {
		h, err := luks.ReadHeader(f)
		if err != nil {
			err = loadError(p, f, err)
			f.Close()
			return nil, nil, err
		}
		return f, h, nil
	}
	h, err := luks.ReadHeader2(f)
	if err != nil {
		err = loadError2(p, err)
		f.Close()
		return nil, nil, err
	}
	return f, h, nil
}

// loadError2 words a LUKS2 load failure as cryptsetup does: the loader logs its reasons at
// debug level only, except a device too small for the metadata and keyslots area.
func loadError2(path string, err error) error {
	first := ""
	if errors.Is(err, luks.ErrDeviceTooSmall) {
		if m := luks2SizeInError.FindStringSubmatch(err.Error()); m != nil {
			first = fmt.Sprintf("Device %s is too small. Need at least %s bytes.", path, m[1])
		}
	}
	msg := fmt.Sprintf("Device %s is not a valid LUKS device.", path)
	if first != "" {
		msg = first + "\n" + msg
	}
	return onDevice(path, &loadFailure{cliError: cliError{code: exitParams, msg: msg}, detail: first, err: err})
}

// unlockAny is unlock for either header version (luks.UnlockAny), with tries as unlockTries.
func (a *app) unlockAny(hdrPath string, hdr io.ReaderAt, prompt string, src keySource, slot *int, tries int) (*luks.VolumeKey, int, luks.Metadata, error) {
	if luks.Version(hdr) != 2 {
		vk, s, h, err := a.unlockTries(hdrPath, hdr, prompt, src, slot, tries)
		if h == nil {
			return vk, s, nil, err
		}
		return vk, s, h, err
	}
	if slot != nil && *slot >= 32 {
		return nil, -1, nil, errNoUsableSlot
	}
	for i := 0; ; i++ {
		pass, err := a.getKey(prompt, src, false)
		if err != nil {
			return nil, -1, nil, err
		}
		h, vk, s, err := luks.Unlock2(a.ctx, hdr, pass, luks.UnlockOptions{Keyslot: slot, AllowUnbound: a.opts.testPassphrase && slot != nil, Activation: a.opts.testPassphrase})
		clear(pass)
		if err == nil {
			return vk, s, h, nil
		}
		if errors.Is(err, luks.ErrReencryptKeys) {
			return nil, -1, nil, &cliError{code: exitParams} // -EINVAL, silent
		}
		if errors.Is(err, luks.ErrReencryptMetadata) {
			fmt.Fprintln(a.stderr, "Reencryption metadata is invalid.")
		}
		if errors.Is(err, luks.ErrWrongPassphrase) && i+1 < tries {
			fmt.Fprintln(a.stderr, "No key available with this passphrase.")
			continue
		}
		return nil, -1, nil, onDevice(hdrPath, err)
	}
}

// unlockTriesFor is the number of passphrase attempts open allows (see unlock).
func (a *app) unlockTriesFor(src keySource) int {
	if src.file == "" && a.term.IsTerminal() {
		return max(a.opts.tries, 1)
	}
	return 1
}

// dumpVolumeKey prints luksDump --dump-volume-key for either header version.
func dumpVolumeKey(w io.Writer, path string, m luks.Metadata, vk *luks.VolumeKey) error {
	switch h := m.(type) {
	case *luks.Header:
		return luks.DumpVolumeKey(w, path, h, vk)
	case *luks.Header2:
		return luks.DumpVolumeKey2(w, path, h, vk)
	}
	return fmt.Errorf("%w: unknown header type", luks.ErrUnsupportedVersion)
}

// metadataUUID is the header UUID of either version.
func metadataUUID(m luks.Metadata) string {
	switch h := m.(type) {
	case *luks.Header:
		return h.UUID
	case *luks.Header2:
		return h.UUID
	}
	return ""
}
