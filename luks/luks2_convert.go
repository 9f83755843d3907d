package luks

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"

	"github.com/cloudluks/cloudluks/luks/internal/jsonc"
	"github.com/cloudluks/cloudluks/luks/sector"
)

// ErrConvert: cryptsetup refuses this conversion; the message is cryptsetup's.
var ErrConvert = fmt.Errorf("%w: cannot convert", ErrInvalidParameter)

func convertErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrConvert, fmt.Sprintf(format, a...))
}

// luks1Shift is how far the key material moves: from 4 KiB after a LUKS1 header to after
// the two 16 KiB LUKS2 metadata copies.
const luks1Shift = 2*luks2DefaultMetadataSize - 4096

// ConvertLUKS1ToLUKS2 is `cryptsetup convert --type luks2` of a LUKS1 header
// (LUKS2_luks1_to_luks2): every enabled slot becomes a LUKS2 pbkdf2 slot with the same
// salt, iterations and key material, the MK digest a pbkdf2 digest, the payload the
// dynamic segment 0 with 512-byte sectors; the key material (4 KiB up to the end of the
// last slot, rounded to 4 KiB) moves to 32 KiB, the keyslots area fills the space up to
// the payload; then both 16 KiB metadata copies are written (sequence ID 2). A crash after
// the move and before the header write leaves neither format: cryptsetup has the same
// window. A LUKSMETA block after the key material is refused, as cryptsetup refuses it.
func ConvertLUKS1ToLUKS2(hdr ReadWriterAt, rnd io.Reader) error {
	rnd = randOr(rnd)
	h, err := ReadHeader(hdr)
	if err != nil {
		return err
	}
	if _, err := sector.ParseSpec(h.CipherName, h.CipherMode); err != nil {
		return convertErr("Unable to use cipher specification %s-%s for LUKS2.", h.CipherName, h.CipherMode)
	}
	luks1Size := roundUp(h.MetadataSectors()*SectorSize, 4096)
	minOff := uint64(^uint32(0))
	for _, k := range h.Keyslots {
		minOff = min(minOff, uint64(k.KeyMaterialOffset))
	}
	if minOff != 4096/SectorSize {
		return convertErr("Unsupported keyslots material offset: %d.", minOff)
	}
	magic := make([]byte, 8)
	if n, _ := hdr.ReadAt(magic, int64(luks1Size)); n == 8 && bytes.Equal(magic, []byte("LUKSMETA")) {
		return convertErr("Unable to convert header with LUKSMETA additional metadata.")
	}
	maxSize := uint64(h.PayloadOffset) * SectorSize
	if maxSize == 0 {
		n, ok := deviceSize(hdr)
		if !ok {
			return convertErr("Unable to move keyslot area. Not enough space.")
		}
		maxSize = uint64(n)
	}
	required := luks1Size + luks1Shift
	if maxSize < required {
		if !growable(hdr) {
			return convertErr("Unable to move keyslot area. Not enough space.")
		}
		maxSize = required
	}
	cipher := h.CipherName
	if h.CipherMode != "" {
		cipher += "-" + h.CipherMode
	}
	keyslots := jsonc.NewObject()
	digestSlots := jsonc.NewArray()
	for i, k := range h.Keyslots {
		if !k.Enabled() {
			continue
		}
		off := uint64(k.KeyMaterialOffset)*SectorSize + luks1Shift
		length := roundUp(h.AFSectors()*SectorSize, 4096)
		keyslots.Set(strconv.Itoa(i), jsonc.NewObject().
			Set("type", jsonc.NewString("luks2")).
			Set("key_size", jsonc.NewInt(int64(h.KeyBytes))).
			Set("kdf", jsonc.NewObject().
				Set("type", jsonc.NewString(KDFPBKDF2)).
				Set("hash", jsonc.NewString(h.HashSpec)).
				Set("iterations", jsonc.NewInt(int64(k.Iterations))).
				Set("salt", jsonc.NewString(base64.StdEncoding.EncodeToString(k.Salt[:])))).
			Set("af", jsonc.NewObject().
				Set("type", jsonc.NewString("luks1")).
				Set("hash", jsonc.NewString(h.HashSpec)).
				Set("stripes", jsonc.NewInt(Stripes))).
			Set("area", jsonc.NewObject().
				Set("type", jsonc.NewString("raw")).
				Set("encryption", jsonc.NewString(cipher)).
				Set("key_size", jsonc.NewInt(int64(h.KeyBytes))).
				Set("offset", u64s(off)).
				Set("size", u64s(length))))
		digestSlots.Items = append(digestSlots.Items, jsonc.NewString(strconv.Itoa(i)))
	}
	ksSize := maxSize - 2*luks2DefaultMetadataSize
	ksSize -= ksSize % 4096
	root := jsonc.NewObject().
		Set("keyslots", keyslots).
		Set("tokens", jsonc.NewObject()).
		Set("segments", jsonc.NewObject().Set("0", jsonc.NewObject().
			Set("type", jsonc.NewString("crypt")).
			Set("offset", u64s(uint64(h.PayloadOffset)*SectorSize)).
			Set("iv_tweak", jsonc.NewString("0")).
			Set("size", jsonc.NewString("dynamic")).
			Set("encryption", jsonc.NewString(cipher)).
			Set("sector_size", jsonc.NewInt(SectorSize)))).
		Set("digests", jsonc.NewObject().Set("0", jsonc.NewObject().
			Set("type", jsonc.NewString("pbkdf2")).
			Set("keyslots", digestSlots).
			Set("segments", jsonc.NewArray(jsonc.NewString("0"))).
			Set("hash", jsonc.NewString(h.HashSpec)).
			Set("salt", jsonc.NewString(base64.StdEncoding.EncodeToString(h.MKDigestSalt[:]))).
			Set("digest", jsonc.NewString(base64.StdEncoding.EncodeToString(h.MKDigest[:]))).
			Set("iterations", jsonc.NewInt(int64(h.MKDigestIterations))))).
		Set("config", jsonc.NewObject().
			Set("json_size", u64s(luks2DefaultMetadataSize-l2BinLen)).
			Set("keyslots_size", u64s(ksSize)))
	m := &luks2Metadata{hdrSize: luks2DefaultMetadataSize, seqid: 1, csumAlg: "sha256", uuid: h.UUID, json: root}
	if _, err := io.ReadFull(rnd, m.salt1[:]); err != nil {
		return err
	}
	if _, err := io.ReadFull(rnd, m.salt2[:]); err != nil {
		return err
	}
	if maxSize < 2*m.hdrSize+ksSize {
		return convertErr("Cannot convert to LUKS2 format - invalid metadata.")
	}
	if _, err := m.jsonArea(); err != nil {
		return convertErr("Cannot convert to LUKS2 format - invalid metadata.")
	}
	bufSize := luks1Size - 4096
	if bufSize > ksSize {
		return convertErr("Unable to move keyslot area. LUKS2 keyslots area too small.")
	}
	buf := make([]byte, bufSize)
	defer clear(buf)
	if n, err := hdr.ReadAt(buf, 4096); n < len(buf) {
		return fmt.Errorf("reading LUKS1 key material: %w", err)
	}
	if err := writeFull(hdr, buf, 2*luks2DefaultMetadataSize); err != nil {
		return fmt.Errorf("moving the key material: %w", err)
	}
	if err := syncDevice(hdr); err != nil {
		return err
	}
	return writeLUKS2(hdr, m)
}

