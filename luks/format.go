package luks

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// FormatOptions are the luksFormat parameters. The zero value formats like
// `cryptsetup luksFormat --type luks1` on an image file: aes-xts-plain64, 512-bit key,
// sha256, 2 s iteration time, payload aligned to 1 MiB, key in slot 0.
type FormatOptions struct {
	Cipher          string        // cryptsetup -c spec; default "aes-xts-plain64"
	KeySize         int           // bits; 0 → 512 for xts, else 256
	Hash            string        // default "sha256"
	IterTime        time.Duration // default 2s
	ForceIterations uint32        // 0 = calibrate; else slot = this (≥ 1000), MK digest = 1000
	UUID            string        // "" = random
	VolumeKey       []byte        // nil = random
	AlignPayload    uint32        // sectors; 0 = 2048 (1 MiB)
	Keyslot         *int          // slot of the first key: luks.Slot(n), n in 0..7; nil → 0
	Detached        bool          // header in its own file: payload offset = AlignPayload (0 allowed)
	AllowNoPayload  bool          // accept a device with no sector past the header (cryptsetup's warning case)
	Rand            io.Reader     // nil = getrandom(2) (luks/internal/secretrand)
}

// Format prints the options with VolumeKey redacted (its length only), for every verb,
// so logging the options never logs a key.
func (o FormatOptions) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), formatOptions{o.Cipher, o.KeySize, o.Hash, o.IterTime,
		o.ForceIterations, o.UUID, redactedKey{o.VolumeKey != nil, len(o.VolumeKey)}, o.AlignPayload,
		slotOption{o.Keyslot}, o.Detached, o.AllowNoPayload, o.Rand})
}

// formatOptions mirrors FormatOptions field for field for printing (a test keeps the two in
// step).
type formatOptions struct {
	Cipher          string
	KeySize         int
	Hash            string
	IterTime        time.Duration
	ForceIterations uint32
	UUID            string
	VolumeKey       redactedKey
	AlignPayload    uint32
	Keyslot         slotOption
	Detached        bool
	AllowNoPayload  bool
	Rand            io.Reader
}

// slotOption prints a Keyslot pointer as its slot number (or <nil>) rather than an address.
type slotOption struct{ p *int }

func (s slotOption) Format(f fmt.State, _ rune) {
	if s.p == nil {
		fmt.Fprint(f, "<nil>")
		return
	}
	fmt.Fprint(f, *s.p)
}

type redactedKey struct {
	set bool
	n   int
}

func (r redactedKey) Format(f fmt.State, _ rune) {
	if !r.set {
		fmt.Fprint(f, "<nil>")
		return
	}
	fmt.Fprintf(f, "<%d bytes redacted>", r.n)
}

// formatPlan is a fully computed header and first key slot, ready to be written.
type formatPlan struct {
	h    *Header
	vk   *VolumeKey
	slot *slotUpdate
}

