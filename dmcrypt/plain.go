package dmcrypt

import (
	"errors"

	"github.com/cloudluks/cloudluks/dmcrypt/internal/dm"
	"github.com/cloudluks/cloudluks/luks"
)

// PlainParams are the parameters of a plain dm-crypt mapping, the options of
// `cryptsetup open --type plain`. Plain mode has no header, so every open must repeat them
// exactly; the zero value means cryptsetup 2.6.1's defaults (aes-cbc-essiv:sha256, a 256-bit
// key, ripemd160), which differ from 2.7's: whatever is written down for a later open should
// name every field. Read-only, discards and the performance flags are OpenOptions, as for
// LUKS.
type PlainParams struct {
	// Cipher is the dm-crypt cipher specification (--cipher); "" = "aes-cbc-essiv:sha256".
	Cipher string
	// KeySize is the key size in bytes (--key-size divided by 8); 0 = 32.
	KeySize int
	// Hash turns a passphrase into the key (--hash): "ripemd160" when "", "sha256",
	// "plain" (the passphrase bytes, cut or zero-padded), "sha256:16" (16 hashed bytes,
	// the rest zero). See luks.PlainKey. OpenPlainKey and OpenEphemeral take no passphrase
	// and refuse a Hash.
	Hash string
	// Offset is the start of the encrypted data on the device, in 512-byte sectors
	// (--offset).
	Offset uint64
	// Skip is the IV offset in 512-byte sectors (--skip): data sector 0 is encrypted as
	// sector Skip.
	Skip uint64
	// Size is the mapping size in 512-byte sectors (--size); 0 = from Offset to the end of
	// the device.
	Size uint64
	// SectorSize is the encryption sector size in bytes (--sector-size), 512 (0) to 4096.
	SectorSize uint32
	// IVLargeSectors counts IVs in SectorSize units (--iv-large-sectors).
	IVLargeSectors bool
	// Shared allows this mapping to overlap other mappings of the same device
	// (--shared); without it the device must not be in use (mapped or mounted).
	Shared bool
}

// Luks returns the parameters the userspace luks.NewPlainVolume needs to read and write the
// same data as the mapping.
func (p PlainParams) Luks() luks.PlainParams {
	return luks.PlainParams{
		Cipher: p.Cipher, KeySize: p.KeySize, Hash: p.Hash,
		Offset: p.Offset, Skip: p.Skip, Size: p.Size,
		SectorSize: p.SectorSize, IVLargeSectors: p.IVLargeSectors,
	}
}

// Errors of the plain opens, besides the package's general ones.
var (
	// ErrDeviceTooSmall (luks.ErrDeviceTooSmall): the device ends before Offset+Size, or
	// has no sectors at all.
	ErrDeviceTooSmall = luks.ErrDeviceTooSmall
	// ErrOffsetBeyondDevice: Offset is at or past the end of the device (cryptsetup:
	// "Requested offset is beyond real size of device"). It also wraps ErrDeviceTooSmall.
	ErrOffsetBeyondDevice = errors.New("requested offset is beyond real size of device")
	// ErrDeviceInUse: without Shared, the device is held by a mount, another mapping or an
	// exclusive opener (cryptsetup: "Cannot use device which is in use (already mapped or
	// mounted)"). It also wraps ErrBusy.
	ErrDeviceInUse = errors.New("device is in use (already mapped or mounted)")
	// ErrUnaligned: the data area (device minus Offset, or Size) is not a whole number of
	// encryption sectors or of the device's logical blocks. It also wraps
	// ErrInvalidParameter.
	ErrUnaligned = errors.New("device size is not aligned to the sector size")
)

// Ephemeral reports whether the mapping was made by OpenEphemeral: its key came from
// getrandom(2) inside the open and exists nowhere but in the kernel, so the data is gone
// for good once the mapping is closed.
func (s *MappingStatus) Ephemeral() bool {
	return s.UUID == dm.EphemeralUUID(s.Name)
}
