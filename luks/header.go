package luks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cloudluks/cloudluks/luks/sector"
)

// On-disk constants of LUKS1 (spec 1.2.3, cryptsetup lib/luks1/luks.h).
const (
	// HeaderSize is how many bytes cryptsetup reads and writes for the header (592 bytes of
	// fields plus zero padding).
	HeaderSize = 1024
	// NumKeyslots is the number of key slots in a LUKS1 header.
	NumKeyslots = 8
	// KeyEnabled and KeyDisabled are the two valid Keyslot.Active values.
	KeyEnabled  = 0x00AC71F3
	KeyDisabled = 0x0000DEAD
	// Stripes is the anti-forensic stripe count; cryptsetup refuses any other value.
	Stripes = 4000
	// SaltSize and DigestSize are the fixed salt and MK digest lengths.
	SaltSize   = 32
	DigestSize = 20
	// SectorSize is the LUKS1 sector (all offsets in the header count these).
	SectorSize = 512

	fieldsSize       = 592 // bytes of struct luks_phdr before the padding
	alignKeyslots    = 4096
	minIterations    = 1000 // LUKS_SLOT_ITERATIONS_MIN and LUKS_MKD_ITERATIONS_MIN
	mkdIterationsMS  = 125  // LUKS_MKD_ITERATIONS_MS
	maxKeyslotSize   = 16 << 20
	cipherNameLen    = 32
	cipherModeLen    = 32
	hashSpecLen      = 32
	uuidLen          = 40
	offCipherName    = 8
	offCipherMode    = 40
	offHashSpec      = 72
	offPayloadOffset = 104
	offKeyBytes      = 108
	offMKDigest      = 112
	offMKSalt        = 132
	offMKIterations  = 164
	offUUID          = 168
	offKeyslots      = 208
	keyslotSize      = 48
)

// magic is "LUKS" 0xBA 0xBE, shared with LUKS2.
var magic = []byte{'L', 'U', 'K', 'S', 0xBA, 0xBE}

// Header is a LUKS1 partition header (struct luks_phdr) with integers in host order and the
// NUL-padded strings as Go strings (cut at the first NUL, at most 31 / 39 characters as
// cryptsetup enforces on read).
type Header struct {
	Version            uint16
	CipherName         string
	CipherMode         string
	HashSpec           string
	PayloadOffset      uint32 // 512-byte sectors; 0 = detached header
	KeyBytes           uint32
	MKDigest           [20]byte
	MKDigestSalt       [32]byte
	MKDigestIterations uint32
	UUID               string
	Keyslots           [8]Keyslot
}

// Keyslot is one of the eight key-slot descriptors of a LUKS1 header.
type Keyslot struct {
	Active            uint32 // 0x00AC71F3 enabled, 0x0000DEAD disabled, anything else invalid
	Iterations        uint32
	Salt              [32]byte
	KeyMaterialOffset uint32 // sectors
	Stripes           uint32
}

// Enabled reports whether the slot holds a key (active == 0x00AC71F3).
func (k Keyslot) Enabled() bool { return k.Active == KeyEnabled }

// CipherSpec is the cryptsetup spelling of the payload cipher, e.g. "aes-xts-plain64".
func (h *Header) CipherSpec() string { return h.CipherName + "-" + h.CipherMode }

// PayloadOffsetBytes is the byte offset of the encrypted payload on the data device.
func (h *Header) PayloadOffsetBytes() int64 { return int64(h.PayloadOffset) * SectorSize }

// AFSectors is the size in 512-byte sectors of one key slot's key material for the header's
// key size (ceil(keyBytes*4000/512)).
func (h *Header) AFSectors() uint64 { return afSectors(uint64(h.KeyBytes)) }

func afSectors(keyBytes uint64) uint64 {
	return (keyBytes*Stripes + SectorSize - 1) / SectorSize
}

// ActiveKeyslots counts the enabled slots.
func (h *Header) ActiveKeyslots() int {
	n := 0
	for _, k := range h.Keyslots {
		if k.Enabled() {
			n++
		}
	}
	return n
}

// MetadataSectors is the minimum size of the header device: the end of the key-material area
// that lies furthest out (cryptsetup LUKS_device_sectors).
func (h *Header) MetadataSectors() uint64 {
	var max uint64
	for _, k := range h.Keyslots {
		if uint64(k.KeyMaterialOffset) > max {
			max = uint64(k.KeyMaterialOffset)
		}
	}
	return max + h.AFSectors()
}

