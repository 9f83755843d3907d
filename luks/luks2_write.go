package luks

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cloudluks/cloudluks/luks/internal/jsonc"
)

// The LUKS2 binary header (docs/on-disk-format-luks2.pdf §2.1, lib/luks2/luks2.h
// struct luks2_hdr_disk). Offsets of the fields inside its 4096 bytes:
const (
	l2BinLen       = 4096
	l2OffVersion   = 6
	l2OffHdrSize   = 8
	l2OffSeqid     = 16
	l2OffLabel     = 24
	l2OffCsumAlg   = 72
	l2OffSalt      = 104
	l2OffUUID      = 168
	l2OffSubsystem = 208
	l2OffHdrOffset = 256
	l2OffCsum      = 448
	l2LabelLen     = 48
	l2CsumAlgLen   = 32
	l2SaltLen      = 64
	l2UUIDLen      = 40
)

var (
	luks2MagicPrimary   = []byte("LUKS\xba\xbe")
	luks2MagicSecondary = []byte("SKUL\xba\xbe")
)

// The metadata sizes LUKS2 allows (LUKS2_check_metadata_area_size) and the keyslots-area
// limits (LUKS2_check_keyslots_area_size, LUKS2_DEFAULT_HDR_SIZE).
const (
	luks2DefaultMetadataSize = 16 << 10
	luks2MaxKeyslotsSize     = 128 << 20
	luks2DefaultHdrAreasSize = 16 << 20
	luks2KeyslotsMax         = 32
)

func validLUKS2MetadataSize(n uint64) bool {
	for s := uint64(16 << 10); s <= 4<<20; s <<= 1 {
		if n == s {
			return true
		}
	}
	return false
}

// luks2Metadata is a LUKS2 header as the writer holds it: the binary fields both copies
// share (cryptsetup's struct luks2_hdr) and the JSON tree in cryptsetup's member order.
type luks2Metadata struct {
	hdrSize   uint64
	seqid     uint64
	label     string
	subsystem string
	csumAlg   string
	uuid      string
	salt1     [l2SaltLen]byte // primary copy
	salt2     [l2SaltLen]byte // secondary copy
	json      *jsonc.Value
}

// binary returns the 4096-byte binary header of one copy with its checksum field zeroed
// (hdr_to_disk): strings are cut to their field less one byte and NUL-terminated.
func (m *luks2Metadata) binary(secondary bool) []byte {
	b := make([]byte, l2BinLen)
	salt := m.salt1[:]
	off := uint64(0)
	copy(b, luks2MagicPrimary)
	if secondary {
		copy(b, luks2MagicSecondary)
		salt, off = m.salt2[:], m.hdrSize
	}
	binary.BigEndian.PutUint16(b[l2OffVersion:], 2)
	binary.BigEndian.PutUint64(b[l2OffHdrSize:], m.hdrSize)
	binary.BigEndian.PutUint64(b[l2OffSeqid:], m.seqid)
	putCString(b[l2OffLabel:l2OffLabel+l2LabelLen], m.label)
	putCString(b[l2OffCsumAlg:l2OffCsumAlg+l2CsumAlgLen], m.csumAlg)
	copy(b[l2OffSalt:l2OffSalt+l2SaltLen], salt)
	putCString(b[l2OffUUID:l2OffUUID+l2UUIDLen], m.uuid)
	putCString(b[l2OffSubsystem:l2OffSubsystem+l2LabelLen], m.subsystem)
	binary.BigEndian.PutUint64(b[l2OffHdrOffset:], off)
	return b
}

func putCString(dst []byte, s string) {
	if i := bytes.IndexByte([]byte(s), 0); i >= 0 {
		s = s[:i]
	}
	n := copy(dst[:len(dst)-1], s)
	clear(dst[n:])
}

// jsonArea returns the JSON text NUL-padded to the JSON area (hdr_size - 4096), refusing
// text that leaves no room for the terminating NUL, as LUKS2_disk_hdr_write does.
func (m *luks2Metadata) jsonArea() ([]byte, error) {
	areaLen := int(m.hdrSize) - l2BinLen
	text := jsonc.Marshal(m.json)
	if len(text) > areaLen-1 {
		return nil, fmt.Errorf("%w: LUKS2 JSON metadata is %d bytes, the area holds %d", ErrInvalidParameter, len(text), areaLen-1)
	}
	area := make([]byte, areaLen)
	copy(area, text)
	return area, nil
}

// writeLUKS2 writes both header copies as LUKS2_disk_hdr_write does in cryptsetup 2.6.1:
// the sequence id goes up by one, then the primary copy and after it the secondary one,
// each as binary header without checksum, JSON area, binary header with checksum, sync.
// A crash at any point leaves at least one copy whose checksum matches: the one not being
// written keeps its old (valid) contents.
func writeLUKS2(w io.WriterAt, m *luks2Metadata) error {
	if m.csumAlg != "sha256" {
		return fmt.Errorf("%w: LUKS2 checksum %q (only sha256 is written)", ErrInvalidParameter, m.csumAlg)
	}
	area, err := m.jsonArea()
	if err != nil {
		return err
	}
	m.seqid++
	for _, secondary := range []bool{false, true} {
		off := int64(0)
		if secondary {
			off = int64(m.hdrSize)
		}
		bin := m.binary(secondary)
		if err := writeFull(w, bin, off); err != nil {
			return fmt.Errorf("writing LUKS2 header at %d: %w", off, err)
		}
		if err := writeFull(w, area, off+l2BinLen); err != nil {
			return fmt.Errorf("writing LUKS2 JSON area at %d: %w", off+l2BinLen, err)
		}
		h := sha256.New()
		h.Write(bin)
		h.Write(area)
		copy(bin[l2OffCsum:], h.Sum(nil))
		if err := writeFull(w, bin, off); err != nil {
			return fmt.Errorf("writing LUKS2 header at %d: %w", off, err)
		}
		if err := syncDevice(w); err != nil {
			return fmt.Errorf("syncing LUKS2 header: %w", err)
		}
	}
	return nil
}
