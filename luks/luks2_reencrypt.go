package luks

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrReencryptKeys is the failure of cryptsetup's LUKS2_reencrypt_digest_verify when the
// keys opened do not include the key of every digest a reencryption in progress needs (the
// old segment's and the new one's): crypt_activate_by_passphrase then returns -EINVAL and
// cryptsetup exits 1 without a message.
var ErrReencryptKeys = errors.New("reencryption in progress needs the keys of both the old and the new segment")

// reencrypting is LUKS2_reencrypt_status > CRYPT_REENCRYPT_NONE: an online reencryption
// requirement and a reencrypt keyslot that describes it.
func (h *Header2) reencrypting() bool {
	online := false
	for _, r := range h.Config.Requirements {
		if inList(requirementsOnline, r) {
			online = true
		}
	}
	if !online {
		return false
	}
	for _, ks := range h.Keyslots {
		if ks.Type == "reencrypt" {
			return true
		}
	}
	return false
}

// segmentByFlag is LUKS2_get_segment_by_flag: the lowest-numbered segment carrying flag, or -1.
func (h *Header2) segmentByFlag(flag string) int {
	for _, id := range sortedKeys(h.Segments) {
		if inList(h.Segments[id].Flags, flag) {
			return id
		}
	}
	return -1
}

// reencryptDigests are LUKS2_reencrypt_digest_old and _new: the digests covering the
// segments flagged backup-previous and backup-final, -1 where there is none (encryption
// has no old key, decryption no new one).
func (h *Header2) reencryptDigests() (old, new int) {
	old, new = -1, -1
	if s := h.segmentByFlag("backup-previous"); s >= 0 {
		if id, ok := h.SegmentDigest(s); ok {
			old = id
		}
	}
	if s := h.segmentByFlag("backup-final"); s >= 0 {
		if id, ok := h.SegmentDigest(s); ok {
			new = id
		}
	}
	return old, new
}

// unlockReencrypt is crypt_activate_by_passphrase without a name (open --test-passphrase,
// the passphrase checks of luksChangeKey and luksKillSlot) on a header with a reencryption
// in progress: _open_all_keys, then the check that every key the reencryption needs is
// there. With opts.AllowUnbound (CRYPT_ACTIVATE_ALLOW_UNBOUND_KEY, i.e. CRYPT_ANY_SEGMENT)
// one keyslot is opened against its own digest (LUKS2_keyslot_open); otherwise
// LUKS2_keyslot_open_all_segments opens the old digest and then the new one, each through
// opts.Keyslot or, without it, the first slot of that digest in priority order. The result
// is the key of the new digest (of the default segment) and the slot that opened it, or the
// last slot opened. A passphrase that opens one digest only is ErrReencryptKeys; a named
// slot that belongs to the other digest is ErrKeyslotInactive, as cryptsetup's -ENOENT.
//
// cryptsetup then checks the reencrypt keyslot's digest over both keys and the reencryption
// metadata; this is not done here, so a header whose reencryption metadata was altered
// after `cryptsetup reencrypt --init-only` is accepted here and refused by cryptsetup.
func (h *Header2) unlockReencrypt(ctx context.Context, r io.ReaderAt, pass []byte, opts UnlockOptions) (*VolumeKey, int, error) {
	old, new := h.reencryptDigests()
	keys := map[int]*VolumeKey{}
	defer func() {
		for _, k := range keys {
			k.Wipe()
		}
	}()
	slot := -1
	if opts.AllowUnbound {
		var order []int
		if opts.Keyslot != nil {
			order = []int{*opts.Keyslot}
		}
		vk, s, err := h.openByDigest(ctx, r, order, -1, pass, opts)
		if err != nil {
			return nil, -1, err
		}
		keys[h.digestOfKeyslot(s)] = vk
		slot = s
	} else {
		for _, d := range []int{old, new} {
			if d < 0 || (d == old && d == new && keys[d] != nil) {
				continue
			}
			var order []int
			if opts.Keyslot != nil {
				order = []int{*opts.Keyslot}
			}
			vk, s, err := h.openByDigest(ctx, r, order, d, pass, opts)
			if err != nil {
				return nil, -1, err
			}
			keys[d] = vk
			slot = s
		}
	}
	if (old < 0 && new < 0) || (old >= 0 && keys[old] == nil) || (new >= 0 && keys[new] == nil) {
		return nil, -1, ErrReencryptKeys
	}
	want := new
	if want < 0 {
		want = old
	}
	vk := keys[want]
	delete(keys, want)
	return vk, slot, nil
}

// digestOfKeyslot is LUKS2_digest_by_keyslot (-1 for none).
func (h *Header2) digestOfKeyslot(slot int) int {
	for _, id := range h.digestOrder() {
		if containsInt(h.Digests[id].Keyslots, slot) {
			return id
		}
	}
	return -1
}

// openByDigest is LUKS2_keyslot_open_by_digest (digest >= 0) or LUKS2_keyslot_open with
// CRYPT_ANY_SEGMENT (digest -1: each slot against its own digest): the slot in order when
// it holds one, else every slot of priority prefer and then normal, a wrong passphrase
// outweighing an unusable slot.
func (h *Header2) openByDigest(ctx context.Context, r io.ReaderAt, order []int, digest int, pass []byte, opts UnlockOptions) (*VolumeKey, int, error) {
	try := func(i int) (*VolumeKey, error) {
		d := digest
		if d < 0 {
			d = h.digestOfKeyslot(i)
		}
		if d < 0 || h.Digests[d] == nil {
			return nil, fmt.Errorf("keyslot %d: %w: no digest", i, ErrKeyslotInactive)
		}
		return h.openKeyslot(ctx, r, i, h.Digests[d], pass, opts)
	}
	if order != nil {
		vk, err := try(order[0])
		if err != nil {
			return nil, -1, err
		}
		return vk, order[0], nil
	}
	var res [2]error
	for pass, prio := range []int{PriorityPrefer, PriorityNormal} {
		for _, i := range h.keyslotOrder() {
			p := PriorityNormal
			if ks := h.Keyslots[i]; ks.Priority != nil {
				p = *ks.Priority
			}
			if p != prio {
				continue
			}
			vk, err := try(i)
			if err == nil {
				return vk, i, nil
			}
			if !errors.Is(err, ErrWrongPassphrase) && !errors.Is(err, ErrKeyslotInactive) {
				return nil, -1, err
			}
			res[pass] = err
		}
	}
	switch {
	case res[1] == nil && res[0] == nil:
		return nil, -1, fmt.Errorf("%w: no usable keyslot is available", ErrKeyslotInactive)
	case errors.Is(res[0], ErrWrongPassphrase) && (res[1] == nil || errors.Is(res[1], ErrKeyslotInactive)):
		return nil, -1, ErrWrongPassphrase
	case res[1] == nil:
		return nil, -1, res[0]
	case errors.Is(res[1], ErrWrongPassphrase):
		return nil, -1, ErrWrongPassphrase
	}
	return nil, -1, res[1]
}
