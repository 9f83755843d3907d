package luks

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/cloudluks/cloudluks/luks/internal/jsonc"
	"github.com/cloudluks/cloudluks/luks/sector"
)

// ErrUnmetRequirements: the header carries a mandatory requirement (config.requirements)
// this package does not implement, such as an unfinished reencryption; cryptsetup refuses to
// activate such a device as well ("Unmet LUKS2 requirements detected.").
var ErrUnmetRequirements = errors.New("unmet LUKS2 requirements")

// ErrKeyslotOpenFailed: opening a key slot failed for a reason that is neither a wrong
// passphrase nor an unusable slot, such as a digest whose iterations read as 0 (cryptsetup:
// "Keyslot open failed.", exit code 1). The header itself loads.
var ErrKeyslotOpenFailed = errors.New("keyslot open failed")

// Keyslot priorities (cryptsetup crypt_keyslot_priority).
const (
	PriorityIgnore = 0
	PriorityNormal = 1
	PriorityPrefer = 2
)

// DataSegment describes the encrypted payload of a LUKS1 or LUKS2 device the way a mapping
// needs it: what dm-crypt's table and the userspace Volume are built from.
type DataSegment struct {
	Version    int    // LUKS version: 1 or 2
	UUID       string // header UUID
	Cipher     string // cipher spec, e.g. "aes-xts-plain64"
	KeyBytes   int    // volume key length
	Offset     int64  // bytes from the start of the data device
	Size       int64  // bytes; 0 = to the end of the device ("dynamic")
	SectorSize int    // encryption sector size: 512 (LUKS1) … 4096
	IVTweak    uint64 // added to the IV sector number (in 512-byte units)
	Flags      []string
}

// Metadata is a loaded header of either version: *Header (LUKS1) or *Header2 (LUKS2).
// dmcrypt and NewVolume take it, so code that handles both versions needs no type switch.
type Metadata interface {
	// LUKSVersion is 1 or 2.
	LUKSVersion() int
	// DataSegment is the payload description; an error when the header has no segment
	// this package can map (LUKS2 without a crypt segment 0, say).
	DataSegment() (DataSegment, error)
	// Dump writes the text of cryptsetup luksDump for this header; path is the device as
	// the user typed it (LUKS1 prints it, LUKS2 does not).
	Dump(w io.Writer, path string) error
	// verifyKey checks a volume key against the header's digest.
	verifyKey(ctx context.Context, key []byte) (bool, error)
}

// LUKSVersion is 1.
func (h *Header) LUKSVersion() int { return 1 }

// DataSegment describes the LUKS1 payload: 512-byte sectors from the payload offset to the
// end of the device.
func (h *Header) DataSegment() (DataSegment, error) {
	return DataSegment{Version: 1, UUID: h.UUID, Cipher: h.CipherSpec(), KeyBytes: int(h.KeyBytes),
		Offset: h.PayloadOffsetBytes(), SectorSize: SectorSize}, nil
}

func (h *Header) verifyKey(ctx context.Context, key []byte) (bool, error) {
	sc, err := prepare(h, 0)
	if err != nil {
		return false, err
	}
	if len(key) != int(h.KeyBytes) {
		return false, nil
	}
	return verifyVolumeKey(ctx, h, sc, key)
}

// LUKSVersion is 2.
func (h *Header2) LUKSVersion() int { return 2 }

