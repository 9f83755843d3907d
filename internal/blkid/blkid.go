// Package blkid recognises what a block device or image already holds, under the names
// libblkid gives it, so that a program about to overwrite the device can warn the way
// cryptsetup does ("WARNING: Device g.img already contains a 'ext4' superblock signature.").
//
// # What it knows
//
// The signatures that matter before a format, checked the way libblkid 2.38 checks them:
//
//	crypto_LUKS                 LUKS1/LUKS2 magic at 0, or a LUKS2 secondary header
//	ext2, ext3, ext4, ext4dev,  the ext superblock at 1024, told apart by its feature flags
//	jbd                         (libblkid's superblocks/ext.c rules)
//	xfs                         the XFS superblock at 0
//	btrfs                       the btrfs superblock at 64 KiB
//	swap                        SWAPSPACE2 / SWAP-SPACE at the end of a 4..64 KiB page
//	dos                         an MBR partition table (not a GPT protective MBR)
//	gpt                         a protective MBR and a GPT header (primary or backup)
//
// [Probe] reads only these, in pure Go. [ProbeFile] adds the blkid program, when installed,
// for the many types this package does not know (it is asked only when Probe finds nothing).
//
// # Magics
//
// Each [Signature] lists its Magics: the bytes wipefs(8) and libblkid's wiping erase, which
// is what cryptsetup luksFormat lists with -v ("Existing 'gpt' partition signature on device
// g.img will be wiped.") and erases. A GPT has three (the primary header, the backup header
// in the last sector, the protective MBR's 0x55AA as 'PMBR'); a LUKS2 header two.
package blkid

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"os/exec"
	"strings"
)

// Usage is which of libblkid's probing chains found a signature. cryptsetup words its
// warning after it: "superblock signature" or "partition signature".
type Usage int

const (
	Superblock     Usage = iota // libblkid's superblocks chain: filesystems, swap, LUKS, RAID …
	PartitionTable              // libblkid's partitions chain: dos, gpt …
)

// String is the word cryptsetup puts before "signature".
func (u Usage) String() string {
	if u == PartitionTable {
		return "partition"
	}
	return "superblock"
}

// Signature is one thing found on a device.
type Signature struct {
	Type   string // as blkid prints TYPE or PTTYPE: "ext4", "crypto_LUKS", "gpt" …
	Usage  Usage
	Magics []Magic // where it is written; empty when only the blkid program saw it
}

// Magic is one run of identifying bytes, as wipefs lists them.
type Magic struct {
	Type   string // usually the signature's type; "PMBR" for a GPT's protective MBR
	Offset int64
	Bytes  []byte
}

// HeadSize is how much of the start of a device Probe needs: the btrfs superblock at
// 64 KiB and swap signatures for pages up to 64 KiB.
const HeadSize = 0x10000 + 0x1000

// SectorSize is the logical sector size assumed for partition tables (image files and EBS
// volumes have 512-byte sectors).
const SectorSize = 512

var (
	luksMagic  = []byte("LUKS\xba\xbe")
	luks2Magic = []byte("SKUL\xba\xbe") // a LUKS2 secondary header
	// libblkid looks for the LUKS2 secondary header at each possible size of the primary
	// header area (superblocks/luks.c, secondary_offsets).
	luks2SecondaryOffsets = []int64{0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000}
)

// Probe reports the signatures on the device r of size bytes (size < 0: unknown; the GPT
// backup header in the last sector is then not looked for). Superblocks come first, then
// partition tables, in libblkid's chain order. A device of zeros or random data gives none.
func Probe(r io.ReaderAt, size int64) ([]Signature, error) {
	head := make([]byte, HeadSize)
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	head = head[:n]
	var tail []byte
	if size >= 2*SectorSize {
		tail = make([]byte, SectorSize)
		if _, err := r.ReadAt(tail, size-SectorSize); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
	}
	var sigs []Signature
	if s, ok := probeLUKS(r, head); ok {
		sigs = append(sigs, s)
	} else if s, ok := probeSuperblock(head); ok {
		sigs = append(sigs, s)
	}
	if s, ok := probePartitions(head, tail, size); ok {
		sigs = append(sigs, s)
	}
	return sigs, nil
}

// ProbeBytes is Probe over the start of a device held in memory (shorter than HeadSize
// for a small device; what lies beyond its end is not looked for).
func ProbeBytes(head []byte) []Signature {
	sigs, _ := Probe(bytes.NewReader(head), int64(len(head)))
	return sigs
}

