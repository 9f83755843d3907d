package luks

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/cloudluks/cloudluks/luks/internal/secretrand"
	"github.com/cloudluks/cloudluks/luks/sector"
)

// Slot returns a pointer to n for the Keyslot fields of the options structs:
// luks.UnlockOptions{Keyslot: luks.Slot(3)}. A nil Keyslot means "any slot" (or for
// FormatOptions, slot 0), so the zero value of every options struct does what cryptsetup
// does without -S.
func Slot(n int) *int { return &n }

// checkSlot validates an explicit slot number; nil (any slot) is always valid.
func checkSlot(slot *int) error {
	if slot != nil && (*slot < 0 || *slot >= NumKeyslots) {
		return fmt.Errorf("%w: keyslot %d out of range 0..%d", ErrInvalidParameter, *slot, NumKeyslots-1)
	}
	return nil
}

// ReadWriterAt is a header or data device that can be read and written at offsets
// (*os.File is one).
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// UnlockOptions select the key slot and bound the work a header can demand. The zero value
// tries every enabled slot in order, as cryptsetup does without -S.
type UnlockOptions struct {
	// Keyslot restricts unlocking to one key slot (luks.Slot(n), n in 0..7); nil tries every
	// enabled slot in order.
	Keyslot *int
	// MaxIterations bounds the PBKDF2 work one derivation may cost, in block-iterations:
	// the iteration count times the number of hash-sized output blocks the derivation
	// produces (ceil(key bytes / hash size)), i.e. the number of HMAC computations. For the
	// usual derivation of one block (a 256-bit key with sha256, the 20-byte MK digest) it
	// is the iteration count. 0 = DefaultMaxIterations.
	MaxIterations uint32
	// MaxArgon2Memory bounds the memory an argon2 keyslot (LUKS2) may demand, in KiB;
	// 0 = DefaultMaxArgon2Memory (cryptsetup's own 4 GiB ceiling).
	MaxArgon2Memory uint32
	// MaxArgon2Work bounds argon2 memory times passes (KiB·passes); 0 = DefaultMaxArgon2Work.
	MaxArgon2Work uint64
	// AllowUnbound (LUKS2, with Keyslot set): a slot that belongs to no segment is checked
	// against its own digest, as `cryptsetup open --test-passphrase --key-slot N` does. The
	// key returned is then not the data segment's key.
	AllowUnbound bool
	// Activation (LUKS2): unlock as crypt_activate_by_passphrase does, which differs from
	// the plain keyslot open only while a reencryption is in progress: the passphrase must
	// then open the keys of both the old and the new segment (see ErrReencryptKeys).
	Activation bool
}

// crypto bundles what key-slot work needs from a validated header.
type slotCrypto struct {
	newHash  func() hash.Hash
	hashSize int
	spec     sector.Spec
	limit    uint32
}

// prepare checks that this package can derive and decrypt key slots of h: known hash,
// supported cipher spec and key size, a usable MK digest iteration count within limit.
func prepare(h *Header, limit uint32) (*slotCrypto, error) {
	if limit == 0 {
		limit = DefaultMaxIterations
	}
	sc, err := newSlotCrypto(h, limit)
	if err != nil {
		return nil, err
	}
	if h.MKDigestIterations == 0 {
		return nil, fmt.Errorf("%w: MK digest iterations 0", ErrCorruptHeader)
	}
	if w := sc.work(h.MKDigestIterations, DigestSize); w > uint64(limit) {
		return nil, fmt.Errorf("%w: MK digest needs %d block-iterations, limit %d", ErrWorkLimit, w, limit)
	}
	return sc, nil
}

// work is the cost of one PBKDF2 derivation of keyLen bytes in block-iterations: PBKDF2
// runs its iteration loop once per hash-sized output block (RFC 8018 section 5.2), so a
// 4000-byte cipher_null key with sha1 costs 200 times its iteration count.
func (sc *slotCrypto) work(iterations uint32, keyLen int) uint64 {
	blocks := (uint64(keyLen) + uint64(sc.hashSize) - 1) / uint64(sc.hashSize)
	return uint64(iterations) * max(blocks, 1)
}

