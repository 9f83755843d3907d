package grubconf

import "errors"

// Status answers "is boot-time unlock disabled for this volume".
type Status struct {
	Volume   Volume
	Disabled bool     // every edit is in place: a reboot will not prompt for the volume
	Pending  []string // files that still need an edit
	// Refused is set when boot itself needs LUKS (ErrEncryptedBoot); unlock is then not,
	// and must not be, disabled.
	Refused error
}

// Status reports whether boot-time unlock of v is disabled: true exactly when
// PlanDisableUnlock has nothing left to change.
func (s *System) Status(v Volume) (*Status, error) {
	st := &Status{Volume: v}
	p, err := s.PlanDisableUnlock(v)
	if errors.Is(err, ErrEncryptedBoot) {
		st.Refused = err
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	for _, c := range p.Changes {
		st.Pending = append(st.Pending, c.Path)
	}
	st.Disabled = len(st.Pending) == 0
	return st, nil
}