// ProbeFile probes the file or block device at path. When Probe finds nothing and the blkid
// program is installed, blkid is asked too, for the types this package does not know (its
// signatures then have no Magics).
func ProbeFile(ctx context.Context, path string) ([]Signature, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		size = -1
	}
	sigs, err := Probe(f, size)
	if err != nil || len(sigs) > 0 {
		return sigs, err
	}
	return probeProgram(ctx, path), nil
}

// probeProgram runs "blkid -p -o export", which answers nothing (exit 2) for an unused device.
func probeProgram(ctx context.Context, path string) []Signature {
	prog, err := exec.LookPath("blkid")
	if err != nil {
		return nil
	}
	cmd := exec.CommandContext(ctx, prog, "-p", "-o", "export", "--", path)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		return nil
	}
	var sigs []Signature
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "TYPE":
			sigs = append([]Signature{{Type: v, Usage: Superblock}}, sigs...)
		case "PTTYPE":
			sigs = append(sigs, Signature{Type: v, Usage: PartitionTable})
		}
	}
	return sigs
}

func at(buf []byte, off int, sig []byte) bool {
	return off >= 0 && off+len(sig) <= len(buf) && bytes.Equal(buf[off:off+len(sig)], sig)
}

func magic(typ string, off int64, b []byte) Magic {
	return Magic{Type: typ, Offset: off, Bytes: bytes.Clone(b)}
}

// probeLUKS follows libblkid's luks_valid: the magic at 0 (a version 2 header must also
// name 0 as its hdr_offset), or else a LUKS2 secondary header whose hdr_offset field (at byte
// 0x100) is its own offset. The version is not otherwise checked.
func probeLUKS(r io.ReaderAt, head []byte) (Signature, bool) {
	s := Signature{Type: "crypto_LUKS", Usage: Superblock}
	v2 := len(head) >= 8 && binary.BigEndian.Uint16(head[6:]) == 2
	if at(head, 0, luksMagic) && (!v2 || len(head) >= 0x108 && binary.BigEndian.Uint64(head[0x100:]) == 0) {
		s.Magics = append(s.Magics, magic(s.Type, 0, luksMagic))
		if !v2 {
			return s, true
		}
	}
	var b [0x108]byte
	for _, off := range luks2SecondaryOffsets {
		if _, err := r.ReadAt(b[:], off); err != nil {
			break
		}
		if bytes.Equal(b[:6], luks2Magic) && binary.BigEndian.Uint16(b[6:]) == 2 && int64(binary.BigEndian.Uint64(b[0x100:])) == off {
			s.Magics = append(s.Magics, magic(s.Type, off, luks2Magic))
			break
		}
	}
	return s, len(s.Magics) > 0
}

// ext superblock feature flags (libblkid superblocks/ext.c).
const (
	extCompatHasJournal   = 0x0004
	extIncompatJournalDev = 0x0008
	ext2IncompatSupp      = 0x0002 | 0x0010          // filetype, meta_bg
	ext3IncompatSupp      = 0x0002 | 0x0004 | 0x0010 // filetype, recover, meta_bg
	ext23RoCompatSupp     = 0x0001 | 0x0002 | 0x0004 // sparse_super, large_file, btree_dir
	extFlagsTestFilesys   = 0x0004
)

func probeSuperblock(head []byte) (Signature, bool) {
	sb := func(typ string, off int64, b []byte) (Signature, bool) {
		return Signature{Type: typ, Usage: Superblock, Magics: []Magic{magic(typ, off, b)}}, true
	}
	if at(head, 0, []byte("XFSB")) && xfsPlausible(head) {
		return sb("xfs", 0, []byte("XFSB"))
	}
	if t := extType(head); t != "" {
		return sb(t, 0x438, []byte{0x53, 0xef})
	}
	if at(head, 0x10040, []byte("_BHRfS_M")) {
		return sb("btrfs", 0x10040, []byte("_BHRfS_M"))
	}
	for _, page := range []int{0x1000, 0x2000, 0x4000, 0x8000, 0x10000} {
		for _, m := range [][]byte{[]byte("SWAPSPACE2"), []byte("SWAP-SPACE")} {
			if at(head, page-10, m) {
				return sb("swap", int64(page-10), m)
			}
		}
	}
	return Signature{}, false
}