// newSlotCrypto resolves the hash and cipher of h and checks the key size.
func newSlotCrypto(h *Header, limit uint32) (*slotCrypto, error) {
	nh, err := sector.NewHash(h.HashSpec)
	if err != nil {
		return nil, fmt.Errorf("hash %q: %w", h.HashSpec, err)
	}
	spec, err := sector.ParseSpec(h.CipherName, h.CipherMode)
	if err != nil {
		return nil, fmt.Errorf("cipher %s: %w", h.CipherSpec(), err)
	}
	// Bound the key-material buffer (cryptsetup's LUKS_MAX_KEYSLOT_SIZE, 16 MiB) before any
	// allocation; cipher_null would otherwise take any key size a hostile header names.
	if uint64(h.KeyBytes)*Stripes > maxKeyslotSize {
		return nil, fmt.Errorf("%w: %d-bit key exceeds the 16 MiB key-slot limit", ErrInvalidKeySize, uint64(h.KeyBytes)*8)
	}
	if err := spec.CheckKeySize(int(h.KeyBytes)); err != nil {
		return nil, fmt.Errorf("cipher %s with %d-bit key: %w", h.CipherSpec(), uint64(h.KeyBytes)*8, err)
	}
	return &slotCrypto{newHash: nh, hashSize: nh().Size(), spec: spec, limit: limit}, nil
}

func isCipherNull(h *Header) bool {
	return h.CipherName == "cipher_null" || h.CipherName == "null"
}

// verifyVolumeKey compares the PBKDF2 digest of key with the header's MK digest in
// constant time.
func verifyVolumeKey(ctx context.Context, h *Header, sc *slotCrypto, key []byte) (bool, error) {
	d, err := pbkdf2Key(ctx, sc.newHash, key, h.MKDigestSalt[:], h.MKDigestIterations, DigestSize)
	if err != nil {
		return false, err
	}
	defer clear(d)
	return subtle.ConstantTimeCompare(d, h.MKDigest[:]) == 1, nil
}

// openKeyslot tries pass on slot i (cryptsetup LUKS_open_key). A wrong passphrase gives
// ErrWrongPassphrase; any other error means the slot could not be tried.
func openKeyslot(ctx context.Context, r io.ReaderAt, h *Header, sc *slotCrypto, i int, pass []byte) (*VolumeKey, error) {
	k := h.Keyslots[i]
	if !k.Enabled() {
		return nil, fmt.Errorf("keyslot %d: %w", i, ErrKeyslotInactive)
	}
	if k.Iterations == 0 {
		return nil, fmt.Errorf("keyslot %d: %w: 0 PBKDF2 iterations", i, ErrCorruptKeyslot)
	}
	if w := sc.work(k.Iterations, int(h.KeyBytes)); w > uint64(sc.limit) {
		return nil, fmt.Errorf("keyslot %d: %w: %d block-iterations (%d iterations), limit %d", i, ErrWorkLimit, w, k.Iterations, sc.limit)
	}
	// cryptsetup accepts only an empty passphrase on cipher_null headers, so a header swapped
	// to cipher_null cannot be "unlocked" by any passphrase the user types. Decided before
	// any derivation: the answer does not depend on it.
	if isCipherNull(h) && len(pass) > 0 {
		return nil, fmt.Errorf("keyslot %d: %w", i, ErrWrongPassphrase)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := int(h.AFSectors()) * SectorSize
	material := make([]byte, n)
	defer clear(material)
	if m, err := r.ReadAt(material, int64(k.KeyMaterialOffset)*SectorSize); m < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("keyslot %d: %w: reading key material: %w", i, ErrCorruptKeyslot, err)
	}
	dk, err := pbkdf2Key(ctx, sc.newHash, pass, k.Salt[:], k.Iterations, int(h.KeyBytes))
	if err != nil {
		return nil, fmt.Errorf("keyslot %d: %w", i, err)
	}
	c, err := sector.NewFromSpec(sc.spec, dk)
	clear(dk)
	if err != nil {
		return nil, fmt.Errorf("keyslot %d: %w", i, err)
	}
	c.Decrypt(material, material, 0)
	c.Wipe()
	mk := afMerge(material, int(h.KeyBytes), Stripes, sc.newHash)
	ok, err := verifyVolumeKey(ctx, h, sc, mk)
	if err != nil {
		clear(mk)
		return nil, fmt.Errorf("keyslot %d: %w", i, err)
	}
	if !ok {
		clear(mk)
		return nil, fmt.Errorf("keyslot %d: %w", i, ErrWrongPassphrase)
	}
	return &VolumeKey{b: mk}, nil
}