// MarshalBinary encodes the header into the 1024 bytes cryptsetup writes at offset 0
// (big-endian integers, NUL-padded strings, zero padding).
func (h *Header) MarshalBinary() ([]byte, error) {
	b := make([]byte, HeaderSize)
	copy(b, magic)
	binary.BigEndian.PutUint16(b[6:], h.Version)
	for _, f := range []struct {
		name, val string
		off, size int
	}{
		{"cipher name", h.CipherName, offCipherName, cipherNameLen},
		{"cipher mode", h.CipherMode, offCipherMode, cipherModeLen},
		{"hash spec", h.HashSpec, offHashSpec, hashSpecLen},
		{"UUID", h.UUID, offUUID, uuidLen},
	} {
		if len(f.val) > f.size-1 || strings.IndexByte(f.val, 0) >= 0 {
			return nil, fmt.Errorf("%w: %s %q does not fit %d bytes NUL-terminated", ErrInvalidParameter, f.name, f.val, f.size)
		}
		copy(b[f.off:f.off+f.size], f.val)
	}
	binary.BigEndian.PutUint32(b[offPayloadOffset:], h.PayloadOffset)
	binary.BigEndian.PutUint32(b[offKeyBytes:], h.KeyBytes)
	copy(b[offMKDigest:], h.MKDigest[:])
	copy(b[offMKSalt:], h.MKDigestSalt[:])
	binary.BigEndian.PutUint32(b[offMKIterations:], h.MKDigestIterations)
	for i, k := range h.Keyslots {
		o := offKeyslots + i*keyslotSize
		binary.BigEndian.PutUint32(b[o:], k.Active)
		binary.BigEndian.PutUint32(b[o+4:], k.Iterations)
		copy(b[o+8:o+40], k.Salt[:])
		binary.BigEndian.PutUint32(b[o+40:], k.KeyMaterialOffset)
		binary.BigEndian.PutUint32(b[o+44:], k.Stripes)
	}
	return b, nil
}

