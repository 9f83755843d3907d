package luks

import (
	"context"
	"fmt"
)

// CheckVolumeKey reports whether vk is the volume key of h (a *Header or a *Header2), the
// way cryptsetup checks a --volume-key-file: PBKDF2 of the key with the header's digest salt
// and iterations, compared in constant time with the stored digest (LUKS1 on-disk format,
// section 2.4; for LUKS2 the pbkdf2 digest of the data segment). It is for a key that
// arrives from elsewhere (the keeper, a key file) before it is handed to the kernel, which
// would otherwise accept any key and map garbage.
//
// A key of the wrong length or with another digest gives ErrVolumeKeyMismatch; a header
// this package cannot check (unknown hash, digest work beyond DefaultMaxIterations, a
// LUKS2 header with unmet requirements) gives that error's sentinel instead. vk is only
// read.
func CheckVolumeKey(h Metadata, vk *VolumeKey) error {
	switch x := h.(type) {
	case nil:
		return fmt.Errorf("%w: no header", ErrInvalidParameter)
	case *Header:
		if x == nil {
			return fmt.Errorf("%w: no header", ErrInvalidParameter)
		}
		// The LUKS1 checks of the header come before the key length, as before.
		if _, err := prepare(x, 0); err != nil {
			return err
		}
	case *Header2:
		if x == nil {
			return fmt.Errorf("%w: no header", ErrInvalidParameter)
		}
	}
	seg, err := h.DataSegment()
	if err != nil {
		return err
	}
	if vk == nil || vk.Len() != seg.KeyBytes {
		n := 0
		if vk != nil {
			n = vk.Len()
		}
		return fmt.Errorf("%w: %d-byte key, the header's is %d bytes", ErrVolumeKeyMismatch, n, seg.KeyBytes)
	}
	ok, err := h.verifyKey(context.Background(), vk.b)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w (UUID %q)", ErrVolumeKeyMismatch, seg.UUID)
	}
	return nil
}