// Unlock tries passphrase on one key slot (opts.Keyslot = Slot(0..7)) or on every enabled
// slot in order (nil Keyslot) and returns the header, the volume key and the slot that
// opened, in Format's order (header, key). The header is returned with a key-slot error too
// (a wrong passphrase), so a caller can still report on it.
// hdr is the header device: the image, the block device or a detached header file.
// Slots whose PBKDF2 work exceeds the limit (UnlockOptions.MaxIterations) are skipped; if no other slot opens,
// the result is ErrWorkLimit. Cancelling ctx stops PBKDF2 within milliseconds.
func Unlock(ctx context.Context, hdr io.ReaderAt, passphrase []byte, opts UnlockOptions) (*Header, *VolumeKey, int, error) {
	if err := checkSlot(opts.Keyslot); err != nil {
		return nil, nil, -1, err
	}
	h, err := ReadHeader(hdr)
	if err != nil {
		return nil, nil, -1, err
	}
	vk, slot, err := unlockHeader(ctx, hdr, h, passphrase, opts)
	if err != nil {
		return h, nil, -1, err
	}
	return h, vk, slot, nil
}

func unlockHeader(ctx context.Context, hdr io.ReaderAt, h *Header, pass []byte, opts UnlockOptions) (*VolumeKey, int, error) {
	sc, err := prepare(h, opts.MaxIterations)
	if err != nil {
		return nil, -1, err
	}
	if opts.Keyslot != nil {
		slot := *opts.Keyslot
		vk, err := openKeyslot(ctx, hdr, h, sc, slot, pass)
		if err != nil {
			return nil, -1, err
		}
		return vk, slot, nil
	}
	var limited error
	tried := 0
	for i := range h.Keyslots {
		if !h.Keyslots[i].Enabled() {
			continue
		}
		vk, err := openKeyslot(ctx, hdr, h, sc, i, pass)
		switch {
		case err == nil:
			return vk, i, nil
		case errors.Is(err, ErrWrongPassphrase):
			tried++
		case errors.Is(err, ErrWorkLimit):
			if limited == nil {
				limited = err
			}
		default:
			return nil, -1, err
		}
	}
	if limited != nil {
		return nil, -1, limited
	}
	if tried == 0 {
		return nil, -1, fmt.Errorf("%w: no usable keyslot is available", ErrKeyslotInactive)
	}
	return nil, -1, ErrWrongPassphrase
}

// slotUpdate is a key slot computed in memory: the descriptor and its encrypted key
// material, ready to be written.
type slotUpdate struct {
	slot     int
	desc     Keyslot
	material []byte
}

func (u *slotUpdate) wipe() { clear(u.material) }

// sealKeyslot derives a key from pass and encrypts the AF-split volume key for slot i of h
// (cryptsetup LUKS_set_key up to the writes).
func sealKeyslot(ctx context.Context, h *Header, sc *slotCrypto, i int, pass []byte, vk []byte, iterations uint32, rnd io.Reader) (*slotUpdate, error) {
	u := &slotUpdate{slot: i, desc: h.Keyslots[i]}
	u.desc.Active = KeyEnabled
	u.desc.Iterations = iterations
	if _, err := io.ReadFull(rnd, u.desc.Salt[:]); err != nil {
		return nil, fmt.Errorf("keyslot %d: reading random salt: %w", i, err)
	}
	dk, err := pbkdf2Key(ctx, sc.newHash, pass, u.desc.Salt[:], iterations, int(h.KeyBytes))
	if err != nil {
		return nil, fmt.Errorf("keyslot %d: %w", i, err)
	}
	defer clear(dk)
	split, err := afSplit(vk, Stripes, sc.newHash, rnd)
	if err != nil {
		return nil, fmt.Errorf("keyslot %d: %w", i, err)
	}
	u.material = make([]byte, int(h.AFSectors())*SectorSize)
	copy(u.material, split)
	clear(split)
	c, err := sector.NewFromSpec(sc.spec, dk)
	if err != nil {
		u.wipe()
		return nil, fmt.Errorf("keyslot %d: %w", i, err)
	}
	c.Encrypt(u.material, u.material, 0)
	c.Wipe()
	return u, nil
}