// ConvertLUKS2ToLUKS1 is `cryptsetup convert --type luks1` (LUKS2_luks2_to_luks1). It
// refuses, with cryptsetup's messages and before any write, what LUKS1 cannot hold: a
// data sector size other than 512, digests other than one pbkdf2 digest, a wrapped-key
// cipher, more than one segment, any token, a slot above 7, and any slot that is not
// pbkdf2 with the digest's hash, 4000 stripes and the data cipher (argon2 slots among
// them). Otherwise the keyslots area moves from 32 KiB back to 4 KiB, the first 4 KiB are
// zeroed and the LUKS1 header is written.
func ConvertLUKS2ToLUKS1(hdr ReadWriterAt, rnd io.Reader) error {
	_, m, err := loadLUKS2ForWrite(hdr, randOr(rnd))
	if err != nil {
		return err
	}
	digest := m.json.Get("digests").Get("0")
	segment := m.json.Get("segments").Get("0")
	if digest == nil || segment == nil {
		return fmt.Errorf("%w: no digest 0 or segment 0", ErrCorruptHeader)
	}
	if textOf(segment.Get("sector_size")) != "512" {
		return convertErr("Cannot convert to LUKS1 format - default segment encryption sector size is not 512 bytes.")
	}
	if textOf(digest.Get("type")) != "pbkdf2" || len(m.json.Get("digests").Members) != 1 {
		return convertErr("Cannot convert to LUKS1 format - key slot digests are not LUKS1 compatible.")
	}
	hashName := textOf(digest.Get("hash"))
	dataCipher := textOf(segment.Get("encryption"))
	name, mode, err := sector.SplitSpec(dataCipher)
	if err != nil {
		return err
	}
	if len(name) >= 4 && name[:4] == "paes" {
		return convertErr("Cannot convert to LUKS1 format - device uses wrapped key cipher %s.", name)
	}
	if n := len(m.json.Get("segments").Members); n != 1 {
		return convertErr("Cannot convert to LUKS1 format - device uses more segments.")
	}
	if n := len(m.json.Get("tokens").Members); n > 0 {
		return convertErr("Cannot convert to LUKS1 format - LUKS2 header contains %d token(s).", n)
	}
	keyslots := m.json.Get("keyslots")
	keySize := -1
	for _, id := range digest.Get("keyslots").Items {
		if ks := keyslots.Get(id.Text); ks != nil {
			if n, err := strconv.Atoi(textOf(ks.Get("key_size"))); err == nil {
				keySize = n
				break
			}
		}
	}
	if keySize <= 0 {
		return fmt.Errorf("%w: no volume key size", ErrCorruptHeader)
	}
	afLen := roundUp(afSectors(uint64(keySize))*SectorSize, 4096)
	for i := 0; i < luks2KeyslotsMax; i++ {
		ks := keyslots.Get(strconv.Itoa(i))
		if ks == nil {
			continue
		}
		if i >= NumKeyslots {
			return convertErr("Cannot convert to LUKS1 format - slot %d (over maximum slots) is still active.", i)
		}
		kdf, af, a := ks.Get("kdf"), ks.Get("af"), ks.Get("area")
		ok := textOf(ks.Get("type")) == "luks2" &&
			textOf(kdf.Get("type")) == KDFPBKDF2 && textOf(kdf.Get("hash")) == hashName &&
			textOf(af.Get("stripes")) == "4000" && textOf(af.Get("hash")) == hashName &&
			textOf(a.Get("encryption")) == dataCipher && textOf(a.Get("key_size")) == strconv.Itoa(keySize) &&
			textOf(a.Get("size")) == strconv.FormatUint(afLen, 10)
		if !ok {
			return convertErr("Cannot convert to LUKS1 format - keyslot %d is not LUKS1 compatible.", i)
		}
	}
	h1 := &Header{Version: 1, CipherName: name, CipherMode: mode, KeyBytes: uint32(keySize), UUID: m.uuid}
	lastActive := -1
	for i := 0; i < NumKeyslots; i++ {
		h1.Keyslots[i] = Keyslot{Active: KeyDisabled, Stripes: Stripes}
		ks := keyslots.Get(strconv.Itoa(i))
		var off uint64
		if ks != nil {
			off, _ = strconv.ParseUint(textOf(ks.Get("area").Get("offset")), 10, 64)
		} else {
			// A placeholder keeps the inactive LUKS1 slots from sharing one area.
			var n uint64
			if off, n, err = findAreaGap(m, keySize); err != nil {
				return convertErr("Cannot convert to LUKS1 format - no room for inactive slot %d.", i)
			}
			keyslots.Set(strconv.Itoa(i), jsonc.NewObject().Set("type", jsonc.NewString("placeholder")).
				Set("area", jsonc.NewObject().Set("offset", u64s(off)).Set("size", u64s(n))))
		}
		if off/SectorSize < luks1Shift/SectorSize || off/SectorSize > uint64(^uint32(0)) {
			return fmt.Errorf("%w: keyslot %d area offset %d", ErrCorruptHeader, i, off)
		}
		h1.Keyslots[i].KeyMaterialOffset = uint32(off/SectorSize - luks1Shift/SectorSize)
		if ks == nil {
			continue
		}
		lastActive = i
		kdf := ks.Get("kdf")
		it, _ := strconv.ParseUint(textOf(kdf.Get("iterations")), 10, 32)
		h1.Keyslots[i].Iterations = uint32(it)
		h1.Keyslots[i].Active = KeyEnabled
		if salt, err := base64.StdEncoding.DecodeString(textOf(kdf.Get("salt"))); err == nil && len(salt) == len(h1.Keyslots[i].Salt) {
			copy(h1.Keyslots[i].Salt[:], salt)
		}
	}
	if lastActive < 0 {
		return fmt.Errorf("%w: no active key slot", ErrKeyslotInactive)
	}
	h1.HashSpec = textOf(keyslots.Get(strconv.Itoa(lastActive)).Get("kdf").Get("hash"))
	it, _ := strconv.ParseUint(textOf(digest.Get("iterations")), 10, 32)
	h1.MKDigestIterations = uint32(it)
	d, err := base64.StdEncoding.DecodeString(textOf(digest.Get("digest")))
	if err != nil || len(d) < len(h1.MKDigest) {
		return fmt.Errorf("%w: digest", ErrCorruptHeader)
	}
	copy(h1.MKDigest[:], d)
	salt, err := base64.StdEncoding.DecodeString(textOf(digest.Get("salt")))
	if err != nil || len(salt) != len(h1.MKDigestSalt) {
		return fmt.Errorf("%w: digest salt", ErrCorruptHeader)
	}
	copy(h1.MKDigestSalt[:], salt)
	segOff, _ := strconv.ParseUint(textOf(segment.Get("offset")), 10, 64)
	if segOff/SectorSize > uint64(^uint32(0)) {
		return fmt.Errorf("%w: segment offset %d", ErrCorruptHeader, segOff)
	}
	h1.PayloadOffset = uint32(segOff / SectorSize)
	ksSize, _ := strconv.ParseUint(textOf(m.json.Get("config").Get("keyslots_size")), 10, 64)
	if ksSize > luks2MaxKeyslotsSize {
		return fmt.Errorf("%w: keyslots area of %d bytes", ErrCorruptHeader, ksSize)
	}
	bin, err := h1.MarshalBinary()
	if err != nil {
		return err
	}
	buf := make([]byte, ksSize)
	defer clear(buf)
	if n, err := hdr.ReadAt(buf, 2*luks2DefaultMetadataSize); n < len(buf) {
		return fmt.Errorf("reading the keyslots area: %w", err)
	}
	if err := writeFull(hdr, buf, 4096); err != nil {
		return fmt.Errorf("moving the keyslots area: %w", err)
	}
	if err := syncDevice(hdr); err != nil {
		return err
	}
	if err := writeFull(hdr, make([]byte, 4096), 0); err != nil {
		return err
	}
	if err := writeFull(hdr, bin, 0); err != nil {
		return err
	}
	return syncDevice(hdr)
}