// DataSegment describes segment 0, which must be a crypt segment (the only layout outside
// a reencryption), with the key size of its digest's keyslots and config.flags. A header
// with mandatory requirements (config.requirements.mandatory: an unfinished reencryption,
// or a feature of a later cryptsetup) gives ErrUnmetRequirements: it must not be mapped,
// as cryptsetup refuses to activate it.
func (h *Header2) DataSegment() (DataSegment, error) {
	if len(h.Config.Requirements) > 0 {
		return DataSegment{}, fmt.Errorf("%w: %q", ErrUnmetRequirements, h.Config.Requirements)
	}
	s, ok := h.Segments[0]
	if !ok || s.Type != "crypt" {
		return DataSegment{}, fmt.Errorf("%w: no crypt segment 0", ErrUnsupportedCipher)
	}
	d := h.segmentDigest(0)
	kb := 0
	if d != nil {
		for _, k := range d.Keyslots {
			if ks, ok := h.Keyslots[k]; ok && ks.Type == "luks2" {
				kb = ks.KeySize
				break
			}
		}
	}
	if s.Offset > 1<<62 || s.Size > 1<<62 {
		return DataSegment{}, fmt.Errorf("%w: segment 0 offset or size out of range", ErrCorruptHeader)
	}
	return DataSegment{Version: 2, UUID: h.UUID, Cipher: s.Encryption, KeyBytes: kb, Offset: int64(s.Offset),
		Size: int64(s.Size), SectorSize: s.SectorSize, IVTweak: s.IVTweak, Flags: h.Config.Flags}, nil
}

// SegmentDigest is the id of the digest that covers segment seg (cryptsetup
// LUKS2_digest_by_segment); ok is false when none does.
func (h *Header2) SegmentDigest(seg int) (id int, ok bool) {
	for _, id := range h.digestOrder() {
		if containsInt(h.Digests[id].Segments, seg) {
			return id, true
		}
	}
	return -1, false
}

// defaultSegment is LUKS2_get_default_segment: during an online reencryption the segment
// flagged "backup-final" (the new key's), else segment 0. Keys are checked against its digest.
func (h *Header2) defaultSegment() int {
	for _, id := range sortedKeys(h.Segments) {
		for _, f := range h.Segments[id].Flags {
			if f == "backup-final" {
				return id
			}
		}
	}
	return 0
}

// keyslotDigest is the digest keyslot slot belongs to (nil if none).
func (h *Header2) keyslotDigest(slot int) *Digest2 {
	for _, id := range h.digestOrder() {
		if containsInt(h.Digests[id].Keyslots, slot) {
			return h.Digests[id]
		}
	}
	return nil
}

