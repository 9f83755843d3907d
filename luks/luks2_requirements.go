package luks

import (
	"fmt"
	"strings"
)

// Requirement classes of config.requirements.mandatory, as cryptsetup 2.6's
// requirements_flags table names them (lib/luks2/luks2_json_metadata.c). Any other name is
// a requirement of a later cryptsetup: no operation may ignore it.
const (
	requirementOffline = "offline-reencrypt" // cryptsetup-reencrypt's legacy, offline reencryption
)

var requirementsOnline = []string{"online-reencrypt", "online-reencrypt-v2", "online-reencrypt-v3"}

// RequirementError is ErrUnmetRequirements with what cryptsetup's LUKS2_unmet_requirements
// found: an unknown requirement (which no mask lets through), an unfinished legacy
// (offline) reencryption, an online reencryption in progress. Messages gives
// libcryptsetup's lines for it.
type RequirementError struct {
	Requirements []string // config.requirements.mandatory as in the header
	Unknown      bool
	Legacy       bool // offline-reencrypt
	Online       bool // online-reencrypt, -v2, -v3 (only when the operation does not allow it)
}

func (e *RequirementError) Error() string {
	return fmt.Sprintf("%v: %s", ErrUnmetRequirements, strings.Join(e.Requirements, ", "))
}

// Is makes errors.Is(err, ErrUnmetRequirements) hold.
func (e *RequirementError) Is(target error) bool { return target == ErrUnmetRequirements }

// Messages are the lines cryptsetup 2.6.1 logs for the refusal, in its order: an unknown
// requirement alone, else one line per reencryption kind.
func (e *RequirementError) Messages() []string {
	if e.Unknown {
		return []string{"Unmet LUKS2 requirements detected."}
	}
	var out []string
	if e.Legacy {
		out = append(out, "Operation incompatible with device marked for legacy reencryption. Aborting.")
	}
	if e.Online {
		out = append(out, "Operation incompatible with device marked for LUKS2 reencryption. Aborting.")
	}
	return out
}

// UnmetRequirements is cryptsetup's LUKS2_unmet_requirements: nil when the header's
// mandatory requirements allow the operation, else a *RequirementError. allowOnline is
// cryptsetup's CRYPT_REQUIREMENT_ONLINE_REENCRYPT mask: the operations that understand an
// online reencryption in progress (header restore from a backup, reencryption itself) pass
// it; every header change outside a reencryption (add, change key, UUID, label, priority,
// tokens, convert) passes false. Unknown requirements are never allowed.
func (h *Header2) UnmetRequirements(allowOnline bool) error {
	if len(h.Config.Requirements) == 0 {
		return nil
	}
	e := &RequirementError{Requirements: h.Config.Requirements}
	for _, r := range h.Config.Requirements {
		switch {
		case r == requirementOffline:
			e.Legacy = true
		case inList(requirementsOnline, r):
			e.Online = e.Online || !allowOnline
		default:
			e.Unknown = true
		}
	}
	if !e.Unknown && !e.Legacy && !e.Online {
		return nil
	}
	return e
}

// LegacyReencryption reports an unfinished offline reencryption (offline-reencrypt): header
// restore then skips its data offset and size checks and warns, as cryptsetup does.
func (h *Header2) LegacyReencryption() bool {
	return inList(h.Config.Requirements, requirementOffline)
}

// UnknownRequirements reports a requirement no cryptsetup 2.6 knows.
func (h *Header2) UnknownRequirements() bool {
	e, ok := h.UnmetRequirements(true).(*RequirementError)
	return ok && e.Unknown
}

func inList(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// DataOffset is LUKS2_get_data_offset in bytes: during a reencryption the offset of the
// new (backup-final) segment. Unlike DataSegment it does not look at requirements: header
// restore compares it with a backup's whatever the device requires.
func (h *Header2) DataOffset() uint64 { return h.dataOffset() }