// UnmarshalBinary decodes a header from at least 592 bytes. It checks only the magic
// (ErrNotLUKS) and the version (ErrUnsupportedVersion); Validate does the rest. Strings are
// cut at the first NUL, and the last byte of each field is treated as NUL as cryptsetup
// forces it, so a 32-byte name without terminator reads as its first 31 bytes.
func (h *Header) UnmarshalBinary(b []byte) error {
	if len(b) < fieldsSize {
		return fmt.Errorf("%w: header needs %d bytes, have %d", ErrNotLUKS, fieldsSize, len(b))
	}
	if !bytes.Equal(b[:6], magic) {
		return fmt.Errorf("%w: LUKS magic not found", ErrNotLUKS)
	}
	v := binary.BigEndian.Uint16(b[6:])
	if v != 1 {
		return fmt.Errorf("%w %d", ErrUnsupportedVersion, v)
	}
	*h = Header{
		Version:            v,
		CipherName:         cString(b[offCipherName : offCipherName+cipherNameLen-1]),
		CipherMode:         cString(b[offCipherMode : offCipherMode+cipherModeLen-1]),
		HashSpec:           cString(b[offHashSpec : offHashSpec+hashSpecLen-1]),
		PayloadOffset:      binary.BigEndian.Uint32(b[offPayloadOffset:]),
		KeyBytes:           binary.BigEndian.Uint32(b[offKeyBytes:]),
		MKDigestIterations: binary.BigEndian.Uint32(b[offMKIterations:]),
		UUID:               cString(b[offUUID : offUUID+uuidLen-1]),
	}
	copy(h.MKDigest[:], b[offMKDigest:])
	copy(h.MKDigestSalt[:], b[offMKSalt:])
	for i := range h.Keyslots {
		o := offKeyslots + i*keyslotSize
		k := &h.Keyslots[i]
		k.Active = binary.BigEndian.Uint32(b[o:])
		k.Iterations = binary.BigEndian.Uint32(b[o+4:])
		copy(k.Salt[:], b[o+8:o+40])
		k.KeyMaterialOffset = binary.BigEndian.Uint32(b[o+40:])
		k.Stripes = binary.BigEndian.Uint32(b[o+44:])
	}
	return nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Validate applies the checks cryptsetup 2.6 performs when it loads a LUKS1 header
// (_check_and_convert_hdr and LUKS_check_keyslots), in the same order: the hash must be
// known with a digest of at least 20 bytes; for every slot, enabled or not, stripes must be
// 4000, the key material must start after the first 1024 bytes and, unless the header is
// detached (payload offset 0), end at or before the payload; key-material areas must not
// overlap. A key size of 0 is refused (cryptsetup fails its device-size check on it).
// The device size is checked separately (CheckDeviceSize).
func (h *Header) Validate() error {
	if h.Version != 1 {
		return fmt.Errorf("%w %d", ErrUnsupportedVersion, h.Version)
	}
	if err := checkHash(h.HashSpec); err != nil {
		return err
	}
	secs := h.AFSectors()
	for i, k := range h.Keyslots {
		if k.Stripes != Stripes {
			return fmt.Errorf("keyslot %d: %w: stripes %d, want %d", i, ErrCorruptKeyslot, k.Stripes, Stripes)
		}
		if uint64(k.KeyMaterialOffset)*SectorSize < HeaderSize {
			return fmt.Errorf("keyslot %d: %w: key material offset %d overlaps the header", i, ErrCorruptKeyslot, k.KeyMaterialOffset)
		}
		if h.PayloadOffset == 0 {
			continue
		}
		if h.PayloadOffset <= k.KeyMaterialOffset {
			return fmt.Errorf("keyslot %d: %w: key material offset %d beyond payload offset %d", i, ErrCorruptKeyslot, k.KeyMaterialOffset, h.PayloadOffset)
		}
		if uint64(h.PayloadOffset) < uint64(k.KeyMaterialOffset)+secs {
			return fmt.Errorf("keyslot %d: %w: key material (offset %d, %d sectors) runs into payload offset %d", i, ErrCorruptKeyslot, k.KeyMaterialOffset, secs, h.PayloadOffset)
		}
	}
	order := h.slotsByOffset()
	for i := 1; i < NumKeyslots; i++ {
		prev, next := order[i-1], order[i]
		if uint64(h.Keyslots[next].KeyMaterialOffset) < uint64(h.Keyslots[prev].KeyMaterialOffset)+secs {
			return fmt.Errorf("keyslot %d: %w: key material overlaps keyslot %d", prev, ErrCorruptKeyslot, next)
		}
	}
	if h.KeyBytes == 0 {
		return fmt.Errorf("%w: key size 0", ErrCorruptHeader)
	}
	return nil
}

// slotsByOffset is cryptsetup's stable insertion sort of slot numbers by key-material offset.
func (h *Header) slotsByOffset() [NumKeyslots]int {
	a := [NumKeyslots]int{0, 1, 2, 3, 4, 5, 6, 7}
	for i := 1; i < NumKeyslots; i++ {
		for j := i; j > 0 && h.Keyslots[a[j-1]].KeyMaterialOffset > h.Keyslots[a[j]].KeyMaterialOffset; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
	return a
}

// CheckDeviceSize refuses a header device shorter than the key material the header declares
// (cryptsetup LUKS_check_device_size: "Device %s is too small. (LUKS1 requires at least N
// bytes.)"). The payload is not checked against the size, as in cryptsetup.
func (h *Header) CheckDeviceSize(size int64) error {
	need := h.MetadataSectors() * SectorSize
	if size < 0 || uint64(size) < need {
		return fmt.Errorf("%w: LUKS1 requires at least %d bytes, device has %d", ErrDeviceTooSmall, need, size)
	}
	return nil
}

func checkHash(name string) error {
	nh, err := sector.NewHash(name)
	if err != nil {
		return fmt.Errorf("hash %q: %w", name, err)
	}
	if nh().Size() < DigestSize {
		return fmt.Errorf("hash %q: %w: digest shorter than %d bytes", name, ErrUnsupportedHash, DigestSize)
	}
	return nil
}

// ReadHeader reads the first 1024 bytes of r, decodes them and validates the header the way
// cryptsetup does when it loads a LUKS1 device, including the device-size check when the
// size of r can be found (an *os.File, regular or block device, or anything with a
// Size() int64 method such as *io.SectionReader or *bytes.Reader).
func ReadHeader(r io.ReaderAt) (*Header, error) {
	b := make([]byte, HeaderSize)
	n, err := r.ReadAt(b, 0)
	if n < HeaderSize {
		if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: only %d bytes, a LUKS header needs %d", ErrNotLUKS, n, HeaderSize)
		}
		return nil, fmt.Errorf("%w: reading header: %w", ErrNotLUKS, err)
	}
	h := new(Header)
	if err := h.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	if size, ok := deviceSize(r); ok {
		if err := h.CheckDeviceSize(size); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// IsLUKS reports whether r holds a LUKS1 or LUKS2 header that loads (cryptsetup isLuks
// performs the same full load, so a damaged header is "not LUKS"; a LUKS2 header with one
// good copy is LUKS). IsLUKSVersion asks for one version, as isLuks --type does.
func IsLUKS(r io.ReaderAt) bool {
	_, err := Load(r)
	return err == nil
}

// IsLUKSVersion is IsLUKS for one version only (1 or 2).
func IsLUKSVersion(r io.ReaderAt, version int) bool {
	m, err := Load(r)
	return err == nil && m.LUKSVersion() == version
}

// deviceSize finds the size of r when it can: a Size method, or an *os.File (Stat for regular
// files, seeking to the end for block devices, which Stat reports as 0 bytes).
func deviceSize(r io.ReaderAt) (int64, bool) {
	switch v := r.(type) {
	case interface{ Size() int64 }:
		return v.Size(), true
	case *os.File:
		fi, err := v.Stat()
		if err != nil {
			return 0, false
		}
		if fi.Mode().IsRegular() {
			return fi.Size(), true
		}
		if fi.Mode()&os.ModeDevice == 0 {
			return 0, false
		}
		cur, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0, false
		}
		end, err := v.Seek(0, io.SeekEnd)
		if _, err2 := v.Seek(cur, io.SeekStart); err != nil || err2 != nil {
			return 0, false
		}
		return end, true
	}
	return 0, false
}
