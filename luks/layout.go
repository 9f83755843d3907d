package luks

import "fmt"

// DefaultAlignPayload is cryptsetup's default data alignment (1 MiB) in sectors, used when
// the device reports no topology (image files, most cloud disks).
const DefaultAlignPayload = 2048

// Layout is where a fresh LUKS1 header puts its key material and payload
// (cryptsetup LUKS_generate_phdr).
type Layout struct {
	KeyMaterialOffsets [NumKeyslots]uint32 // sectors
	AFSectors          uint32              // size of one slot's key material, sectors
	HeaderSectors      uint32              // end of the last slot, rounded up to 4 KiB
	PayloadOffset      uint32              // sectors
}

func roundUp(x, m uint64) uint64 { return (x + m - 1) / m * m }

// ComputeLayout lays out key slots for a keyBytes-long volume key: slot 0 at sector 8, each
// further slot at the next 4 KiB boundary after the previous one. The payload goes to the
// header size rounded up to alignPayload sectors (0 = 2048), or, for a detached header, to
// alignPayload itself (0 allowed). A non-zero payload offset below the header size is
// refused as cryptsetup does ("Data offset for LUKS header must be either 0 or higher than
// header size.").
func ComputeLayout(keyBytes int, alignPayload uint32, detached bool) (Layout, error) {
	var l Layout
	if keyBytes <= 0 || keyBytes > maxKeyslotSize/Stripes {
		return l, fmt.Errorf("%w: key size %d bytes", ErrInvalidParameter, keyBytes)
	}
	secs := afSectors(uint64(keyBytes))
	l.AFSectors = uint32(secs)
	hs := uint64(alignKeyslots / SectorSize)
	for i := range l.KeyMaterialOffsets {
		l.KeyMaterialOffsets[i] = uint32(hs)
		hs = roundUp(hs+secs, alignKeyslots/SectorSize)
	}
	l.HeaderSectors = uint32(hs)
	var payload uint64
	switch {
	case detached:
		payload = uint64(alignPayload)
	default:
		a := uint64(alignPayload)
		if a == 0 {
			a = DefaultAlignPayload
		}
		payload = roundUp(hs, a)
	}
	if payload > uint64(^uint32(0)) {
		return l, fmt.Errorf("%w: payload offset %d sectors does not fit the header", ErrInvalidParameter, payload)
	}
	if payload != 0 && payload < hs {
		return l, fmt.Errorf("%w: data offset for LUKS header must be either 0 or higher than header size (%d sectors)", ErrInvalidParameter, hs)
	}
	l.PayloadOffset = uint32(payload)
	return l, nil
}
