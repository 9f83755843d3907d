package luks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cloudluks/cloudluks/luks/sector"
)

// On-disk constants of LUKS2 (cryptsetup lib/luks2/luks2.h, docs/on-disk-format-luks2.pdf).
const (
	// BinaryHeaderSize is the size of one LUKS2 binary header (struct luks2_hdr_disk); its
	// JSON area follows it directly.
	BinaryHeaderSize = 4096
	// MinMetadataSize and MaxMetadataSize bound one metadata copy (binary header plus JSON
	// area): 16 KiB … 4 MiB, in powers of two (LUKS2_HDR2_OFFSETS).
	MinMetadataSize = 0x4000
	MaxMetadataSize = 0x400000
	// MaxKeyslotsSize is LUKS2_MAX_KEYSLOTS_SIZE, the largest keyslots area cryptsetup accepts.
	MaxKeyslotsSize = 0x8000000

	l2offLabel       = 24
	l2offChecksumAlg = 72
	l2offSalt        = 104
	l2offUUID        = 168
	l2offSubsystem   = 208
	l2offHdrOffset   = 256
	l2offCsum        = 448
	l2labelLen       = 48
	l2csumAlgLen     = 32
	l2saltLen        = 64
	l2uuidLen        = 40
	l2csumLen        = 64
)

var magic2 = []byte{'S', 'K', 'U', 'L', 0xBA, 0xBE}

// secondaryOffsets are the places cryptsetup looks for the secondary header when the primary
// cannot tell its size (LUKS2_HDR2_OFFSETS).
var secondaryOffsets = []uint64{0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000}

// BinaryHeader2 is one LUKS2 binary header (struct luks2_hdr_disk) as read from disk, strings
// cut at the first NUL with the last byte of each field forced to NUL as cryptsetup does.
type BinaryHeader2 struct {
	Secondary    bool // magic "SKUL\xba\xbe"
	Version      uint16
	HeaderSize   uint64 // binary header + JSON area of this copy
	SeqID        uint64
	Label        string
	ChecksumAlg  string
	Salt         [64]byte
	UUID         string
	Subsystem    string
	HeaderOffset uint64
	Checksum     [64]byte
}

// parseBinaryHeader2 decodes and sanity-checks a binary header found at offset, in
// cryptsetup's order (hdr_disk_sanity_check_pre): magic, version, recorded offset, size,
// and for the secondary copy an offset equal to the size.
func parseBinaryHeader2(b []byte, offset uint64, secondary bool) (*BinaryHeader2, error) {
	want := magic
	if secondary {
		want = magic2
	}
	if len(b) < BinaryHeaderSize || !bytes.Equal(b[:6], want) {
		return nil, fmt.Errorf("%w: no LUKS2 magic at offset %d", ErrNotLUKS, offset)
	}
	h := &BinaryHeader2{
		Secondary:    secondary,
		Version:      binary.BigEndian.Uint16(b[6:]),
		HeaderSize:   binary.BigEndian.Uint64(b[8:]),
		SeqID:        binary.BigEndian.Uint64(b[16:]),
		Label:        cString(b[l2offLabel : l2offLabel+l2labelLen-1]),
		ChecksumAlg:  cString(b[l2offChecksumAlg : l2offChecksumAlg+l2csumAlgLen-1]),
		UUID:         cString(b[l2offUUID : l2offUUID+l2uuidLen-1]),
		Subsystem:    cString(b[l2offSubsystem : l2offSubsystem+l2labelLen-1]),
		HeaderOffset: binary.BigEndian.Uint64(b[l2offHdrOffset:]),
	}
	copy(h.Salt[:], b[l2offSalt:])
	copy(h.Checksum[:], b[l2offCsum:])
	if h.Version != 2 {
		return nil, fmt.Errorf("%w %d at offset %d", ErrUnsupportedVersion, h.Version, offset)
	}
	if h.HeaderOffset != offset {
		return nil, fmt.Errorf("%w: header at offset %d records offset %d", ErrCorruptHeader, offset, h.HeaderOffset)
	}
	if h.HeaderSize < MinMetadataSize || h.HeaderSize > MaxMetadataSize {
		return nil, fmt.Errorf("%w: header size %d outside %d…%d", ErrCorruptHeader, h.HeaderSize, MinMetadataSize, MaxMetadataSize)
	}
	if secondary && h.HeaderSize != offset {
		return nil, fmt.Errorf("%w: secondary header at offset %d has size %d", ErrCorruptHeader, offset, h.HeaderSize)
	}
	return h, nil
}