func writeFull(w io.WriterAt, p []byte, off int64) error {
	n, err := w.WriteAt(p, off)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return err
}

// syncDevice makes the writes so far durable when w has a Sync method (*os.File has:
// fsync, which on a block device flushes its write cache). Every crash-safety ordering in
// this package (key material before the header that points at it, RestoreHeader's and
// RestoreHeader2's staging) relies on it: a ReadWriterAt without Sync gets the same
// writes in the same order but no guarantee of the order in which they reach the disk.
func syncDevice(w any) error {
	if s, ok := w.(interface{ Sync() error }); ok {
		return s.Sync()
	}
	return nil
}

// writeHeader writes the 1024-byte header at offset 0 and syncs.
func writeHeader(w io.WriterAt, h *Header) error {
	b, err := h.MarshalBinary()
	if err != nil {
		return err
	}
	if err := writeFull(w, b, 0); err != nil {
		return fmt.Errorf("writing LUKS header: %w", err)
	}
	return syncDevice(w)
}

// commitKeyslot stores a computed slot in cryptsetup's order: key material first, then the
// header that enables it, so a crash in between leaves the old header intact.
func commitKeyslot(w io.WriterAt, h *Header, u *slotUpdate) error {
	off := int64(u.desc.KeyMaterialOffset) * SectorSize
	if err := writeFull(w, u.material, off); err != nil {
		return fmt.Errorf("keyslot %d: writing key material: %w", u.slot, err)
	}
	if err := syncDevice(w); err != nil {
		return fmt.Errorf("keyslot %d: %w", u.slot, err)
	}
	h.Keyslots[u.slot] = u.desc
	if err := writeHeader(w, h); err != nil {
		return fmt.Errorf("keyslot %d: %w", u.slot, err)
	}
	return nil
}

// gutmann holds the 27 three-byte patterns of cryptsetup's CRYPT_WIPE_SPECIAL passes.
var gutmann = [27][3]byte{
	{0x55, 0x55, 0x55}, {0xaa, 0xaa, 0xaa}, {0x92, 0x49, 0x24},
	{0x49, 0x24, 0x92}, {0x24, 0x92, 0x49}, {0x00, 0x00, 0x00},
	{0x11, 0x11, 0x11}, {0x22, 0x22, 0x22}, {0x33, 0x33, 0x33},
	{0x44, 0x44, 0x44}, {0x55, 0x55, 0x55}, {0x66, 0x66, 0x66},
	{0x77, 0x77, 0x77}, {0x88, 0x88, 0x88}, {0x99, 0x99, 0x99},
	{0xaa, 0xaa, 0xaa}, {0xbb, 0xbb, 0xbb}, {0xcc, 0xcc, 0xcc},
	{0xdd, 0xdd, 0xdd}, {0xee, 0xee, 0xee}, {0xff, 0xff, 0xff},
	{0x92, 0x49, 0x24}, {0x49, 0x24, 0x92}, {0x24, 0x92, 0x49},
	{0x6d, 0xb6, 0xdb}, {0xb6, 0xdb, 0x6d}, {0xdb, 0x6d, 0xb6},
}

// wipeSpecial overwrites [off, off+n) the way cryptsetup wipes a destroyed key slot
// (lib/utils_wipe.c crypt_wipe_special): 5 random passes, the 27 Gutmann patterns (whole
// 3-byte repetitions; a 1-2 byte tail keeps the previous pass), 6 random passes, one 0xFF
// pass, and a final random pass, each written and synced.
func wipeSpecial(w io.WriterAt, off int64, n int, rnd io.Reader) error {
	buf := make([]byte, n)
	defer clear(buf)
	for pass := 0; pass < 40; pass++ {
		switch {
		case pass < 5 || (pass >= 32 && pass < 38) || pass == 39:
			if _, err := io.ReadFull(rnd, buf); err != nil {
				return fmt.Errorf("reading random wipe data: %w", err)
			}
		case pass < 32:
			p := gutmann[pass-5]
			for i := 0; i+3 <= n; i += 3 {
				copy(buf[i:], p[:])
			}
		default:
			for i := range buf {
				buf[i] = 0xff
			}
		}
		if err := writeFull(w, buf, off); err != nil {
			return err
		}
		if err := syncDevice(w); err != nil {
			return err
		}
	}
	return nil
}