// segmentDigest is the digest that covers segment seg (nil if none).
func (h *Header2) segmentDigest(seg int) *Digest2 {
	for _, id := range h.digestOrder() {
		for _, s := range h.Digests[id].Segments {
			if s == seg {
				return h.Digests[id]
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

func (h *Header2) verifyKey(ctx context.Context, key []byte) (bool, error) {
	seg := h.defaultSegment()
	d := h.segmentDigest(seg)
	if d == nil {
		return false, fmt.Errorf("%w: segment %d has no digest", ErrCorruptHeader, seg)
	}
	return verifyDigest2(ctx, d, key, DefaultMaxIterations)
}

// verifyDigest2 is PBKDF2_digest_verify: a pbkdf2 digest with a 32-byte salt and a digest
// of 20 bytes or the hash's size.
func verifyDigest2(ctx context.Context, d *Digest2, key []byte, limit uint32) (bool, error) {
	if d.Type != "pbkdf2" {
		return false, fmt.Errorf("%w: digest type %q", ErrUnsupportedHash, d.Type)
	}
	nh, err := sector.NewHashLUKS2(d.Hash)
	if err != nil {
		return false, fmt.Errorf("digest hash %q: %w", d.Hash, err)
	}
	hs := nh().Size()
	if len(d.Salt) != SaltSize || len(d.Digest) < DigestSize || len(d.Digest) > 64 ||
		(len(d.Digest) != DigestSize && len(d.Digest) != hs) {
		return false, fmt.Errorf("%w: digest salt or value has the wrong length", ErrCorruptHeader)
	}
	if d.Iterations < 1 || d.Iterations > 1<<32-1 {
		// crypt_pbkdf refuses 0 iterations: the keyslot open fails (-EINVAL), the header
		// stays valid.
		return false, fmt.Errorf("%w: digest iterations %d", ErrKeyslotOpenFailed, d.Iterations)
	}
	if limit == 0 {
		limit = DefaultMaxIterations
	}
	blocks := (uint64(len(d.Digest)) + uint64(hs) - 1) / uint64(hs)
	if w := uint64(d.Iterations) * blocks; w > uint64(limit) {
		return false, fmt.Errorf("%w: digest needs %d block-iterations, limit %d", ErrWorkLimit, w, limit)
	}
	got, err := pbkdf2Key(ctx, nh, key, d.Salt, uint32(d.Iterations), len(d.Digest))
	if err != nil {
		return false, err
	}
	defer clear(got)
	return subtle.ConstantTimeCompare(got, d.Digest) == 1, nil
}

// Load reads the header of either version, validated as cryptsetup loads it.
func Load(r io.ReaderAt) (Metadata, error) {
	if Version(r) == 1 {
		return ReadHeader(r)
	}
	h, err := ReadHeader2(r)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// UnlockAny is Unlock for both versions: it loads the header (Load) and opens it with
// passphrase through one key slot or any, returning the header as Metadata (*Header or
// *Header2), the volume key and the slot.
func UnlockAny(ctx context.Context, hdr io.ReaderAt, passphrase []byte, opts UnlockOptions) (Metadata, *VolumeKey, int, error) {
	if Version(hdr) == 1 {
		return Unlock(ctx, hdr, passphrase, opts)
	}
	h, vk, slot, err := Unlock2(ctx, hdr, passphrase, opts)
	if h == nil {
		return nil, vk, slot, err
	}
	return h, vk, slot, err
}

// Unlock2 opens a LUKS2 header with passphrase, as cryptsetup's LUKS2_keyslot_open does for
// the data segment: with opts.Keyslot that slot only (even one of priority "ignore");
// otherwise first every slot of priority "prefer", then every "normal" one, in the order
// the header lists them, skipping slots that do not belong to the default segment's digest (segment 0, or the one
// flagged backup-final during an online reencryption). With opts.AllowUnbound an
// explicitly named slot that belongs to no segment is checked against its own digest. A
// wrong passphrase everywhere is ErrWrongPassphrase. Mandatory requirements do not stop
// an unlock (cryptsetup open --test-passphrase succeeds too); they stop a mapping or a
// Volume (DataSegment returns ErrUnmetRequirements). PBKDF2 work is bounded by opts.MaxIterations, argon2 memory and
// memory×passes by opts.MaxArgon2Memory and opts.MaxArgon2Work. With opts.Activation on a
// header with a reencryption in progress the keys of both segments are opened instead (see
// UnlockOptions.Activation); ctx is checked before
// every derivation (an argon2 derivation itself cannot be interrupted).
func Unlock2(ctx context.Context, hdr io.ReaderAt, passphrase []byte, opts UnlockOptions) (*Header2, *VolumeKey, int, error) {
	if opts.Keyslot != nil && (*opts.Keyslot < 0 || *opts.Keyslot >= 32) {
		return nil, nil, -1, fmt.Errorf("%w: keyslot %d out of range 0..31", ErrInvalidParameter, *opts.Keyslot)
	}
	h, err := ReadHeader2(hdr)
	if err != nil {
		return nil, nil, -1, err
	}
	if opts.Activation && h.reencrypting() {
		vk, slot, err := h.unlockReencrypt(ctx, hdr, passphrase, opts)
		return h, vk, slot, err
	}
	seg := h.defaultSegment()
	d := h.segmentDigest(seg)
	if d == nil {
		return h, nil, -1, fmt.Errorf("%w: segment %d has no digest", ErrCorruptHeader, seg)
	}
	if opts.Keyslot != nil {
		if kd := h.keyslotDigest(*opts.Keyslot); opts.AllowUnbound && kd != nil && len(kd.Segments) == 0 {
			d = kd
		}
		vk, err := h.openKeyslot(ctx, hdr, *opts.Keyslot, d, passphrase, opts)
		if err != nil {
			return h, nil, -1, err
		}
		return h, vk, *opts.Keyslot, nil
	}
	// As LUKS2_keyslot_open_priority: a pass's result is the last slot's (wrong passphrase
	// or unusable for the segment), and a wrong passphrase in either pass outweighs an
	// unusable last slot in the other.
	const (
		noEntry = iota
		wrongPass
	)
	var firstErr error
	var res [2]int
	for pass, prio := range []int{PriorityPrefer, PriorityNormal} {
		for _, i := range h.keyslotOrder() {
			ks := h.Keyslots[i]
			p := PriorityNormal
			if ks.Priority != nil {
				p = *ks.Priority
			}
			if p != prio {
				continue
			}
			vk, err := h.openKeyslot(ctx, hdr, i, d, passphrase, opts)
			switch {
			case err == nil:
				return h, vk, i, nil
			case errors.Is(err, ErrWrongPassphrase):
				res[pass] = wrongPass
			case errors.Is(err, ErrKeyslotInactive):
				res[pass] = noEntry
			case errors.Is(err, ErrWorkLimit):
				if firstErr == nil {
					firstErr = err
				}
			default:
				return h, nil, -1, err
			}
		}
	}
	switch {
	case res[1] == wrongPass || res[0] == wrongPass:
		return h, nil, -1, ErrWrongPassphrase
	case firstErr != nil:
		return h, nil, -1, firstErr
	}
	return h, nil, -1, fmt.Errorf("%w: no usable keyslot is available", ErrKeyslotInactive)
}

// keyslotOrder lists keyslot ids in the order the JSON text has them (json-c iterates
// objects in insertion order; cryptsetup tries slots in that order).
func (h *Header2) keyslotOrder() []int {
	var out []int
	seen := map[int]bool{}
	if v, _, err := jsonc.Parse(h.JSON); err == nil {
		if ks := v.Get("keyslots"); ks != nil && ks.Kind == jsonc.Object {
			for _, m := range ks.Members {
				if n := atoi(m.Key); numbered(m.Key) && !seen[n] && h.Keyslots[n] != nil {
					out = append(out, n)
					seen[n] = true
				}
			}
		}
	}
	for _, k := range sortedKeys(h.Keyslots) { // anything the scan missed, by number
		if !seen[k] {
			out = append(out, k)
		}
	}
	return out
}

// openKeyslot is luks2_keyslot_open followed by the digest check (LUKS2_open_and_verify).
func (h *Header2) openKeyslot(ctx context.Context, r io.ReaderAt, i int, d *Digest2, pass []byte, opts UnlockOptions) (*VolumeKey, error) {
	ks, ok := h.Keyslots[i]
	if !ok {
		return nil, fmt.Errorf("keyslot %d: %w", i, ErrKeyslotInactive)
	}
	if ks.Type != "luks2" || !containsInt(d.Keyslots, i) {
		return nil, fmt.Errorf("keyslot %d: %w: not usable for the data segment", i, ErrKeyslotInactive)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	vk, err := h.keyslotKey(ctx, r, ks, pass, opts)
	if err != nil {
		return nil, fmt.Errorf("keyslot %d: %w", i, err)
	}
	ok, err = verifyDigest2(ctx, d, vk, opts.MaxIterations)
	if err != nil || !ok {
		clear(vk)
		if err == nil {
			err = ErrWrongPassphrase
		}
		return nil, fmt.Errorf("keyslot %d: %w", i, err)
	}
	return &VolumeKey{b: vk}, nil
}

func containsInt(a []int, x int) bool {
	for _, v := range a {
		if v == x {
			return true
		}
	}
	return false
}

// keyslotKey derives the keyslot key, decrypts the key material (512-byte sectors, IV from
// 0) and merges the anti-forensic stripes (always 4000, as cryptsetup uses LUKS_STRIPES).
func (h *Header2) keyslotKey(ctx context.Context, r io.ReaderAt, ks *Keyslot2, pass []byte, opts UnlockOptions) ([]byte, error) {
	if ks.KeySize <= 0 || uint64(ks.KeySize)*Stripes > maxKeyslotSize {
		return nil, fmt.Errorf("%w: key size %d", ErrCorruptKeyslot, ks.KeySize)
	}
	if ks.Area.KeySize <= 0 || ks.Area.KeySize > 512 {
		return nil, fmt.Errorf("%w: area key size %d", ErrCorruptKeyslot, ks.Area.KeySize)
	}
	afHash, err := sector.NewHashLUKS2(ks.AF.Hash)
	if err != nil {
		return nil, fmt.Errorf("AF hash %q: %w", ks.AF.Hash, err)
	}
	name, mode, err := sector.SplitSpec(ks.Area.Encryption)
	if err != nil {
		return nil, fmt.Errorf("keyslot cipher %q: %w", ks.Area.Encryption, err)
	}
	spec, err := sector.ParseSpec(name, mode)
	if err != nil {
		return nil, fmt.Errorf("keyslot cipher %q: %w", ks.Area.Encryption, err)
	}
	if err := spec.CheckKeySize(ks.Area.KeySize); err != nil {
		return nil, fmt.Errorf("keyslot cipher %q: %w", ks.Area.Encryption, err)
	}
	salt := ks.KDF.Salt
	if len(salt) != SaltSize {
		return nil, fmt.Errorf("%w: kdf salt of %d bytes", ErrCorruptKeyslot, len(salt))
	}
	var dk []byte
	switch ks.KDF.Type {
	case "pbkdf2":
		nh, err := sector.NewHashLUKS2(ks.KDF.Hash)
		if err != nil {
			return nil, fmt.Errorf("kdf hash %q: %w", ks.KDF.Hash, err)
		}
		if ks.KDF.Iterations < 1 || ks.KDF.Iterations > 1<<31-1 {
			return nil, fmt.Errorf("%w: %d PBKDF2 iterations", ErrCorruptKeyslot, ks.KDF.Iterations)
		}
		limit := opts.MaxIterations
		if limit == 0 {
			limit = DefaultMaxIterations
		}
		hs := uint64(nh().Size())
		if w := uint64(ks.KDF.Iterations) * ((uint64(ks.Area.KeySize) + hs - 1) / hs); w > uint64(limit) {
			return nil, fmt.Errorf("%w: %d block-iterations, limit %d", ErrWorkLimit, w, limit)
		}
		dk, err = pbkdf2Key(ctx, nh, pass, salt, uint32(ks.KDF.Iterations), ks.Area.KeySize)
		if err != nil {
			return nil, err
		}
	case "argon2i", "argon2id":
		dk, err = argon2Key(ctx, ks.KDF.Type, pass, salt, ks.KDF.Time, ks.KDF.Memory, ks.KDF.CPUs, ks.Area.KeySize, opts.MaxArgon2Memory, opts.MaxArgon2Work)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: kdf %q", ErrUnsupportedHash, ks.KDF.Type)
	}
	c, err := sector.NewFromSpec(spec, dk)
	clear(dk)
	if err != nil {
		return nil, err
	}
	defer c.Wipe()
	n := int(afSectors(uint64(ks.KeySize))) * SectorSize
	material := make([]byte, n)
	defer clear(material)
	if ks.Area.Offset > 1<<62 {
		return nil, fmt.Errorf("%w: area offset %d", ErrCorruptKeyslot, ks.Area.Offset)
	}
	if m, err := r.ReadAt(material, int64(ks.Area.Offset)); m < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: reading key material: %w", ErrCorruptKeyslot, err)
	}
	c.Decrypt(material, material, 0)
	return afMerge(material, ks.KeySize, Stripes, afHash), nil
}
