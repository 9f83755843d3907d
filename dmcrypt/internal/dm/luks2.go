package dm

import (
	"fmt"
	"strconv"

	"github.com/cloudluks/cloudluks/luks"
)

// LUKS2UUID is LUKS1UUID for LUKS2 mappings: "CRYPT-LUKS2-<uuid without dashes>-<name>".
func LUKS2UUID(luksUUID, name string) string { return cryptUUID("LUKS2", luksUUID, name) }

// LUKS2KeyDescription is the keyring description cryptsetup 2.6 gives a LUKS2 volume key
// ("cryptsetup:<LUKS uuid>-d<digest id>", lib/luks2/luks2_digest.c), so a table loaded
// here references the key exactly as cryptsetup's does.
func LUKS2KeyDescription(luksUUID string, digest int) string {
	return "cryptsetup:" + luksUUID + "-d" + strconv.Itoa(digest)
}

// CryptTableFromSegment returns the table cryptsetup loads for a LUKS data segment: the
// segment's cipher, the volume key (borrowed, not copied), IV offset iv_tweak, the sector
// size, and the payload from the segment offset for its size or, when dynamic, to the end
// of a device of deviceSectors sectors, which must then be a whole number of encryption
// sectors (cryptsetup: "Device size is not aligned to requested sector size.").
func CryptTableFromSegment(seg luks.DataSegment, vk *luks.VolumeKey, device string, deviceSectors uint64) (*CryptTable, error) {
	if vk == nil {
		return nil, fmt.Errorf("%w: nil volume key", ErrInvalidParameter)
	}
	if vk.Len() != seg.KeyBytes {
		return nil, fmt.Errorf("%w: volume key of %d bytes, header says %d", ErrInvalidParameter, vk.Len(), seg.KeyBytes)
	}
	if seg.Offset < 0 || seg.Offset%512 != 0 || seg.Size < 0 || seg.Size%512 != 0 {
		return nil, fmt.Errorf("%w: segment offset %d or size %d", ErrInvalidParameter, seg.Offset, seg.Size)
	}
	offset := uint64(seg.Offset) / 512
	if deviceSectors <= offset {
		return nil, fmt.Errorf("device %s: %w (%d sectors, payload starts at %d)", device, luks.ErrDeviceTooSmall, deviceSectors, offset)
	}
	length := deviceSectors - offset
	if seg.Size > 0 {
		if uint64(seg.Size)/512 > length {
			return nil, fmt.Errorf("device %s: %w (%d sectors, segment ends at %d)", device, luks.ErrDeviceTooSmall, deviceSectors, offset+uint64(seg.Size)/512)
		}
		length = uint64(seg.Size) / 512
	}
	t := &CryptTable{Length: length, Cipher: seg.Cipher, Key: vk.Bytes(), Device: device, Offset: offset, IVOffset: seg.IVTweak}
	if seg.SectorSize > 512 {
		t.SectorSize = uint32(seg.SectorSize)
		if deviceSectors != ^uint64(0) && length%uint64(seg.SectorSize/512) != 0 {
			return nil, fmt.Errorf("device %s: %w: size is not aligned to the %d-byte sector size", device, ErrInvalidParameter, seg.SectorSize)
		}
	}
	return t, nil
}