// wipeRandom overwrites [off, off+n) with one pass of random bytes and syncs.
func wipeRandom(w io.WriterAt, off int64, n int, rnd io.Reader) error {
	buf := make([]byte, n)
	if _, err := io.ReadFull(rnd, buf); err != nil {
		return fmt.Errorf("reading random wipe data: %w", err)
	}
	if err := writeFull(w, buf, off); err != nil {
		return err
	}
	return syncDevice(w)
}

// destroyKeyslot disables slot i in cryptsetup's order (LUKS_del_key, confirmed with strace
// on cryptsetup 2.6.1): the key material is wiped and synced first, then the header is
// written with the slot disabled, its iterations 0 and its salt zeroed; the key-material
// offset and stripes stay so the header keeps validating. A crash in between leaves a valid
// header whose slot no longer opens, never a disabled slot with live key material. The
// wipe is cryptsetup's: the multi-pass pattern set on rotational block devices, one random
// pass elsewhere (files, SSDs). Only the slot's own area is touched (a LUKSMeta gap after
// the key material survives).
func destroyKeyslot(w io.WriterAt, h *Header, i int, rnd io.Reader) error {
	// KillSlot reaches here without unlocking, so bound the wipe buffer (one slot's key
	// material) as newSlotCrypto bounds every other key-slot buffer.
	if uint64(h.KeyBytes)*Stripes > maxKeyslotSize {
		return fmt.Errorf("keyslot %d: %w: %d-bit key exceeds the 16 MiB key-slot limit", i, ErrInvalidKeySize, uint64(h.KeyBytes)*8)
	}
	k := &h.Keyslots[i]
	off := int64(k.KeyMaterialOffset) * SectorSize
	n := int(h.AFSectors()) * SectorSize
	wipe := wipeRandom
	if isRotational(w) {
		wipe = wipeSpecial
	}
	if err := wipe(w, off, n, rnd); err != nil {
		return fmt.Errorf("keyslot %d: wiping key material: %w", i, err)
	}
	k.Active = KeyDisabled
	k.Iterations = 0
	k.Salt = [SaltSize]byte{}
	if err := writeHeader(w, h); err != nil {
		return fmt.Errorf("keyslot %d: %w", i, err)
	}
	return nil
}

// AddKeyOptions configure a new key slot. The zero value is cryptsetup's default without
// -S: AddKey and AddKeyByVolumeKey use the lowest free slot, and ChangeKey tries every slot
// for the old passphrase, writes the new one to the first free slot and destroys the old
// slot after (see ChangeKey). Keyslot = Slot(n) is cryptsetup's -S n.
type AddKeyOptions struct {
	// Keyslot names the slot (luks.Slot(n), n in 0..7): for AddKey it must be disabled, for
	// ChangeKey it must be the slot the old passphrase opens. nil = lowest disabled slot.
	Keyslot         *int
	IterTime        time.Duration // PBKDF2 calibration target; 0 = DefaultIterTime
	ForceIterations uint32        // 0 = calibrate; else exactly this many (at least 1000)
	Rand            io.Reader     // nil = getrandom(2) (luks/internal/secretrand)
	MaxIterations   uint32        // work limit when unlocking with the existing passphrase; 0 = default
}

// ReadSecret fills b with random bytes for a secret (a key) from the getrandom(2) system
// call, which writes them into b alone: Go's crypto/rand takes the vDSO path on Linux
// 6.11+, whose code may leave generated bytes on a stack nobody clears. Outside Linux it
// is crypto/rand (best effort). The keys Format, FormatLUKS2 and AddKey make come from it
// when Options.Rand is nil; dmcrypt's ephemeral keys do too.
func ReadSecret(b []byte) error { return secretrand.Read(b) }

