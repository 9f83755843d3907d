package luks

import (
	"context"
	"fmt"
)

// CheckVolumeKey reports whether vk is the volume key of h, the way cryptsetup checks a
// --volume-key-file: PBKDF2 of the key with the header's MK-digest salt and iterations,
// compared in constant time with the stored digest (LUKS1 on-disk format, section 2.4).
// It is for a key that arrives from elsewhere (the keeper, a key file) before it is handed
// to the kernel, which would otherwise accept any key and map garbage.
//
// A key of the wrong length or with another digest gives ErrVolumeKeyMismatch; a header
// this package cannot check (unknown hash, MK-digest work beyond DefaultMaxIterations)
// gives that error's sentinel instead. vk is only read.
func CheckVolumeKey(h *Header, vk *VolumeKey) error {
	if h == nil {
		return fmt.Errorf("%w: no header", ErrInvalidParameter)
	}
	sc, err := prepare(h, 0)
	if err != nil {
		return err
	}
	if vk == nil || vk.Len() != int(h.KeyBytes) {
		n := 0
		if vk != nil {
			n = vk.Len()
		}
		return fmt.Errorf("%w: %d-byte key, the header's is %d bytes", ErrVolumeKeyMismatch, n, h.KeyBytes)
	}
	ok, err := verifyVolumeKey(context.Background(), h, sc, vk.b)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w (UUID %q)", ErrVolumeKeyMismatch, h.UUID)
	}
	return nil
}
