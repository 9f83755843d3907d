package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
)

// cmdIsLuks: exit 0 for a valid LUKS header, 1 (silently) for anything else that is a
// readable device, 4 with a message for a missing or incompatible path. cryptsetup performs
// the full header load, so a damaged header also answers 1.
//
// Without --type luks1, cryptsetup also answers 0 for a LUKS2 device. This program cannot use
// LUKS2, but must not call one "not LUKS": scripts run `isLuks DEV || luksFormat DEV`. A
// LUKS2 header counts when its binary header checksum is intact.
func cmdIsLuks(a *app, args []string) error {
	f, _, err := a.loadHeader(args[0], false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, errNotCompatible) {
			return err
		}
		// (Also when the primary magic is gone: cryptsetup finds the secondary header.)
		if a.opts.typ != "luks1" && isLUKS2File(a.headerPath(args[0])) {
			return nil
		}
		return &cliError{code: exitParams} // isLuks loads quietly: no message at all
	}
	f.Close()
	return nil
}

func isLUKS2File(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return isLUKS2(f)
}

// LUKS2 binary header (cryptsetup docs/on-disk-format-luks2): magic, version, hdr_size
// (binary header plus JSON area), checksum_alg, hdr_offset, and a checksum over the whole
// hdr_size bytes computed with the checksum field zeroed. The secondary copy starts at
// hdr_size with its own magic.
const (
	luks2CsumOff    = 448
	luks2MinHdrSize = 16 << 10
	luks2MaxHdrSize = 4 << 20
)

// isLUKS2 reports whether r holds a LUKS2 header (primary, or a secondary one at one of the
// offsets cryptsetup probes) whose SHA-256 checksum verifies.
func isLUKS2(r io.ReaderAt) bool {
	if luks2HeaderAt(r, 0, "LUKS\xba\xbe") {
		return true
	}
	for off := int64(luks2MinHdrSize); off <= luks2MaxHdrSize; off *= 2 {
		if luks2HeaderAt(r, off, "SKUL\xba\xbe") {
			return true
		}
	}
	return false
}

func luks2HeaderAt(r io.ReaderAt, off int64, magic string) bool {
	var bin [512]byte
	if _, err := r.ReadAt(bin[:], off); err != nil {
		return false
	}
	size := binary.BigEndian.Uint64(bin[8:16])
	if string(bin[:6]) != magic || binary.BigEndian.Uint16(bin[6:8]) != 2 ||
		size < luks2MinHdrSize || size > luks2MaxHdrSize || size&(size-1) != 0 ||
		cString(bin[72:104]) != "sha256" || binary.BigEndian.Uint64(bin[256:264]) != uint64(off) {
		return false
	}
	hdr := make([]byte, size)
	if _, err := r.ReadAt(hdr, off); err != nil {
		return false
	}
	var want [sha256.Size]byte
	copy(want[:], hdr[luks2CsumOff:])
	clear(hdr[luks2CsumOff : luks2CsumOff+64])
	got := sha256.Sum256(hdr)
	return bytes.Equal(got[:], want[:])
}