// randOr is the random source of an operation: the caller's (tests pin it), else
// secretrand, which takes the getrandom system call rather than crypto/rand's vDSO path so
// that a generated volume key exists only in its own buffer. Salts and stripes drawn from
// the same source lose nothing by it.
func randOr(r io.Reader) io.Reader {
	if r == nil {
		return secretrand.Reader
	}
	return r
}

// pickFreeSlot returns the slot a new key goes to (cryptsetup keyslot_verify_or_find_empty).
func pickFreeSlot(h *Header, slot *int) (int, error) {
	if slot == nil {
		for i, k := range h.Keyslots {
			if k.Active == KeyDisabled {
				return i, nil
			}
		}
		return -1, ErrNoFreeKeyslot
	}
	if err := checkSlot(slot); err != nil {
		return -1, err
	}
	want := *slot
	switch h.Keyslots[want].Active {
	case KeyDisabled:
		return want, nil
	case KeyEnabled:
		return -1, fmt.Errorf("keyslot %d: %w: slot is active, purge first", want, ErrInvalidParameter)
	default:
		return -1, fmt.Errorf("keyslot %d: %w: invalid state 0x%08x", want, ErrCorruptKeyslot, h.Keyslots[want].Active)
	}
}

// AddKey unlocks the header with an existing passphrase and stores newPass in a free slot
// (cryptsetup luksAddKey). It returns the header as it is now on disk, with the new slot
// enabled, and the new slot number.
func AddKey(ctx context.Context, hdr ReadWriterAt, existing, newPass []byte, opts AddKeyOptions) (*Header, int, error) {
	h, vk, _, err := Unlock(ctx, hdr, existing, UnlockOptions{MaxIterations: opts.MaxIterations})
	if err != nil {
		return nil, -1, err
	}
	defer vk.Wipe()
	return addKey(ctx, hdr, h, vk.b, newPass, opts)
}

// AddKeyByVolumeKey stores newPass in a free slot using a known volume key (cryptsetup
// luksAddKey --volume-key-file). The key is checked against the MK digest first. The results
// are AddKey's.
func AddKeyByVolumeKey(ctx context.Context, hdr ReadWriterAt, vk *VolumeKey, newPass []byte, opts AddKeyOptions) (*Header, int, error) {
	h, err := ReadHeader(hdr)
	if err != nil {
		return nil, -1, err
	}
	sc, err := prepare(h, opts.MaxIterations)
	if err != nil {
		return nil, -1, err
	}
	if vk == nil || vk.Len() != int(h.KeyBytes) {
		return nil, -1, fmt.Errorf("%w: key length does not match the header's %d bytes", ErrVolumeKeyMismatch, h.KeyBytes)
	}
	ok, err := verifyVolumeKey(ctx, h, sc, vk.b)
	if err != nil {
		return nil, -1, err
	}
	if !ok {
		return nil, -1, ErrVolumeKeyMismatch
	}
	return addKey(ctx, hdr, h, vk.b, newPass, opts)
}

func addKey(ctx context.Context, hdr ReadWriterAt, h *Header, vk, newPass []byte, opts AddKeyOptions) (*Header, int, error) {
	if isCipherNull(h) && len(newPass) > 0 {
		return nil, -1, fmt.Errorf("%w: cipher_null headers accept only an empty passphrase", ErrInvalidParameter)
	}
	sc, err := prepare(h, opts.MaxIterations)
	if err != nil {
		return nil, -1, err
	}
	slot, err := pickFreeSlot(h, opts.Keyslot)
	if err != nil {
		return nil, -1, err
	}
	iters, _, err := iterationCounts(ctx, sc.newHash, int(h.KeyBytes), opts.IterTime, opts.ForceIterations)
	if err != nil {
		return nil, -1, err
	}
	u, err := sealKeyslot(ctx, h, sc, slot, newPass, vk, iters, randOr(opts.Rand))
	if err != nil {
		return nil, -1, err
	}
	defer u.wipe()
	if err := commitKeyslot(hdr, h, u); err != nil {
		return nil, -1, err
	}
	return h, slot, nil
}