// ErrChecksum is wrapped by the error of a header copy whose checksum does not match.
var ErrChecksum = errors.New("LUKS2 header checksum mismatch")

// checkChecksum2 computes the header checksum the way hdr_checksum_calculate does: the
// binary header with the csum field zeroed, then the whole JSON area, with the hash the
// header names (any hash cryptsetup's backend has whose digest fits the 64-byte field).
func checkChecksum2(bin, area []byte, alg string) error {
	nh, err := sector.NewHashLUKS2(alg)
	if err != nil {
		return fmt.Errorf("%w: checksum algorithm %q: %w", ErrCorruptHeader, alg, err)
	}
	h := nh()
	if h.Size() > l2csumLen {
		return fmt.Errorf("%w: checksum algorithm %q too long", ErrCorruptHeader, alg)
	}
	var tmp [BinaryHeaderSize]byte
	copy(tmp[:], bin)
	clear(tmp[l2offCsum : l2offCsum+l2csumLen])
	h.Write(tmp[:])
	h.Write(area)
	sum := h.Sum(nil)
	if !bytes.Equal(sum, bin[l2offCsum:l2offCsum+len(sum)]) {
		return fmt.Errorf("%w (%s)", ErrChecksum, alg)
	}
	return nil
}

// copyState is one header copy as the loader sees it.
type copyState struct {
	bin  *BinaryHeader2
	meta *json2 // nil unless the JSON parsed and validated
	text []byte // JSON text as read (up to the first NUL)
	err  error  // why the copy is unusable
	read bool   // binary header and checksum passed (cryptsetup hdr_read_disk returned 0)
}

// readCopy2 reads and checks one header copy at offset (hdr_read_disk followed by
// parse_and_validate_json).
func readCopy2(r io.ReaderAt, offset uint64, secondary bool) copyState {
	bin := make([]byte, BinaryHeaderSize)
	if n, err := r.ReadAt(bin, int64(offset)); n < BinaryHeaderSize {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return copyState{err: fmt.Errorf("%w: reading header at %d: %w", ErrNotLUKS, offset, err)}
	}
	bh, err := parseBinaryHeader2(bin, offset, secondary)
	if err != nil {
		return copyState{err: err}
	}
	// The size is bounded (≤ 4 MiB) by parseBinaryHeader2 before this allocation.
	area := make([]byte, bh.HeaderSize-BinaryHeaderSize)
	if n, err := r.ReadAt(area, int64(offset)+BinaryHeaderSize); n < len(area) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return copyState{bin: bh, err: fmt.Errorf("%w: reading JSON area at %d: %w", ErrCorruptHeader, offset+BinaryHeaderSize, err)}
	}
	if err := checkChecksum2(bin, area, bh.ChecksumAlg); err != nil {
		return copyState{bin: bh, err: err}
	}
	st := copyState{bin: bh, read: true}
	st.meta, st.text, st.err = parseAndValidateJSON2(area)
	return st
}

// Header2 is a loaded LUKS2 header: the binary header of the copy in use, its JSON metadata
// decoded into typed fields, and what the loader found wrong with the other copy.
type Header2 struct {
	// The binary header in use (the valid copy with the higher sequence ID; the primary when
	// both are valid and equal). Primary and Secondary are both copies as read, nil when a
	// copy could not be decoded at all.
	BinaryHeader2
	Primary, Secondary *BinaryHeader2
	// PrimaryErr and SecondaryErr say why a copy is not the one in use: damaged (checksum,
	// magic, JSON, validation; these wrap ErrCorruptHeader, ErrChecksum, ErrNotLUKS, ...) or
	// older (ErrStaleHeader). cryptsetup rewrites such a copy from the good one on its next
	// load with write access; this reader only reports it.
	PrimaryErr, SecondaryErr error

	// JSON is the metadata text of the copy in use, as stored (without the NUL padding).
	JSON []byte

	Keyslots map[int]*Keyslot2
	Tokens   map[int]*Token2
	Segments map[int]*Segment2
	Digests  map[int]*Digest2
	Config   Config2

	tree map[string]any // the validated JSON, for Dump's walk by id
}

// ErrStaleHeader is the PrimaryErr/SecondaryErr of a valid copy whose sequence ID is lower
// than the other copy's.
var ErrStaleHeader = errors.New("LUKS2 header copy is older than the other copy")

// MetadataSize is the size of one metadata copy (binary header plus JSON area).
func (h *Header2) MetadataSize() uint64 { return h.HeaderSize }

