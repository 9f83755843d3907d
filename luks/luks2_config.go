package luks

import (
	"fmt"
	"strconv"

	"github.com/cloudluks/cloudluks/luks/internal/jsonc"
)

// SetLabelLUKS2 stores label and subsystem in both LUKS2 header copies (cryptsetup's
// config --label/--subsystem; crypt_set_label). Both fields are replaced at once, so ""
// clears one, as cryptsetup clears the field it was not given; a value longer than 47 bytes
// is cut to the field, as cryptsetup 2.6.1's strncpy does. The sequence ID goes up as for
// every LUKS2 write.
func SetLabelLUKS2(hdr ReadWriterAt, label, subsystem string) error {
	_, m, err := loadLUKS2ForWrite(hdr, randOr(nil))
	if err != nil {
		return err
	}
	m.label, m.subsystem = label, subsystem
	return writeLUKS2(hdr, m)
}

// SetKeyslotPriorityLUKS2 sets the priority of key slot slot (config --priority;
// crypt_keyslot_set_priority) to PriorityIgnore, PriorityNormal or PriorityPrefer.
// Normal is stored as no "priority" member at all, as cryptsetup stores it; the others
// replace the member in place or add it last. A slot that is not in the JSON fails with
// ErrKeyslotInactive before anything is written.
func SetKeyslotPriorityLUKS2(hdr ReadWriterAt, slot, priority int) error {
	if priority != PriorityIgnore && priority != PriorityNormal && priority != PriorityPrefer {
		return fmt.Errorf("%w: keyslot priority %d", ErrInvalidParameter, priority)
	}
	_, m, err := loadLUKS2ForWrite(hdr, randOr(nil))
	if err != nil {
		return err
	}
	ks := m.json.Get("keyslots").Get(strconv.Itoa(slot))
	if slot < 0 || ks == nil || ks.Kind != jsonc.Object {
		return fmt.Errorf("keyslot %d: %w", slot, ErrKeyslotInactive)
	}
	if priority == PriorityNormal {
		ks.Delete("priority")
	} else {
		ks.Set("priority", jsonc.NewInt(int64(priority)))
	}
	return writeLUKS2(hdr, m)
}
