package luks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cloudluks/cloudluks/luks/internal/jsonc"
	"github.com/cloudluks/cloudluks/luks/sector"
)

// LUKS2KeyslotOptions are the PBKDF and slot parameters of a new LUKS2 key slot
// (luksAddKey's --pbkdf, --pbkdf-memory, --pbkdf-parallel, --pbkdf-force-iterations,
// --iter-time, --hash, --new-key-slot). Zero values take cryptsetup 2.6's defaults, as in
// LUKS2FormatOptions.
type LUKS2KeyslotOptions struct {
	Hash            string
	PBKDF           string
	IterTime        time.Duration
	ForceIterations uint32
	Memory          uint32
	Parallel        uint32
	Keyslot         *int      // nil: the first free slot (LUKS2_keyslot_find_empty)
	Rand            io.Reader // nil = getrandom(2) (luks/internal/secretrand)
	// KeyslotCipher and KeyslotKeySize (bytes) force the new slot's area encryption
	// (--keyslot-cipher, --keyslot-key-size/8); both or neither. Unset, the slot is
	// encrypted as the data segment, or with aes-xts-plain64 and 512 bits when the
	// segment's cipher cannot protect a key slot.
	KeyslotCipher  string
	KeyslotKeySize int
}

// ErrKeyslotCipherIncompatible: a forced key slot cipher cannot encrypt a key slot area
// (LUKS2_keyslot_cipher_incompatible: cipher_null, a specification that does not parse, a
// cipher name outside cryptsetup's cipher table, a wrapped-key cipher such as paes).
// cryptsetup refuses it without a message.
var ErrKeyslotCipherIncompatible = errors.New("cipher cannot be used for LUKS2 keyslot encryption")

// KeyslotCipherError: the forced key slot cipher and key size pass cryptsetup's first check
// but its key slot storage cannot use them (crypt_storage_init fails); cryptsetup's message
// is "Cannot use <cipher>-<mode> cipher for keyslot encryption.".
type KeyslotCipherError struct {
	Cipher, Mode string
	Err          error
}

func (e *KeyslotCipherError) Error() string {
	return fmt.Sprintf("cannot use %s-%s cipher for keyslot encryption: %v", e.Cipher, e.Mode, e.Err)
}

func (e *KeyslotCipherError) Unwrap() error { return e.Err }

// keyslotEncryption is crypt_keyslot_get_encryption for a new key slot: the forced cipher
// and key size when given (checked as crypt_keyslot_set_encryption checks it, and keyed
// once as crypt_storage_init would key it), else the segment's cipher and volume key size,
// else cryptsetup's default aes-xts-plain64 with 512 bits.
func keyslotEncryption(segCipher string, vkBytes int, forced string, forcedBytes int) (string, int, error) {
	if forced == "" && forcedBytes == 0 {
		if keyslotCipherUsable(segCipher) && vkBytes > 0 {
			return segCipher, vkBytes, nil
		}
		return "aes-xts-plain64", 64, nil
	}
	if forcedBytes <= 0 {
		return "", 0, fmt.Errorf("%w: keyslot cipher and keyslot key size go together", ErrInvalidParameter)
	}
	// An empty --keyslot-cipher is a specification that does not parse: silent, as in
	// cryptsetup.
	if keyslotCipherIncompatible(forced) {
		return "", 0, fmt.Errorf("%w: %q", ErrKeyslotCipherIncompatible, forced)
	}
	name, mode, _ := sector.SplitSpec(forced)
	if err := keyslotStorageUsable(name, mode, forcedBytes); err != nil {
		return "", 0, &KeyslotCipherError{Cipher: name, Mode: mode, Err: err}
	}
	return forced, forcedBytes, nil
}

