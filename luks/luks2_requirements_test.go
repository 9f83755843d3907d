package luks

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withRequirements is the corrupt-test base image (cryptsetup-made: slot 0 "pass0"
// argon2id, slot 1 "pass1" pbkdf2) with config.requirements.mandatory = reqs in both
// copies, checksums resealed.
func withRequirements(t *testing.T, reqs ...string) *memDev {
	im := newL2Image(baseImage2(t))
	if len(reqs) > 0 {
		im.edit(t, func(m map[string]any) {
			list := make([]any, len(reqs))
			for i, r := range reqs {
				list[i] = r
			}
			obj(m, "config")["requirements"] = map[string]any{"mandatory": list}
		})
		im.sealBoth()
	}
	return &memDev{b: im.b}
}

// TestUnmetRequirements is LUKS2_unmet_requirements' decision for each kind of
// requirement, with and without the online-reencryption mask, and the lines cryptsetup
// 2.6.1 logs for it.
func TestUnmetRequirements(t *testing.T) {
	const (
		legacy  = "Operation incompatible with device marked for legacy reencryption. Aborting."
		online  = "Operation incompatible with device marked for LUKS2 reencryption. Aborting."
		unknown = "Unmet LUKS2 requirements detected."
	)
	for _, c := range []struct {
		reqs        []string
		allowOnline bool
		want        []string // nil: allowed
	}{
		{nil, false, nil},
		{[]string{"offline-reencrypt"}, false, []string{legacy}},
		{[]string{"offline-reencrypt"}, true, []string{legacy}},
		{[]string{"online-reencrypt"}, false, []string{online}},
		{[]string{"online-reencrypt"}, true, nil},
		{[]string{"online-reencrypt-v3"}, true, nil},
		{[]string{"future-feature"}, true, []string{unknown}},
		{[]string{"offline-reencrypt", "future-feature"}, false, []string{unknown}},
	} {
		h := &Header2{Config: Config2{Requirements: c.reqs}}
		err := h.UnmetRequirements(c.allowOnline)
		if c.want == nil {
			assert.NoError(t, err, "%v allowOnline=%v", c.reqs, c.allowOnline)
			continue
		}
		var re *RequirementError
		require.ErrorAs(t, err, &re, "%v", c.reqs)
		assert.ErrorIs(t, err, ErrUnmetRequirements)
		assert.Equal(t, c.want, re.Messages(), "%v allowOnline=%v", c.reqs, c.allowOnline)
	}
}

// TestRequirementsPerOperation: every header change refuses a header with a requirement,
// before writing anything; key slot destruction (crypt_keyslot_destroy is unrestricted) and
// reading (unlock, token export) go through.
func TestRequirementsPerOperation(t *testing.T) {
	ctx := context.Background()
	fast := LUKS2KeyslotOptions{PBKDF: "pbkdf2", ForceIterations: 1000}
	writes := map[string]func(d *memDev) error{
		"add key": func(d *memDev) error {
			_, err := AddKeyLUKS2(ctx, d, []byte("pass1"), []byte("new"), fast)
			return err
		},
		"change key": func(d *memDev) error {
			_, err := ChangeKeyLUKS2(ctx, d, []byte("pass1"), []byte("new"), fast)
			return err
		},
		"uuid":     func(d *memDev) error { return SetUUIDLUKS2(d, "", nil) },
		"label":    func(d *memDev) error { return SetLabelLUKS2(d, "x", "") },
		"priority": func(d *memDev) error { return SetKeyslotPriorityLUKS2(d, 1, PriorityPrefer) },
		"token add": func(d *memDev) error {
			_, err := TokenAddKeyringLUKS2(d, -1, false, "k", 1, false, nil)
			return err
		},
		"token import": func(d *memDev) error {
			_, err := TokenImportLUKS2(d, -1, false, []byte(`{"type":"x","keyslots":[]}`), -1, nil)
			return err
		},
		"convert": func(d *memDev) error { return ConvertLUKS2ToLUKS1(d, nil) },
	}
	for _, reqs := range [][]string{{"offline-reencrypt"}, {"future-feature"}} {
		for name, op := range writes {
			d := withRequirements(t, reqs...)
			before := string(d.b)
			err := op(d)
			var re *RequirementError
			assert.ErrorAs(t, err, &re, "%s with %v", name, reqs)
			assert.True(t, before == string(d.b), "%s with %v wrote the header", name, reqs)
		}
		d := withRequirements(t, reqs...)
		_, vk, slot, err := Unlock2(ctx, d, []byte("pass1"), UnlockOptions{})
		require.NoError(t, err, "unlock with %v", reqs)
		vk.Wipe()
		assert.Equal(t, 1, slot)
		_, err = d.DataSegmentOf(t)
		assert.ErrorIs(t, err, ErrUnmetRequirements, "a header with %v must not be mapped", reqs)
		require.NoError(t, KillSlotLUKS2(d, 1, nil), "kill slot with %v", reqs)
		h, err := ReadHeader2(d)
		require.NoError(t, err)
		assert.Nil(t, h.Keyslots[1])
		assert.Equal(t, reqs, h.Config.Requirements, "the requirement stays after the kill")
	}
}

// DataSegmentOf reads d's header and returns its data segment.
func (m *memDev) DataSegmentOf(t *testing.T) (DataSegment, error) {
	h, err := ReadHeader2(m)
	require.NoError(t, err)
	return h.DataSegment()
}

// TestTokenAssignUnassign: assign adds a slot once, unassign removes it; the errors
// name the case (no such token, not assigned, no such slot, out of range), and a token
// that is not assigned is reported as such even when requirements forbid the change.
func TestTokenAssignUnassign(t *testing.T) {
	d := withRequirements(t)
	id, err := TokenImportLUKS2(d, -1, false, []byte(`{"type":"x-a","keyslots":[],"z":1}`), -1, nil)
	require.NoError(t, err)
	slots := func() []int {
		h, err := ReadHeader2(d)
		require.NoError(t, err)
		return h.Tokens[id].Keyslots
	}
	require.NoError(t, TokenAssignLUKS2(d, id, 1, nil))
	require.NoError(t, TokenAssignLUKS2(d, id, 1, nil))
	require.NoError(t, TokenAssignLUKS2(d, id, 0, nil))
	assert.Equal(t, []int{1, 0}, slots())
	js, err := TokenExportLUKS2(d, id)
	require.NoError(t, err)
	assert.Equal(t, `{"type":"x-a","keyslots":["1","0"],"z":1}`, string(js), "member order kept")
	require.NoError(t, TokenUnassignLUKS2(d, id, 1, nil))
	assert.Equal(t, []int{0}, slots())

	assert.ErrorIs(t, TokenUnassignLUKS2(d, id, 1, nil), ErrTokenNotAssigned)
	err = TokenUnassignLUKS2(d, 7, 0, nil)
	assert.ErrorIs(t, err, ErrTokenNotAssigned)
	assert.ErrorIs(t, err, ErrTokenNotInUse)
	assert.ErrorIs(t, TokenAssignLUKS2(d, 7, 0, nil), ErrTokenNotInUse)
	assert.ErrorIs(t, TokenAssignLUKS2(d, id, 5, nil), ErrKeyslotInactive)
	assert.ErrorIs(t, TokenUnassignLUKS2(d, id, 32, nil), ErrInvalidParameter)
	assert.ErrorIs(t, TokenUnassignLUKS2(d, 32, 0, nil), ErrInvalidToken)

	r := withRequirements(t, "future-feature")
	assert.ErrorIs(t, TokenUnassignLUKS2(r, 0, 0, nil), ErrTokenNotAssigned)
	assert.ErrorIs(t, TokenRemoveLUKS2(r, 0, nil), ErrTokenNotInUse)
	var re *RequirementError
	_, err = TokenImportLUKS2(r, -1, false, []byte(`{"type":"x","keyslots":[]}`), -1, nil)
	assert.ErrorAs(t, err, &re)
}