// extType names an ext superblock as libblkid's ext2/ext3/ext4/ext4dev/jbd probers do, or
// "" when there is none. The 2-byte magic alone matches random data once in 65536, so the
// block size and revision must be plausible too (mke2fs never writes anything else).
func extType(head []byte) string {
	if len(head) < 1024+0x164 || !at(head, 1080, []byte{0x53, 0xef}) {
		return ""
	}
	sb := head[1024:]
	le := binary.LittleEndian
	if le.Uint32(sb[24:]) > 6 || le.Uint32(sb[76:]) > 1 {
		return ""
	}
	compat, incompat, roCompat := le.Uint32(sb[0x5c:]), le.Uint32(sb[0x60:]), le.Uint32(sb[0x64:])
	switch {
	case incompat&extIncompatJournalDev != 0:
		return "jbd"
	case roCompat&^ext23RoCompatSupp != 0 || incompat&^ext3IncompatSupp != 0:
		if le.Uint32(sb[0x160:])&extFlagsTestFilesys != 0 {
			return "ext4dev"
		}
		return "ext4"
	case compat&extCompatHasJournal != 0:
		return "ext3"
	case incompat&^ext2IncompatSupp != 0:
		// Needs journal recovery but has no journal: no prober of libblkid claims it.
		return ""
	}
	return "ext2"
}

// xfsPlausible checks the geometry libblkid's xfs_verify_sb checks first: a power-of-two
// block size of 512..64 KiB and sector size of 512..32 KiB.
func xfsPlausible(head []byte) bool {
	if len(head) < 104 {
		return false
	}
	bs := binary.BigEndian.Uint32(head[4:])
	ss := uint32(binary.BigEndian.Uint16(head[102:]))
	pow2 := func(v, lo, hi uint32) bool { return v >= lo && v <= hi && bits.OnesCount32(v) == 1 }
	return pow2(bs, 512, 65536) && pow2(ss, 512, 32768)
}

// probePartitions: a GPT needs a protective MBR (a partition of type 0xEE) and a header at
// LBA 1 or in the last sector; an MBR without 0xEE entries is "dos" when its boot flags
// are 0x00 or 0x80 (random data with 0x55AA fails this almost always).
func probePartitions(head, tail []byte, size int64) (Signature, bool) {
	if !at(head, 510, []byte{0x55, 0xaa}) {
		return Signature{}, false
	}
	protective := false
	for i := 0; i < 4; i++ {
		e := head[446+16*i:]
		if e[0] != 0 && e[0] != 0x80 {
			return Signature{}, false
		}
		protective = protective || e[4] == 0xee
	}
	efi := []byte("EFI PART")
	if !protective {
		return Signature{Type: "dos", Usage: PartitionTable, Magics: []Magic{magic("dos", 510, []byte{0x55, 0xaa})}}, true
	}
	s := Signature{Type: "gpt", Usage: PartitionTable}
	if at(head, SectorSize, efi) {
		s.Magics = append(s.Magics, magic("gpt", SectorSize, efi))
	}
	if at(tail, 0, efi) {
		s.Magics = append(s.Magics, magic("gpt", size-SectorSize, efi))
	}
	if len(s.Magics) == 0 {
		return Signature{}, false
	}
	s.Magics = append(s.Magics, magic("PMBR", 510, []byte{0x55, 0xaa}))
	return s, true
}

// Wipe erases the magics of sigs that lie at or after from and still hold their bytes,
// as wipefs does (only the identifying bytes, not the whole structure). It returns the
// magics it erased. Callers pass the end of what they have just written over, so that
// only leftovers beyond it (a GPT's backup header, a LUKS2 secondary header) are touched.
func Wipe(rw interface {
	io.ReaderAt
	io.WriterAt
}, sigs []Signature, from int64) ([]Magic, error) {
	var done []Magic
	for _, s := range sigs {
		for _, m := range s.Magics {
			if m.Offset < from {
				continue
			}
			cur := make([]byte, len(m.Bytes))
			if _, err := rw.ReadAt(cur, m.Offset); err != nil || !bytes.Equal(cur, m.Bytes) {
				continue
			}
			if _, err := rw.WriteAt(make([]byte, len(m.Bytes)), m.Offset); err != nil {
				return done, fmt.Errorf("wiping the %s signature at offset %#x: %w", m.Type, m.Offset, err)
			}
			done = append(done, m)
		}
	}
	return done, nil
}