// CheckKeyslotCipher is crypt_keyslot_set_encryption's check of a --keyslot-cipher:
// ErrKeyslotCipherIncompatible for a cipher that cannot encrypt a key slot area. Whether
// the key slot storage can use it with its key size is found when the slot is made
// (*KeyslotCipherError).
func CheckKeyslotCipher(spec string) error {
	if keyslotCipherIncompatible(spec) {
		return fmt.Errorf("%w: %q", ErrKeyslotCipherIncompatible, spec)
	}
	return nil
}

// keyslotCipherUsable: a segment cipher that a new key slot takes over when none is
// forced (cryptsetup's LUKS2_keyslot_params_default), limited to what this package can
// encrypt a key slot with.
func keyslotCipherUsable(spec string) bool {
	if keyslotCipherIncompatible(spec) {
		return false
	}
	name, mode, _ := sector.SplitSpec(spec)
	_, err := sector.ParseSpec(name, mode)
	return err == nil
}

// cryptsetupCiphers is lib/crypto_backend/cipher_generic.c's cipher table (name, the mode
// prefix it needs, wrapped key), which LUKS2_keyslot_cipher_incompatible consults through
// crypt_cipher_ivsize and crypt_cipher_wrapped_key. Names match case-insensitively.
var cryptsetupCiphers = []struct {
	name, mode string
	wrapped    bool
}{
	{"cipher_null", "", false}, {"aes", "", false}, {"serpent", "", false},
	{"twofish", "", false}, {"anubis", "", false}, {"blowfish", "", false},
	{"camellia", "", false}, {"cast5", "", false}, {"cast6", "", false},
	{"des", "", false}, {"des3_ede", "", false}, {"khazad", "", false},
	{"seed", "", false}, {"tea", "", false}, {"xtea", "", false},
	{"paes", "", true}, {"xchacha12,aes", "adiantum", false},
	{"xchacha20,aes", "adiantum", false}, {"sm4", "", false},
}

// keyslotCipherIncompatible is LUKS2_keyslot_cipher_incompatible, the silent refusal:
// cipher_null, a specification crypt_parse_name_and_mode cannot split, a cipher outside
// cryptsetup's table, a wrapped-key cipher. (Its integrity check does not arise: this
// package formats no LUKS2 device with integrity.)
func keyslotCipherIncompatible(spec string) bool {
	name, mode, err := sector.SplitSpec(spec)
	if err != nil || name == "cipher_null" || strings.Contains(spec, "cipher_null") {
		return true
	}
	for _, c := range cryptsetupCiphers {
		if strings.EqualFold(name, c.name) &&
			(c.mode == "" || len(mode) >= len(c.mode) && strings.EqualFold(mode[:len(c.mode)], c.mode)) {
			return c.wrapped
		}
	}
	return true
}

// errKeyslotStorage is why keyslotStorageUsable refuses a cipher.
var errKeyslotStorage = errors.New("key slot storage cannot use this cipher and key size")