// planFormat checks everything, the size of dev included, before the PBKDF2 calibration and
// the key-slot derivation, so a request that is going to be refused costs no key derivation.
func planFormat(ctx context.Context, dev any, passphrase []byte, opts FormatOptions) (*formatPlan, error) {
	rnd := randOr(opts.Rand)
	fp, err := opts.Check()
	if err != nil {
		return nil, err
	}
	name, mode, keyBytes, hashName := fp.CipherName, fp.CipherMode, fp.KeySize/8, fp.Hash
	if (name == "cipher_null" || name == "null") && len(passphrase) > 0 {
		return nil, fmt.Errorf("%w: cipher_null headers accept only an empty passphrase", ErrInvalidParameter)
	}
	if err := checkSlot(opts.Keyslot); err != nil {
		return nil, err
	}
	slot := 0
	if opts.Keyslot != nil {
		slot = *opts.Keyslot
	}
	uuid := opts.UUID
	if uuid == "" {
		if uuid, err = randomUUID(rnd); err != nil {
			return nil, err
		}
	} else if uuid, err = canonicalUUID(uuid); err != nil {
		return nil, err
	}
	lay, err := ComputeLayout(keyBytes, opts.AlignPayload, opts.Detached)
	if err != nil {
		return nil, err
	}
	h := &Header{
		Version:       1,
		CipherName:    name,
		CipherMode:    mode,
		HashSpec:      hashName,
		PayloadOffset: lay.PayloadOffset,
		KeyBytes:      uint32(keyBytes),
		UUID:          uuid,
	}
	for i := range h.Keyslots {
		h.Keyslots[i] = Keyslot{Active: KeyDisabled, KeyMaterialOffset: lay.KeyMaterialOffsets[i], Stripes: Stripes}
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	if err := checkFormatSize(dev, h, opts); err != nil {
		return nil, err
	}
	sc, err := newSlotCrypto(h, ^uint32(0))
	if err != nil {
		return nil, err
	}
	slotIter, mkIter, err := iterationCounts(ctx, sc.newHash, keyBytes, opts.IterTime, opts.ForceIterations)
	if err != nil {
		return nil, err
	}
	var vk *VolumeKey
	if opts.VolumeKey != nil {
		vk = NewVolumeKey(opts.VolumeKey)
	} else {
		vk = &VolumeKey{b: make([]byte, keyBytes)}
		if _, err := io.ReadFull(rnd, vk.b); err != nil {
			return nil, fmt.Errorf("generating volume key: %w", err)
		}
	}
	fail := func(err error) (*formatPlan, error) { vk.Wipe(); return nil, err }
	if _, err := io.ReadFull(rnd, h.MKDigestSalt[:]); err != nil {
		return fail(fmt.Errorf("reading random salt: %w", err))
	}
	h.MKDigestIterations = mkIter
	d, err := pbkdf2Key(ctx, sc.newHash, vk.b, h.MKDigestSalt[:], mkIter, DigestSize)
	if err != nil {
		return fail(err)
	}
	copy(h.MKDigest[:], d)
	clear(d)
	u, err := sealKeyslot(ctx, h, sc, slot, passphrase, vk.b, slotIter, rnd)
	if err != nil {
		return fail(err)
	}
	return &formatPlan{h: h, vk: vk, slot: u}, nil
}

// Format writes a new LUKS1 header with passphrase in one key slot, in cryptsetup's order
// (_crypt_format_luks1, LUKS_wipe_header_areas, LUKS_set_key): every parameter is checked and
// every key computed before the first write; then the area up to the payload is zeroed
// (only the first 4 KiB for a detached header with payload offset 0 or a payload beyond
// 128 MiB), every slot's key-material area is filled with random bytes, the header is
// written with no slot, and finally the slot's key material and the header enabling it.
// The payload is not touched. hdr is the header device (the image, or the detached header
// file, which grows to the header size). A device whose size is known and that has no room
// for the header and one payload sector is refused with ErrDeviceTooSmall before any write
// (see FormatOptions.AllowNoPayload for cryptsetup's laxer rule).
func Format(ctx context.Context, hdr ReadWriterAt, passphrase []byte, opts FormatOptions) (*Header, *VolumeKey, error) {
	p, err := planFormat(ctx, hdr, passphrase, opts)
	if err != nil {
		return nil, nil, err
	}
	defer p.slot.wipe()
	h := p.h
	fail := func(err error) (*Header, *VolumeKey, error) { p.vk.Wipe(); return nil, nil, err }
	if err := wipeHeaderAreas(hdr, h, randOr(opts.Rand)); err != nil {
		return fail(err)
	}
	if opts.Detached {
		// cryptsetup leaves a detached header file header_sectors long (the key material
		// rounded up to 4 KiB); zero the few sectors after the last slot to match.
		end := h.MetadataSectors() * SectorSize
		full := roundUp(end, alignKeyslots)
		if full > end {
			if err := writeFull(hdr, make([]byte, full-end), int64(end)); err != nil {
				return fail(fmt.Errorf("extending detached header: %w", err))
			}
		}
	}
	if err := writeHeader(hdr, h); err != nil {
		return fail(err)
	}
	if err := commitKeyslot(hdr, h, p.slot); err != nil {
		return fail(err)
	}
	return h, p.vk, nil
}

// checkFormatSize refuses, before the first write, a device whose size is known and cannot
// hold what is asked: without Detached or AllowNoPayload, the header and at least one payload
// sector (a volume with no room for data is useless, and the library has no way to warn).
// With AllowNoPayload it is cryptsetup's rule: a regular file of at least one sector is grown
// to the header, anything else must already hold the header. A detached header file is
// grown from nothing; its payload lives on a device Format does not see.
func checkFormatSize(dev any, h *Header, opts FormatOptions) error {
	r, ok := dev.(io.ReaderAt)
	if !ok {
		return nil
	}
	size, ok := deviceSize(r)
	if !ok {
		return nil
	}
	grow := growable(dev)
	meta := h.MetadataSectors() * SectorSize
	var need uint64
	switch {
	case opts.Detached && grow:
		return nil
	case opts.Detached:
		need = meta
	case opts.AllowNoPayload && grow:
		need = SectorSize
	case opts.AllowNoPayload:
		need = meta
	default:
		need = uint64(h.PayloadOffsetBytes()) + SectorSize
	}
	if size < 0 || uint64(size) < need {
		return fmt.Errorf("%w: LUKS1 requires at least %d bytes, device has %d", ErrDeviceTooSmall, need, size)
	}
	return nil
}

// growable reports whether writing past the end extends the device (a regular file).
func growable(w any) bool {
	if f, ok := w.(*os.File); ok {
		fi, err := f.Stat()
		return err == nil && fi.Mode().IsRegular()
	}
	_, isSized := w.(interface{ Size() int64 })
	return !isSized
}

// wipeHeaderAreas is cryptsetup's LUKS_wipe_header_areas.
func wipeHeaderAreas(w io.WriterAt, h *Header, rnd io.Reader) error {
	length := uint64(h.PayloadOffset) * SectorSize
	if length == 0 || length > maxKeyslotSize*NumKeyslots {
		length = 4096
	}
	zero := make([]byte, min(length, 1<<20))
	for off := uint64(0); off < length; off += uint64(len(zero)) {
		n := min(uint64(len(zero)), length-off)
		if err := writeFull(w, zero[:n], int64(off)); err != nil {
			return fmt.Errorf("wiping LUKS header area: %w", err)
		}
	}
	n := int(h.AFSectors()) * SectorSize
	buf := make([]byte, n)
	for i, k := range h.Keyslots {
		off := uint64(k.KeyMaterialOffset) * SectorSize
		if uint64(n) > maxKeyslotSize || off > maxKeyslotSize-uint64(n) {
			continue
		}
		if _, err := io.ReadFull(rnd, buf); err != nil {
			return fmt.Errorf("reading random data: %w", err)
		}
		if err := writeFull(w, buf, int64(off)); err != nil {
			return fmt.Errorf("keyslot %d: wiping key-material area: %w", i, err)
		}
	}
	return syncDevice(w)
}