// RemoveKey destroys the slot that passphrase opens (cryptsetup luksRemoveKey). Removing the
// last enabled slot makes the volume unusable; it is refused with ErrLastKeyslot unless force
// is set (cryptsetup asks for confirmation there and proceeds in batch mode).
func RemoveKey(ctx context.Context, hdr ReadWriterAt, passphrase []byte, force bool) (int, error) {
	h, vk, slot, err := Unlock(ctx, hdr, passphrase, UnlockOptions{})
	if err != nil {
		return -1, err
	}
	vk.Wipe()
	if h.ActiveKeyslots() == 1 && !force {
		return -1, fmt.Errorf("keyslot %d: %w", slot, ErrLastKeyslot)
	}
	if err := destroyKeyslot(hdr, h, slot, rand.Reader); err != nil {
		return -1, err
	}
	return slot, nil
}

// ChangeKey replaces the passphrase of the slot oldPass opens (cryptsetup luksChangeKey).
// With a nil opts.Keyslot (the zero AddKeyOptions) every enabled slot is tried for oldPass,
// the new passphrase goes to the first free slot and only then is the old slot destroyed,
// so a crash never loses the only key; the slot number changes as in cryptsetup LUKS1.
// With no free slot, or with opts.Keyslot = Slot(n) (n must be the slot oldPass opens), the
// slot is destroyed and rewritten in place, as cryptsetup -S n does: a crash between the
// two writes loses that passphrase.
func ChangeKey(ctx context.Context, hdr ReadWriterAt, oldPass, newPass []byte, opts AddKeyOptions) (oldSlot, newSlot int, err error) {
	h, vk, oldSlot, err := Unlock(ctx, hdr, oldPass, UnlockOptions{Keyslot: opts.Keyslot, MaxIterations: opts.MaxIterations})
	if err != nil {
		return -1, -1, err
	}
	defer vk.Wipe()
	if isCipherNull(h) && len(newPass) > 0 {
		return -1, -1, fmt.Errorf("%w: cipher_null headers accept only an empty passphrase", ErrInvalidParameter)
	}
	sc, err := prepare(h, opts.MaxIterations)
	if err != nil {
		return -1, -1, err
	}
	newSlot = oldSlot
	if opts.Keyslot == nil {
		if s, err := pickFreeSlot(h, nil); err == nil {
			newSlot = s
		}
	}
	iters, _, err := iterationCounts(ctx, sc.newHash, int(h.KeyBytes), opts.IterTime, opts.ForceIterations)
	if err != nil {
		return -1, -1, err
	}
	// Compute the new slot completely before the first write.
	tmpl := *h
	tmpl.Keyslots[newSlot].Active = KeyDisabled
	u, err := sealKeyslot(ctx, &tmpl, sc, newSlot, newPass, vk.b, iters, randOr(opts.Rand))
	if err != nil {
		return -1, -1, err
	}
	defer u.wipe()
	if newSlot == oldSlot {
		if err := destroyKeyslot(hdr, h, oldSlot, rand.Reader); err != nil {
			return -1, -1, err
		}
		if err := commitKeyslot(hdr, h, u); err != nil {
			return -1, -1, err
		}
		return oldSlot, newSlot, nil
	}
	if err := commitKeyslot(hdr, h, u); err != nil {
		return -1, -1, err
	}
	if err := destroyKeyslot(hdr, h, oldSlot, rand.Reader); err != nil {
		return -1, -1, err
	}
	return oldSlot, newSlot, nil
}

// KillSlot destroys slot without a passphrase (cryptsetup luksKillSlot). It does not refuse
// the last enabled slot: callers that want cryptsetup's confirmation check
// Header.ActiveKeyslots first.
func KillSlot(hdr ReadWriterAt, slot int) error {
	h, err := ReadHeader(hdr)
	if err != nil {
		return err
	}
	if slot < 0 || slot >= NumKeyslots {
		return fmt.Errorf("%w: keyslot %d out of range 0..%d", ErrInvalidParameter, slot, NumKeyslots-1)
	}
	switch h.Keyslots[slot].Active {
	case KeyEnabled:
	case KeyDisabled:
		return fmt.Errorf("keyslot %d: %w", slot, ErrKeyslotInactive)
	default:
		return fmt.Errorf("keyslot %d: %w: invalid state 0x%08x", slot, ErrCorruptKeyslot, h.Keyslots[slot].Active)
	}
	return destroyKeyslot(hdr, h, slot, rand.Reader)
}
