package luks

import (
	"bytes"
	"crypto/sha256"
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
// the payload; both 16 KiB metadata copies are written (sequence ID 2). A LUKSMETA block
// after the key material is refused, as cryptsetup refuses it.
//
// cryptsetup moves the key material over itself and then writes the header, so a crash
// in between leaves a device neither format opens. Here the order is: (1) a copy of every
// enabled slot goes to free space between 32 KiB and the data offset that no slot uses
// now or will use, sync; (2) if a slot starts below 32 KiB, the LUKS1 header (one
// sector) points it at its copy, sync; (3) a LUKS2 header with sequence ID 1 pointing
// at the copies, secondary then primary, each one write and a sync; (4) the key material
// in its final place, sync; (5) the final LUKS2 header (sequence ID 2), secondary then
// primary; (6) the staging areas get back what they held and the LUKS1 key-material
// region is written shifted, as cryptsetup leaves it. Guarantee, for writes that are
// atomic per 512-byte sector and land in order (a torn write keeps a prefix): after a
// crash or an I/O error at any point the device opens with every old passphrase, as
// LUKS1 up to the first sector of step 3's primary and as LUKS2 from then on; the
// result of a complete run is byte for byte what cryptsetup makes. After a crash in
// steps 1–5 copies of the key slots may remain in the staging space. When no staging
// space exists (512-bit keys with all eight slots enabled, or an area too tight) it
// refuses with ErrConvertNoRoom before writing anything.
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
	length := roundUp(h.AFSectors()*SectorSize, 4096)
	var final [NumKeyslots]uint64
	for i, k := range h.Keyslots {
		final[i] = uint64(k.KeyMaterialOffset)*SectorSize + luks1Shift
	}
	ksSize := maxSize - 2*luks2DefaultMetadataSize
	ksSize -= ksSize % 4096
	mkRoot := func(areaOff [NumKeyslots]uint64) *jsonc.Value {
		keyslots := jsonc.NewObject()
		digestSlots := jsonc.NewArray()
		for i, k := range h.Keyslots {
			if !k.Enabled() {
				continue
			}
			off := areaOff[i]
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
		return jsonc.NewObject().
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
	}
	root := mkRoot(final)
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
	stage, st, err := planLUKS1Staging(h, final, length, min(2*luks2DefaultMetadataSize+ksSize, maxSize))
	if err != nil {
		return err
	}
	m1 := *m
	m1.json, m1.seqid = mkRoot(stage), 1
	if _, err := m1.jsonArea(); err != nil {
		return convertErr("Cannot convert to LUKS2 format - invalid metadata.")
	}
	m.seqid = 2
	afLen := h.AFSectors() * SectorSize
	material := func(i int) []byte {
		s := uint64(h.Keyslots[i].KeyMaterialOffset)*SectorSize - 4096
		return buf[s : s+afLen]
	}
	// What the staging areas held, so that the device ends as cryptsetup leaves it.
	var saved [NumKeyslots][]byte
	for i, k := range h.Keyslots {
		if k.Enabled() {
			saved[i] = make([]byte, length)
			hdr.ReadAt(saved[i], int64(stage[i])) // past the end of a growable file: zeros
			defer clear(saved[i])
		}
	}
	// 1. Copies of every slot in free space; the LUKS1 header does not look there.
	for i, k := range h.Keyslots {
		if k.Enabled() {
			if err := writeFull(hdr, material(i), int64(stage[i])); err != nil {
				return fmt.Errorf("staging keyslot %d: %w", i, err)
			}
		}
	}
	if err := syncDevice(hdr); err != nil {
		return err
	}
	// 2. The LUKS1 header points the slots below 32 KiB at their copies (one sector).
	if st != nil {
		bin, err := st.MarshalBinary()
		if err != nil {
			return err
		}
		if err := writeFull(hdr, bin, 0); err != nil {
			return fmt.Errorf("writing the staging LUKS1 header: %w", err)
		}
		if err := syncDevice(hdr); err != nil {
			return err
		}
	}
	// 3. LUKS2 (sequence ID 1) on the copies; 4. the key material in its final place;
	// 5. the final LUKS2 header (sequence ID 2).
	if err := writeLUKS2Copies(hdr, &m1); err != nil {
		return err
	}
	for i, k := range h.Keyslots {
		if k.Enabled() {
			if err := writeFull(hdr, material(i), int64(final[i])); err != nil {
				return fmt.Errorf("moving keyslot %d: %w", i, err)
			}
		}
	}
	if err := syncDevice(hdr); err != nil {
		return err
	}
	if err := writeLUKS2Copies(hdr, m); err != nil {
		return err
	}
	// 6. Nothing refers to the copies any more: the staging areas get back what they held,
	// and the whole LUKS1 key-material region lands shifted, as cryptsetup moves it.
	for i, k := range h.Keyslots {
		if k.Enabled() {
			if err := writeFull(hdr, saved[i], int64(stage[i])); err != nil {
				return fmt.Errorf("clearing the staging copy of keyslot %d: %w", i, err)
			}
		}
	}
	if err := writeFull(hdr, buf, 2*luks2DefaultMetadataSize); err != nil {
		return fmt.Errorf("moving the key material: %w", err)
	}
	return syncDevice(hdr)
}

// ErrConvertNoRoom: there is no free space to stage the key slots, so the conversion
// cannot be made crash-safe; nothing was written. cryptsetup converts such a device in
// place, with a window in which a crash leaves a device neither format opens.
var ErrConvertNoRoom = fmt.Errorf("%w: no free space to convert crash-safely", ErrConvert)

type span struct{ off, end uint64 }

func (a span) overlaps(b span) bool { return a.off < b.end && b.off < a.end }

func overlapsAny(list []span, s span) bool {
	for _, b := range list {
		if b.overlaps(s) {
			return true
		}
	}
	return false
}

// planLUKS1Staging finds, for every enabled LUKS1 slot, a 4 KiB-aligned area of size
// length in [32 KiB, limit) that overlaps no enabled slot's key material where it is now
// or where it ends (final), nor another copy. A slot whose key material starts below
// 32 KiB (where the LUKS2 headers go) must also be one the LUKS1 header can point at:
// clear of the other seven slots' areas (cryptsetup checks disabled slots too), or
// exactly a disabled slot's area, which then takes the enabled slot's old place. It
// returns the areas and, when a slot sits below 32 KiB, the LUKS1 header that points it
// at its copy.
func planLUKS1Staging(h *Header, final [NumKeyslots]uint64, length, limit uint64) ([NumKeyslots]uint64, *Header, error) {
	var stage [NumKeyslots]uint64
	afLen := h.AFSectors() * SectorSize
	var busy []span
	for i, k := range h.Keyslots {
		if k.Enabled() {
			s := uint64(k.KeyMaterialOffset) * SectorSize
			busy = append(busy, span{s, s + afLen}, span{final[i], final[i] + length})
		}
	}
	var st *Header
	for i, k := range h.Keyslots {
		if !k.Enabled() {
			continue
		}
		s := uint64(k.KeyMaterialOffset) * SectorSize
		low := s < 2*luks2DefaultMetadataSize
		found := false
		for pos := uint64(2 * luks2DefaultMetadataSize); pos+length <= limit; pos += 4096 {
			c := span{pos, pos + length}
			if overlapsAny(busy, c) {
				continue
			}
			if low {
				trial, err := cloneHeader(h, st)
				if err != nil {
					return stage, nil, err
				}
				for j := range trial.Keyslots {
					if j != i && !trial.Keyslots[j].Enabled() && uint64(trial.Keyslots[j].KeyMaterialOffset)*SectorSize == pos {
						trial.Keyslots[j].KeyMaterialOffset = trial.Keyslots[i].KeyMaterialOffset
					}
				}
				trial.Keyslots[i].KeyMaterialOffset = uint32(pos / SectorSize)
				if trial.Validate() != nil {
					continue
				}
				st = trial
			}
			stage[i], found = pos, true
			busy = append(busy, c)
			break
		}
		if !found {
			return stage, nil, fmt.Errorf("%w: keyslot %d needs %d free bytes below %d beside the key material", ErrConvertNoRoom, i, length, limit)
		}
	}
	return stage, st, nil
}

// cloneHeader returns a copy of cur, or of h when cur is nil.
func cloneHeader(h, cur *Header) (*Header, error) {
	if cur != nil {
		h = cur
	}
	bin, err := h.MarshalBinary()
	if err != nil {
		return nil, err
	}
	c := new(Header)
	return c, c.UnmarshalBinary(bin)
}

// writeLUKS2Copies writes m with its sequence ID as it is: the secondary copy first, then
// the primary, each as one write of binary header (with checksum) and JSON area, then a
// sync. The secondary goes first because until the primary's first sector lands the
// device is read as what sector 0 holds (here a LUKS1 header), and once it has landed a
// torn primary falls back to a complete secondary.
func writeLUKS2Copies(w io.WriterAt, m *luks2Metadata) error {
	area, err := m.jsonArea()
	if err != nil {
		return err
	}
	for _, secondary := range []bool{true, false} {
		off := int64(0)
		if secondary {
			off = int64(m.hdrSize)
		}
		bin := m.binary(secondary)
		h := sha256.New()
		h.Write(bin)
		h.Write(area)
		copy(bin[l2OffCsum:], h.Sum(nil))
		if err := writeFull(w, append(bin, area...), off); err != nil {
			return fmt.Errorf("writing LUKS2 header at %d: %w", off, err)
		}
		if err := syncDevice(w); err != nil {
			return fmt.Errorf("syncing LUKS2 header: %w", err)
		}
	}
	return nil
}

// ConvertLUKS2ToLUKS1 is `cryptsetup convert --type luks1` (LUKS2_luks2_to_luks1). It
// refuses, with cryptsetup's messages and before any write, what LUKS1 cannot hold: a
// data sector size other than 512, digests other than one pbkdf2 digest, a wrapped-key
// cipher, more than one segment, any token, a slot above 7, and any slot that is not
// pbkdf2 with the digest's hash, 4000 stripes and the data cipher (argon2 slots among
// them). Otherwise the keyslots area moves from 32 KiB back to 4 KiB, the first 4 KiB are
// zeroed and the LUKS1 header is written: the result of a complete run is byte for byte
// cryptsetup's.
//
// cryptsetup moves the area over itself before the header write; here the order is: (1)
// a copy of every enabled slot goes to space no LUKS2 area and no final LUKS1 area uses,
// sync; (2) a LUKS1 header pointing at the copies is written second sector first (the
// LUKS2 primary's checksum breaks and the identical secondary serves), then first sector,
// each with a sync; (3) the key material in its final place, sync; (4) the final LUKS1
// header, sync; (5) the rest of the first 4 KiB is zeroed, the copies get back what the
// space held and the whole area is written at 4 KiB. Guarantee, for writes atomic per
// 512-byte sector and landing in order: after a crash or an I/O error at any point the
// device opens with every passphrase, as LUKS2 until the first sector of step 2 lands
// and as LUKS1 from then on. After a crash in steps 1–4 copies of the key slots may
// remain in the staging space. When there is no room to stage (the placeholders of the
// disabled LUKS1 slots count, as cryptsetup checks all eight areas) it refuses with
// ErrConvertNoRoom before writing anything.
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
	limit := segOff
	if limit == 0 {
		limit = 2*luks2DefaultMetadataSize + ksSize
	}
	if n, ok := deviceSize(hdr); ok {
		limit = min(limit, uint64(n))
	}
	matLen := h1.AFSectors() * SectorSize
	stage, err := planLUKS2Staging(h1, matLen, afLen, limit)
	if err != nil {
		return err
	}
	staged, err := stage.MarshalBinary()
	if err != nil {
		return err
	}
	material := func(i int) []byte {
		// buf starts at 32 KiB, the LUKS1 offsets at 4 KiB.
		o := uint64(h1.Keyslots[i].KeyMaterialOffset)*SectorSize - 4096
		return buf[o : o+matLen]
	}
	var saved [NumKeyslots][]byte
	for i, k := range h1.Keyslots {
		if k.Enabled() {
			saved[i] = make([]byte, matLen)
			hdr.ReadAt(saved[i], int64(stage.Keyslots[i].KeyMaterialOffset)*SectorSize)
			defer clear(saved[i])
		}
	}
	// 1. Copies of every slot in space the LUKS2 header does not use, sync.
	for i, k := range h1.Keyslots {
		if k.Enabled() {
			if err := writeFull(hdr, material(i), int64(stage.Keyslots[i].KeyMaterialOffset)*SectorSize); err != nil {
				return fmt.Errorf("staging keyslot %d: %w", i, err)
			}
		}
	}
	if err := syncDevice(hdr); err != nil {
		return err
	}
	// 2. The LUKS1 header on the copies: its second sector first (the LUKS2 primary's
	// checksum breaks, the secondary serves), then its first sector, which makes the
	// device LUKS1 in one sector write.
	for _, part := range [][2]int{{SectorSize, len(staged)}, {0, SectorSize}} {
		if err := writeFull(hdr, staged[part[0]:part[1]], int64(part[0])); err != nil {
			return fmt.Errorf("writing the staging LUKS1 header: %w", err)
		}
		if err := syncDevice(hdr); err != nil {
			return err
		}
	}
	// 3. The key material in its final place, sync; 4. the final LUKS1 header, sync.
	for i, k := range h1.Keyslots {
		if k.Enabled() {
			if err := writeFull(hdr, material(i), int64(h1.Keyslots[i].KeyMaterialOffset)*SectorSize); err != nil {
				return fmt.Errorf("moving keyslot %d: %w", i, err)
			}
		}
	}
	if err := syncDevice(hdr); err != nil {
		return err
	}
	if err := writeFull(hdr, bin, 0); err != nil {
		return err
	}
	if err := syncDevice(hdr); err != nil {
		return err
	}
	// 5. Nothing refers to the copies any more: the rest of the first 4 KiB is zeroed, the
	// staging areas get back what they held and the whole keyslots area lands at 4 KiB,
	// as cryptsetup leaves the device.
	if err := writeFull(hdr, make([]byte, 4096-len(bin)), int64(len(bin))); err != nil {
		return err
	}
	for i, k := range h1.Keyslots {
		if k.Enabled() {
			if err := writeFull(hdr, saved[i], int64(stage.Keyslots[i].KeyMaterialOffset)*SectorSize); err != nil {
				return fmt.Errorf("clearing the staging copy of keyslot %d: %w", i, err)
			}
		}
	}
	if err := writeFull(hdr, buf, 4096); err != nil {
		return fmt.Errorf("moving the keyslots area: %w", err)
	}
	return syncDevice(hdr)
}

