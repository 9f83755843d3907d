package luks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cloudluks/cloudluks/luks/internal/jsonc"
)

// ErrReencryptKeys is the failure of cryptsetup's LUKS2_reencrypt_digest_verify when the
// keys opened do not include the key of every digest a reencryption in progress needs (the
// old segment's and the new one's): crypt_activate_by_passphrase then returns -EINVAL and
// cryptsetup exits 1 without a message.
var ErrReencryptKeys = errors.New("reencryption in progress needs the keys of both the old and the new segment")

// ErrReencryptMetadata: the reencrypt keyslot's digest does not match the keys and the
// reencryption metadata (cryptsetup: "Reencryption metadata is invalid.").
// It is a wrong passphrase too: cryptsetup returns -EPERM.
var ErrReencryptMetadata = fmt.Errorf("reencryption metadata is invalid: %w", ErrWrongPassphrase)

// verifyReencryptDigest is LUKS2_reencrypt_digest_verify with the keys opened (nil where
// the reencryption has no such digest).
func (h *Header2) verifyReencryptDigest(ctx context.Context, oldKey, newKey *VolumeKey, opts UnlockOptions) error {
	var ok, nk []byte
	if oldKey != nil {
		ok = oldKey.b
	}
	if newKey != nil && newKey != oldKey {
		nk = newKey.b
	}
	data, good := h.reencryptVerificationData(ok, nk)
	if !good {
		return ErrReencryptKeys // -EINVAL from the assembly, silent
	}
	defer clear(data)
	slot := -1
	for _, i := range h.keyslotOrder() { // LUKS2_find_keyslot: the first in the JSON
		if h.Keyslots[i].Type == "reencrypt" {
			slot = i
			break
		}
	}
	d := h.keyslotDigest(slot)
	if d == nil {
		return fmt.Errorf("%w: no digest on the reencrypt keyslot", ErrReencryptMetadata)
	}
	match, err := verifyDigest2(ctx, d, data, opts.MaxIterations)
	if err != nil {
		return err
	}
	if !match {
		return ErrReencryptMetadata
	}
	return nil
}

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
// Then, as LUKS2_reencrypt_digest_verify, the reencrypt keyslot's digest must match both
// keys and the reencryption metadata (ErrReencryptMetadata otherwise).
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
	if err := h.verifyReencryptDigest(ctx, keys[old], keys[new], opts); err != nil {
		return nil, -1, err
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

// reencryptVersion is LUKS2_config_get_reencrypt_version: the version of the first
// online-reencrypt requirement cryptsetup knows (-1 for none).
func (h *Header2) reencryptVersion() int {
	for _, r := range h.Config.Requirements {
		switch r {
		case "online-reencrypt":
			return 1
		case "online-reencrypt-v2":
			return 2
		case "online-reencrypt-v3":
			return 3
		}
	}
	return -1
}

// serialField is one field of cryptsetup's reencryption verification data (sr() in
// lib/luks2/luks2_reencrypt_digest.c).
type serialField struct {
	kind byte // 's' string (≤ 64 bytes), 'u' u64 in a string, 'x' u64 or "dynamic", 'i' u32 JSON int
	obj  *jsonc.Value
	key  string
}

// appendSerial is srs(): the fields in order, big endian; ok is false where cryptsetup's
// serialisation yields 0 bytes (a missing or mistyped field), which makes it fail.
func appendSerial(b []byte, fields []serialField) ([]byte, bool) {
	for _, f := range fields {
		if f.obj == nil || f.obj.Kind != jsonc.Object {
			return b, false
		}
		v := f.obj.Get(f.key)
		if v == nil {
			return b, false
		}
		switch f.kind {
		case 's':
			if v.Kind != jsonc.String || len(v.Text) > 64 || v.Text == "" {
				return b, false
			}
			b = append(b, v.Text...)
		case 'u', 'x':
			if v.Kind != jsonc.String {
				return b, false
			}
			if f.kind == 'x' && v.Text == "dynamic" {
				b = append(b, "dynamic"...)
				break
			}
			n, _ := strconv.ParseUint(v.Text, 10, 64)
			b = binary.BigEndian.AppendUint64(b, n)
		case 'i':
			if v.Kind != jsonc.Number || strings.ContainsAny(v.Text, ".eE") {
				return b, false
			}
			n, _ := strconv.ParseInt(v.Text, 10, 64)
			b = binary.BigEndian.AppendUint32(b, uint32(n))
		}
	}
	return b, true
}

// reencryptVerificationData is reencrypt_assembly_verification_data: "v" and '0'+version,
// the old and the new key, the reencrypt keyslot's mode, direction and area, then the
// backup-previous, backup-final and (if any) backup-moved-segment segments.
func (h *Header2) reencryptVerificationData(oldKey, newKey []byte) ([]byte, bool) {
	ver := h.reencryptVersion()
	root, _, err := jsonc.Parse(h.JSON)
	if ver < 0 || err != nil {
		return nil, false
	}
	var ks *jsonc.Value
	if kss := root.Get("keyslots"); kss != nil && kss.Kind == jsonc.Object {
		for _, m := range kss.Members {
			if t := m.Value.Get("type"); t != nil && t.Text == "reencrypt" {
				ks = m.Value
				break
			}
		}
	}
	if ks == nil || ks.Kind != jsonc.Object {
		return nil, false
	}
	area := ks.Get("area")
	if area == nil || area.Get("type") == nil {
		return nil, false
	}
	fields := []serialField{{'s', ks, "mode"}, {'s', ks, "direction"}, {'s', area, "type"}, {'u', area, "offset"}, {'u', area, "size"}}
	switch area.Get("type").Text {
	case "datashift-checksum":
		fields = append(fields, serialField{'s', area, "hash"}, serialField{'i', area, "sector_size"}, serialField{'u', area, "shift_size"})
	case "datashift", "datashift-journal":
		fields = append(fields, serialField{'u', area, "shift_size"})
	case "checksum":
		fields = append(fields, serialField{'s', area, "hash"}, serialField{'i', area, "sector_size"})
	}
	b := append([]byte{0x76, 0x30 + byte(ver)}, oldKey...)
	b = append(b, newKey...)
	b, ok := appendSerial(b, fields)
	if !ok {
		clear(b)
		return nil, false
	}
	segs := root.Get("segments")
	byFlag := func(flag string) *jsonc.Value {
		if segs == nil || segs.Kind != jsonc.Object {
			return nil
		}
		for _, m := range segs.Members {
			if fl := m.Value.Get("flags"); fl != nil && fl.Kind == jsonc.Array {
				for _, it := range fl.Items {
					if it.Kind == jsonc.String && it.Text == flag {
						return m.Value
					}
				}
			}
		}
		return nil
	}
	for _, flag := range []string{"backup-previous", "backup-final", "backup-moved-segment"} {
		s := byFlag(flag)
		if s == nil {
			if flag == "backup-moved-segment" {
				break
			}
			clear(b)
			return nil, false
		}
		f := []serialField{{'s', s, "type"}, {'u', s, "offset"}, {'x', s, "size"}}
		switch t := s.Get("type"); {
		case t != nil && t.Text == "crypt":
			f = append(f, serialField{'u', s, "iv_tweak"}, serialField{'s', s, "encryption"}, serialField{'i', s, "sector_size"})
		case t != nil && t.Text == "linear":
		default:
			clear(b)
			return nil, false
		}
		if b, ok = appendSerial(b, f); !ok {
			clear(b)
			return nil, false
		}
	}
	return b, true
}