// keyslotStorageUsable is crypt_storage_init (lib/crypto_backend/crypto_storage.c) as
// Debian's cryptsetup 2.6.1 runs it, with the OpenSSL backend and no kernel AF_ALG
// fallback, limited to what this package implements:
//   - the block cipher is OpenSSL's "<name>-<bits>-<mode>" with the whole key, bits halved
//     only for the lower-case mode "xts": so aes only (OpenSSL has no serpent or twofish),
//     xts with 256 or 512 bits but not "XTS", cbc (any case) with 128, 192 or 256 bits;
//     lrw does not exist there;
//   - "ecb" (lower case only) takes no IV generator; every other mode needs one;
//   - the IV generator is null, plain, plain64 or plain64be exactly (any case, no option),
//     essiv:HASH whose digest is an aes key, benbi, or eboiv, which keys aes-ecb with the
//     whole key and so cannot follow xts here (cryptsetup's eboiv differs from dm-crypt's
//     for xts and this package implements dm-crypt's).
//
// Known differences: cryptsetup also takes camellia, the stream modes ctr, cfb, cfb1,
// cfb8 and ofb, aes-xts-eboiv with 256 bits and IV names that only start with "benbi" or
// "eboiv"; it refuses gcm, ccm, ocb and wrap later, with "IO error while encrypting
// keyslot.". All of these are refused here with the "Cannot use" message.
func keyslotStorageUsable(name, mode string, keyBytes int) error {
	chain, iv, hasIV := strings.Cut(mode, "-")
	aesKey := keyBytes == 16 || keyBytes == 24 || keyBytes == 32
	ok := strings.EqualFold(name, "aes")
	switch {
	case !ok:
	case chain == "ecb":
		ok = !hasIV && aesKey
	case chain == "xts":
		ok = hasIV && (keyBytes == 32 || keyBytes == 64)
	case strings.EqualFold(chain, "cbc"):
		ok = hasIV && aesKey
	default:
		ok = false
	}
	if ok && hasIV {
		ivName, _, hasOpt := strings.Cut(strings.ToLower(iv), ":")
		switch ivName {
		case "null", "plain", "plain64", "plain64be":
			ok = !hasOpt
		case "essiv":
			ok = hasOpt // ParseSpec checks that the digest is an aes key
		case "benbi":
		case "eboiv":
			ok = chain != "xts"
		default:
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("%w: %s-%s with %d bits", errKeyslotStorage, name, mode, keyBytes*8)
	}
	spec, err := sector.ParseSpec(name, mode)
	if err != nil {
		return err
	}
	return spec.CheckKeySize(keyBytes)
}

// loadLUKS2ForWrite loads a header the way cryptsetup does before changing it and returns
// it with the writable metadata: the JSON of the copy in use, in its member order (so
// unknown tokens and fields go back exactly as they were), its binary fields and both
// salts. A copy that is damaged or older gets a fresh salt, as cryptsetup regenerates the
// salt of the copy it repairs. A header with mandatory requirements (an unfinished
// reencryption, a requirement this package does not know) is refused with a
// *RequirementError, as cryptsetup's onlyLUKS2 check refuses it before every header change
// but one (see loadLUKS2AnyRequirements).
func loadLUKS2ForWrite(r io.ReaderAt, rnd io.Reader) (*Header2, *luks2Metadata, error) {
	return loadLUKS2(r, rnd, true)
}

// loadLUKS2AnyRequirements is loadLUKS2ForWrite without the requirements check: cryptsetup
// destroys a key slot (crypt_keyslot_destroy, CRYPT_CD_UNRESTRICTED) whatever the header
// requires, so that a key can be revoked even on a device in the middle of a reencryption
// or marked by a later cryptsetup.
func loadLUKS2AnyRequirements(r io.ReaderAt, rnd io.Reader) (*Header2, *luks2Metadata, error) {
	return loadLUKS2(r, rnd, false)
}

func loadLUKS2(r io.ReaderAt, rnd io.Reader, checkRequirements bool) (*Header2, *luks2Metadata, error) {
	h, err := ReadHeader2(r)
	if err != nil {
		return nil, nil, err
	}
	if checkRequirements {
		if err := h.UnmetRequirements(false); err != nil {
			return nil, nil, err
		}
	}
	tree, _, err := jsonc.Parse(h.JSON)
	if err != nil || tree.Kind != jsonc.Object {
		return nil, nil, fmt.Errorf("%w: JSON metadata: %v", ErrCorruptHeader, err)
	}
	m := &luks2Metadata{hdrSize: h.HeaderSize, seqid: h.SeqID, label: h.Label, subsystem: h.Subsystem,
		csumAlg: h.ChecksumAlg, uuid: h.UUID, json: tree}
	if m.csumAlg != "sha256" {
		// Only sha256 is written; cryptsetup itself always writes sha256 (LUKS2_generate_hdr).
		m.csumAlg = "sha256"
	}
	for i, c := range []struct {
		bin *BinaryHeader2
		err error
		dst *[l2SaltLen]byte
	}{{h.Primary, h.PrimaryErr, &m.salt1}, {h.Secondary, h.SecondaryErr, &m.salt2}} {
		if c.bin != nil && c.err == nil {
			*c.dst = c.bin.Salt
			continue
		}
		if _, err := io.ReadFull(rnd, c.dst[:]); err != nil {
			return nil, nil, fmt.Errorf("header copy %d: new salt: %w", i, err)
		}
	}
	return h, m, nil
}

type area struct{ off, len uint64 }

// keyslotAreas lists the areas of every key slot in the JSON (any type with an area).
func keyslotAreas(m *luks2Metadata) []area {
	var out []area
	for _, ks := range m.json.Get("keyslots").Members {
		a := ks.Value.Get("area")
		off, err1 := strconv.ParseUint(textOf(a.Get("offset")), 10, 64)
		n, err2 := strconv.ParseUint(textOf(a.Get("size")), 10, 64)
		if err1 == nil && err2 == nil && n != 0 {
			out = append(out, area{off, n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].off < out[j].off })
	return out
}

func textOf(v *jsonc.Value) string {
	if v == nil {
		return ""
	}
	return v.Text
}

// findAreaGap is LUKS2_find_area_gap: the first hole after both metadata copies, walking
// the used areas in offset order, big enough for the key's AF material rounded to 4 KiB.
func findAreaGap(m *luks2Metadata, keyBytes int) (uint64, uint64, error) {
	length := roundUp(uint64(keyBytes)*luks2Stripes, 4096)
	offset := 2 * m.hdrSize
	ksSize, _ := strconv.ParseUint(textOf(m.json.Get("config").Get("keyslots_size")), 10, 64)
	for _, a := range keyslotAreas(m) {
		if offset < a.off && offset+length <= a.off {
			break
		}
		offset = a.off + a.len
	}
	if offset+length > 2*m.hdrSize+ksSize {
		return 0, 0, fmt.Errorf("%w: no space for new keyslot", ErrNoFreeKeyslot)
	}
	return offset, length, nil
}

// segmentDigestID returns the id of the digest that covers segment 0.
func segmentDigestID(m *luks2Metadata) (string, *jsonc.Value, error) {
	for _, d := range m.json.Get("digests").Members {
		for _, s := range d.Value.Get("segments").Items {
			if s.Text == "0" {
				return d.Key, d.Value, nil
			}
		}
	}
	return "", nil, fmt.Errorf("%w: segment 0 has no digest", ErrCorruptHeader)
}

// sealLUKS2Keyslot derives the slot key, splits and encrypts vk (luks2_keyslot_set_key)
// and returns the keyslot JSON in cryptsetup's member order with the material for its area.
func sealLUKS2Keyslot(ctx context.Context, kdf luks2KDF, hashName, slotCipher string, slotKeyBytes int,
	areaOff, areaLen uint64, vk, pass []byte, rnd io.Reader) (*jsonc.Value, []byte, error) {
	newHash, err := sector.NewHashLUKS2(hashName)
	if err != nil {
		return nil, nil, err
	}
	slotName, slotMode, err := sector.SplitSpec(slotCipher)
	if err != nil {
		return nil, nil, err
	}
	salt := make([]byte, luks2SaltSize)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return nil, nil, err
	}
	kdfObj := jsonc.NewObject().Set("type", jsonc.NewString(kdf.typ))
	var dk []byte
	if kdf.typ == KDFPBKDF2 {
		kdfObj.Set("hash", jsonc.NewString(kdf.hash)).Set("iterations", jsonc.NewInt(int64(kdf.iter)))
		dk, err = pbkdf2Key(ctx, newHash, pass, salt, kdf.iter, slotKeyBytes)
	} else {
		kdfObj.Set("time", jsonc.NewInt(int64(kdf.iter))).
			Set("memory", jsonc.NewInt(int64(kdf.memory))).
			Set("cpus", jsonc.NewInt(int64(kdf.parallel)))
		dk, err = argon2Key(ctx, kdf.typ, pass, salt, int64(kdf.iter), int64(kdf.memory), int64(kdf.parallel), slotKeyBytes, argon2MaxMemory, math.MaxUint64)
	}
	if err != nil {
		return nil, nil, err
	}
	defer clear(dk)
	kdfObj.Set("salt", b64Value(salt))
	obj := jsonc.NewObject().
		Set("type", jsonc.NewString("luks2")).
		Set("key_size", jsonc.NewInt(int64(len(vk)))).
		Set("af", jsonc.NewObject().
			Set("type", jsonc.NewString("luks1")).
			Set("stripes", jsonc.NewInt(luks2Stripes)).
			Set("hash", jsonc.NewString(hashName))).
		Set("area", jsonc.NewObject().
			Set("type", jsonc.NewString("raw")).
			Set("offset", u64s(areaOff)).
			Set("size", u64s(areaLen)).
			Set("encryption", jsonc.NewString(slotCipher)).
			Set("key_size", jsonc.NewInt(int64(slotKeyBytes)))).
		Set("kdf", kdfObj)
	split, err := afSplit(vk, luks2Stripes, newHash, rnd)
	if err != nil {
		return nil, nil, err
	}
	mat := make([]byte, roundUp(uint64(len(split)), SectorSize))
	copy(mat, split)
	clear(split)
	c, err := sector.New(slotName, slotMode, dk)
	if err != nil {
		clear(mat)
		return nil, nil, err
	}
	c.Encrypt(mat, mat, 0)
	c.Wipe()
	return obj, mat, nil
}

// AddKeyLUKS2 is luksAddKey on LUKS2: existing unlocks the volume key through any slot,
// newPass goes into a new slot.
func AddKeyLUKS2(ctx context.Context, hdr ReadWriterAt, existing, newPass []byte, opts LUKS2KeyslotOptions) (int, error) {
	_, vk, _, err := Unlock2(ctx, hdr, existing, UnlockOptions{})
	if err != nil {
		return -1, err
	}
	defer vk.Wipe()
	return AddKeyLUKS2ByVolumeKey(ctx, hdr, vk, newPass, opts)
}

// AddKeyLUKS2ByVolumeKey adds a key slot for newPass holding vk, in cryptsetup's order
// (luks2_keyslot_add_by_verified_volume_key): the slot is assigned to segment 0's digest,
// its JSON added after the existing slots, its area (the first gap that fits) written and
// synced, then both header copies are written with the sequence ID one higher. A crash
// before the header write leaves the old header, whose JSON does not know the area. Every
// other member of the JSON, unknown tokens included, is written back as it was.
func AddKeyLUKS2ByVolumeKey(ctx context.Context, hdr ReadWriterAt, vk *VolumeKey, newPass []byte, opts LUKS2KeyslotOptions) (int, error) {
	rnd := randOr(opts.Rand)
	h, m, err := loadLUKS2ForWrite(hdr, rnd)
	if err != nil {
		return -1, err
	}
	ok, err := h.verifyKey(ctx, vk.b)
	if err != nil {
		return -1, err
	}
	if !ok {
		return -1, ErrVolumeKeyMismatch
	}
	keyslots := m.json.Get("keyslots")
	slot := -1
	if opts.Keyslot != nil {
		slot = *opts.Keyslot
		if slot < 0 || slot >= luks2KeyslotsMax {
			return -1, optErr("Key slot %d is invalid, please select between 0 and %d.", slot, luks2KeyslotsMax-1)
		}
		if keyslots.Get(strconv.Itoa(slot)) != nil {
			return -1, fmt.Errorf("%w: keyslot %d is in use", ErrInvalidParameter, slot)
		}
	} else {
		for i := 0; i < luks2KeyslotsMax; i++ {
			if keyslots.Get(strconv.Itoa(i)) == nil {
				slot = i
				break
			}
		}
		if slot < 0 {
			return -1, ErrNoFreeKeyslot
		}
	}
	areaOff, areaLen, err := findAreaGap(m, vk.Len())
	if err != nil {
		return -1, err
	}
	_, digest, err := segmentDigestID(m)
	if err != nil {
		return -1, err
	}
	obj, mat, err := newKeyslot(ctx, h, vk.b, newPass, opts, areaOff, areaLen, rnd)
	if err != nil {
		return -1, fmt.Errorf("keyslot %d: %w", slot, err)
	}
	defer clear(mat)
	id := strconv.Itoa(slot)
	digest.Set("keyslots", jsonc.NewArray(append(digest.Get("keyslots").Items, jsonc.NewString(id))...))
	keyslots.Set(id, obj)
	if _, err := m.jsonArea(); err != nil {
		return -1, err
	}
	if err := writeFull(hdr, mat, int64(areaOff)); err != nil {
		return -1, fmt.Errorf("keyslot %d: writing key material: %w", slot, err)
	}
	if err := syncDevice(hdr); err != nil {
		return -1, err
	}
	if err := writeLUKS2(hdr, m); err != nil {
		return -1, err
	}
	return slot, nil
}

// newKeyslot resolves and calibrates the PBKDF of opts (cryptsetup's defaults for a new
// LUKS2 slot), picks the slot cipher (the segment's, or aes-xts-plain64 with a 512-bit
// key for cipher_null, crypt_keyslot_get_encryption) and seals vk for the given area.
func newKeyslot(ctx context.Context, h *Header2, vk, pass []byte, opts LUKS2KeyslotOptions, areaOff, areaLen uint64, rnd io.Reader) (*jsonc.Value, []byte, error) {
	hashName := opts.Hash
	if hashName == "" {
		hashName = "sha256"
	}
	if err := checkHash(hashName); err != nil {
		return nil, nil, err
	}
	fo := LUKS2FormatOptions{PBKDF: opts.PBKDF, IterTime: opts.IterTime,
		ForceIterations: opts.ForceIterations, Memory: opts.Memory, Parallel: opts.Parallel}
	kdf, err := fo.resolveKDF(hashName)
	if err != nil {
		return nil, nil, err
	}
	seg := h.Segments[0]
	if seg == nil {
		return nil, nil, fmt.Errorf("%w: no segment 0", ErrCorruptHeader)
	}
	slotCipher, slotKeyBytes, err := keyslotEncryption(seg.Encryption, len(vk), opts.KeyslotCipher, opts.KeyslotKeySize)
	if err != nil {
		return nil, nil, err
	}
	if !kdf.forced {
		if kdf.typ == KDFPBKDF2 {
			newHash, err := sector.NewHashLUKS2(hashName)
			if err != nil {
				return nil, nil, err
			}
			if kdf.iter, err = benchmarkPBKDF2(ctx, newHash, slotKeyBytes, kdf.target); err != nil {
				return nil, nil, err
			}
			kdf.iter = max(kdf.iter, pbkdf2MinIterations)
		} else if kdf.iter, kdf.memory, err = benchmarkArgon2(ctx, kdf.typ, slotKeyBytes, kdf.memory, kdf.parallel, kdf.target); err != nil {
			return nil, nil, err
		}
	}
	return sealLUKS2Keyslot(ctx, kdf, hashName, slotCipher, slotKeyBytes, areaOff, areaLen, vk, pass, rnd)
}

// ChangeKeyLUKS2 is luksChangeKey on LUKS2 (crypt_keyslot_change_by_passphrase): the new
// passphrase goes to a new slot (first free), which takes over the old slot's tokens;
// both copies are written; the two slots' JSON are swapped so the old number now holds
// the new key; the old key's slot is killed (area wiped, both copies written). With
// opts.Keyslot, or when no slot is free, the old slot's area is wiped and rewritten in
// place (one header write). It returns the slot that now holds the new passphrase.
func ChangeKeyLUKS2(ctx context.Context, hdr ReadWriterAt, oldPass, newPass []byte, opts LUKS2KeyslotOptions) (int, error) {
	rnd := randOr(opts.Rand)
	_, vk, old, err := Unlock2(ctx, hdr, oldPass, UnlockOptions{Keyslot: opts.Keyslot})
	if err != nil {
		return -1, err
	}
	defer vk.Wipe()
	h, m, err := loadLUKS2ForWrite(hdr, rnd)
	if err != nil {
		return -1, err
	}
	keyslots := m.json.Get("keyslots")
	oldID := strconv.Itoa(old)
	newSlot := -1
	if opts.Keyslot == nil {
		for i := 0; i < luks2KeyslotsMax; i++ {
			if keyslots.Get(strconv.Itoa(i)) == nil {
				newSlot = i
				break
			}
		}
	}
	var areaOff, areaLen uint64
	if newSlot >= 0 {
		if areaOff, areaLen, err = findAreaGap(m, vk.Len()); err != nil {
			newSlot = -1
		}
	}
	if newSlot < 0 {
		// In place: LUKS2_keyslot_wipe(area only), then the slot's JSON refreshed
		// (luks2_keyslot_update_json keeps the area and the other members).
		ks := keyslots.Get(oldID)
		a := ks.Get("area")
		off, err1 := strconv.ParseUint(textOf(a.Get("offset")), 10, 64)
		n, err2 := strconv.ParseUint(textOf(a.Get("size")), 10, 64)
		if err1 != nil || err2 != nil || n == 0 || n > 1<<30 {
			return -1, fmt.Errorf("%w: keyslot %d area", ErrCorruptKeyslot, old)
		}
		obj, mat, err := newKeyslot(ctx, h, vk.b, newPass, opts, off, n, rnd)
		if err != nil {
			return -1, fmt.Errorf("keyslot %d: %w", old, err)
		}
		defer clear(mat)
		if err := wipeSpecialFor(hdr, int64(off), int(n), rnd); err != nil {
			return -1, fmt.Errorf("keyslot %d: wiping key material: %w", old, err)
		}
		na := obj.Get("area")
		a.Set("encryption", na.Get("encryption")).Set("key_size", na.Get("key_size"))
		ks.Set("kdf", obj.Get("kdf"))
		ks.Get("af").Set("hash", obj.Get("af").Get("hash"))
		if _, err := m.jsonArea(); err != nil {
			return -1, err
		}
		if err := writeFull(hdr, mat, int64(off)); err != nil {
			return -1, fmt.Errorf("keyslot %d: writing key material: %w", old, err)
		}
		if err := syncDevice(hdr); err != nil {
			return -1, err
		}
		return old, writeLUKS2(hdr, m)
	}
	newID := strconv.Itoa(newSlot)
	_, digest, err := segmentDigestID(m)
	if err != nil {
		return -1, err
	}
	obj, mat, err := newKeyslot(ctx, h, vk.b, newPass, opts, areaOff, areaLen, rnd)
	if err != nil {
		return -1, fmt.Errorf("keyslot %d: %w", newSlot, err)
	}
	defer clear(mat)
	appendID := func(v *jsonc.Value) {
		v.Set("keyslots", jsonc.NewArray(append(v.Get("keyslots").Items, jsonc.NewString(newID))...))
	}
	appendID(digest)
	for _, t := range m.json.Get("tokens").Members {
		if list := t.Value.Get("keyslots"); list != nil && list.Kind == jsonc.Array && hasID(list, oldID) && !hasID(list, newID) {
			appendID(t.Value)
		}
	}
	keyslots.Set(newID, obj)
	if _, err := m.jsonArea(); err != nil {
		return -1, err
	}
	if err := writeFull(hdr, mat, int64(areaOff)); err != nil {
		return -1, fmt.Errorf("keyslot %d: writing key material: %w", newSlot, err)
	}
	if err := syncDevice(hdr); err != nil {
		return -1, err
	}
	if err := writeLUKS2(hdr, m); err != nil {
		return -1, err
	}
	// LUKS2_keyslot_swap: delete and re-add each id, so both move to the end.
	oldObj := keyslots.Get(oldID)
	keyslots.Delete(oldID)
	keyslots.Set(oldID, obj)
	keyslots.Delete(newID)
	keyslots.Set(newID, oldObj)
	return old, killSlotMeta(hdr, m, newSlot, rnd)
}

func hasID(list *jsonc.Value, id string) bool {
	for _, it := range list.Items {
		if it.Kind == jsonc.String && it.Text == id {
			return true
		}
	}
	return false
}

// KillSlotLUKS2 is luksKillSlot on LUKS2 (LUKS2_keyslot_wipe): the slot's area is wiped
// first (cryptsetup's special wipe: one random pass on files and SSDs) and synced, then the
// slot's id is removed from every digest and token that lists it, the slot from the
// keyslots object, and both header copies are written. A crash after the wipe leaves a
// header whose slot no longer opens, never live key material without a header entry.
// Mandatory requirements do not stop it (cryptsetup's crypt_keyslot_destroy is unrestricted).
func KillSlotLUKS2(hdr ReadWriterAt, slot int, rnd io.Reader) error {
	rnd = randOr(rnd)
	_, m, err := loadLUKS2AnyRequirements(hdr, rnd)
	if err != nil {
		return err
	}
	return killSlotMeta(hdr, m, slot, rnd)
}

// killSlotMeta kills slot in the loaded metadata m and writes it.
func killSlotMeta(hdr ReadWriterAt, m *luks2Metadata, slot int, rnd io.Reader) error {
	id := strconv.Itoa(slot)
	ks := m.json.Get("keyslots").Get(id)
	if slot < 0 || slot >= luks2KeyslotsMax || ks == nil {
		return fmt.Errorf("keyslot %d: %w", slot, ErrKeyslotInactive)
	}
	a := ks.Get("area")
	off, err1 := strconv.ParseUint(textOf(a.Get("offset")), 10, 64)
	n, err2 := strconv.ParseUint(textOf(a.Get("size")), 10, 64)
	if err1 == nil && err2 == nil && n > 0 {
		if n > 1<<30 {
			return fmt.Errorf("%w: keyslot %d area of %d bytes", ErrCorruptKeyslot, slot, n)
		}
		if err := wipeSpecialFor(hdr, int64(off), int(n), rnd); err != nil {
			return fmt.Errorf("keyslot %d: wiping key material: %w", slot, err)
		}
	}
	for _, group := range []string{"digests", "tokens"} {
		for _, mem := range m.json.Get(group).Members {
			list := mem.Value.Get("keyslots")
			if list == nil || list.Kind != jsonc.Array {
				continue
			}
			kept := []*jsonc.Value{}
			for _, it := range list.Items {
				if !(it.Kind == jsonc.String && it.Text == id) {
					kept = append(kept, it)
				}
			}
			if len(kept) != len(list.Items) {
				mem.Value.Set("keyslots", jsonc.NewArray(kept...))
			}
		}
	}
	m.json.Get("keyslots").Delete(id)
	return writeLUKS2(hdr, m)
}

// RemoveKeyLUKS2 is luksRemoveKey on LUKS2: the slot passphrase opens is killed.
func RemoveKeyLUKS2(ctx context.Context, hdr ReadWriterAt, passphrase []byte, rnd io.Reader) (int, error) {
	_, vk, slot, err := Unlock2(ctx, hdr, passphrase, UnlockOptions{})
	if err != nil {
		return -1, err
	}
	vk.Wipe()
	return slot, KillSlotLUKS2(hdr, slot, rnd)
}

// wipeSpecialFor is crypt_wipe_device(CRYPT_WIPE_SPECIAL) as destroyKeyslot applies it:
// the multi-pass pattern set on a rotational block device, one random pass elsewhere.
func wipeSpecialFor(w io.WriterAt, off int64, n int, rnd io.Reader) error {
	if isRotational(w) {
		return wipeSpecial(w, off, n, rnd)
	}
	return wipeRandom(w, off, n, rnd)
}