// planLUKS2Staging returns the LUKS1 header h1 with every enabled slot moved to a copy
// area: 4 KiB aligned, at or above 32 KiB, below limit, clear of every slot's LUKS2 area
// (final LUKS1 offset + 28 KiB, areaLen long) and final LUKS1 area and of the other
// copies, and such that the header is valid as cryptsetup checks LUKS1 (all eight areas
// apart): a copy lands clear of the disabled slots' areas or exactly on one, whose slot
// then takes the enabled slot's final place until the final header is written.
func planLUKS2Staging(h1 *Header, afLen, areaLen, limit uint64) (*Header, error) {
	var busy []span
	for _, k := range h1.Keyslots {
		if k.Enabled() {
			o := uint64(k.KeyMaterialOffset) * SectorSize
			busy = append(busy, span{o, o + afLen}, span{o + luks1Shift, o + luks1Shift + areaLen})
		}
	}
	st, err := cloneHeader(h1, nil)
	if err != nil {
		return nil, err
	}
	for i, k := range h1.Keyslots {
		if !k.Enabled() {
			continue
		}
		found := false
		for pos := uint64(2 * luks2DefaultMetadataSize); pos+afLen <= limit; pos += 4096 {
			c := span{pos, pos + afLen}
			if overlapsAny(busy, c) {
				continue
			}
			trial, err := cloneHeader(st, nil)
			if err != nil {
				return nil, err
			}
			for j := range trial.Keyslots {
				if j != i && !trial.Keyslots[j].Enabled() && uint64(trial.Keyslots[j].KeyMaterialOffset)*SectorSize == pos {
					trial.Keyslots[j].KeyMaterialOffset = trial.Keyslots[i].KeyMaterialOffset
				}
			}
			trial.Keyslots[i].KeyMaterialOffset = uint32(pos / SectorSize)
			// A torn final header write leaves its first sector new and slot 7's offset
			// (in the second sector) as staged: that header must be valid too.
			mixed, err := cloneHeader(h1, nil)
			if err != nil {
				return nil, err
			}
			mixed.Keyslots[7].KeyMaterialOffset = trial.Keyslots[7].KeyMaterialOffset
			if trial.Validate() != nil || mixed.Validate() != nil {
				continue
			}
			st, busy, found = trial, append(busy, c), true
			break
		}
		if !found {
			return nil, fmt.Errorf("%w: keyslot %d needs %d free bytes below %d beside the key material", ErrConvertNoRoom, i, afLen, limit)
		}
	}
	return st, nil
}
