//go:build linux

package dmcrypt

import (
	"github.com/cloudluks/cloudluks/dmcrypt/internal/dm"
	"github.com/cloudluks/cloudluks/luks"
)

// segmentTable builds the crypt table of h's data segment (LUKS1 or LUKS2).
func segmentTable(h luks.Metadata, vk *luks.VolumeKey, device string, deviceSectors uint64) (*dm.CryptTable, error) {
	if h == nil {
		return nil, ErrInvalidParameter
	}
	seg, err := h.DataSegment()
	if err != nil {
		return nil, err
	}
	return dm.CryptTableFromSegment(seg, vk, device, deviceSectors)
}

// applyPersistentFlags adds LUKS2 config.flags to a table as cryptsetup's
// LUKS2_config_get_flags adds them to the activation flags; unknown flags are ignored, as
// cryptsetup ignores them (with a verbose message).
func applyPersistentFlags(t *dm.CryptTable, flags []string) {
	for _, f := range flags {
		switch f {
		case "allow-discards":
			t.AllowDiscards = true
		case "same-cpu-crypt":
			t.SameCPUCrypt = true
		case "submit-from-crypt-cpus":
			t.SubmitFromCryptCPUs = true
		case "no-read-workqueue":
			t.NoReadWorkqueue = true
		case "no-write-workqueue":
			t.NoWriteWorkqueue = true
		}
	}
}
