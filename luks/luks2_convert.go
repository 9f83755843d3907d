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