// AreasSize is the size of both metadata copies and the keyslots area: where the data may
// start at the earliest (LUKS2_hdr_and_areas_size).
func (h *Header2) AreasSize() uint64 {
	return 2*(h.Config.JSONSize+BinaryHeaderSize) + h.Config.KeyslotsSize
}

// ReadHeader2 loads a LUKS2 header the way cryptsetup 2.6 does (LUKS2_disk_hdr_read): the
// primary copy at offset 0, the secondary at the primary's size (or, when the primary is
// unusable, at every offset cryptsetup tries), each checked for magic, version, offset,
// size, checksum, JSON syntax and the full JSON validation. The valid copy with the higher
// sequence ID wins; a damaged or older copy is reported in PrimaryErr/SecondaryErr. Both
// unusable: the primary's error (or the secondary's when the primary has no LUKS2 magic),
// wrapping ErrNotLUKS or ErrCorruptHeader. The device must be large enough for both copies
// and the keyslots area when its size can be found. A primary with LUKS1's version gives
// ErrUnsupportedVersion, and so does LUKS magic with a version above 2, whatever
// the secondary holds (cryptsetup: "Unsupported LUKS version 3.").
func ReadHeader2(r io.ReaderAt) (*Header2, error) {
	// cryptsetup decides the version from the primary's first eight bytes before either
	// loader runs: LUKS magic with another version is refused outright, even when a valid
	// secondary LUKS2 header exists ("Unsupported LUKS version 3.").
	var b [8]byte
	if n, _ := r.ReadAt(b[:], 0); n == len(b) && bytes.Equal(b[:6], magic) {
		if v := binary.BigEndian.Uint16(b[6:]); v > 2 { // 0 falls through to the secondary, as in cryptsetup
			return nil, fmt.Errorf("%w %d", ErrUnsupportedVersion, v)
		}
	}
	c1 := readCopy2(r, 0, false)
	var c2 copyState
	if c1.read {
		c2 = readCopy2(r, c1.bin.HeaderSize, true)
	} else {
		// The primary's size cannot be trusted: try every offset, as cryptsetup does, until
		// a secondary header passes its checksum.
		c2 = copyState{err: fmt.Errorf("%w: no secondary LUKS2 header found", ErrNotLUKS)}
		for _, off := range secondaryOffsets {
			if c := readCopy2(r, off, true); c.read {
				c2 = c
				break
			}
		}
	}
	ok1, ok2 := c1.meta != nil, c2.meta != nil
	if ok1 && ok2 {
		switch {
		case c1.bin.SeqID > c2.bin.SeqID:
			ok2 = false
			c2.err = fmt.Errorf("%w: sequence ID %d, primary %d", ErrStaleHeader, c2.bin.SeqID, c1.bin.SeqID)
		case c1.bin.SeqID < c2.bin.SeqID:
			ok1 = false
			c1.err = fmt.Errorf("%w: sequence ID %d, secondary %d", ErrStaleHeader, c1.bin.SeqID, c2.bin.SeqID)
		}
	}
	var use copyState
	switch {
	case ok1:
		use = c1
	case ok2:
		use = c2
	default:
		if !c1.read && c2.read {
			return nil, fmt.Errorf("secondary header: %w", c2.err)
		}
		if errors.Is(c1.err, ErrUnsupportedVersion) {
			return nil, c1.err
		}
		return nil, fmt.Errorf("primary header: %w", c1.err)
	}
	h := &Header2{BinaryHeader2: *use.bin, Primary: c1.bin, Secondary: c2.bin, JSON: use.text}
	if !ok1 {
		h.PrimaryErr = c1.err
	}
	if !ok2 {
		h.SecondaryErr = c2.err
	}
	use.meta.fill(h)
	h.tree = use.meta.root
	if size, known := deviceSize(r); known && (size < 0 || uint64(size) < h.AreasSize()) {
		return nil, fmt.Errorf("%w: LUKS2 metadata and keyslots need %d bytes, device has %d", ErrDeviceTooSmall, h.AreasSize(), size)
	}
	return h, nil
}

// Version returns 1 or 2 for a device with LUKS magic, 0 otherwise: what the first eight
// bytes say, before anything is validated (cryptsetup's LUKS2_hdr_version_unlocked).
func Version(r io.ReaderAt) int {
	var b [8]byte
	if n, _ := r.ReadAt(b[:], 0); n < len(b) || !bytes.Equal(b[:6], magic) {
		return 0
	}
	switch v := binary.BigEndian.Uint16(b[6:]); v {
	case 1, 2:
		return int(v)
	}
	return 0
}
