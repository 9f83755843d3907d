package luks

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

const backupPageSize = 4096

// backupSize is the byte length cryptsetup stores: the metadata area (header and all key
// material) and the file length, rounded up to the page size.
func backupSize(h *Header) (data, file int64) {
	data = int64(h.MetadataSectors()) * SectorSize
	return data, (data + backupPageSize - 1) / backupPageSize * backupPageSize
}

// BackupHeader writes the header and key-material area of hdr to a new file at path in
// cryptsetup's luksHeaderBackup format, so either tool restores the other's backups: the
// first (max key-material offset + key-material size) sectors, zero-filled to a multiple of
// 4096 bytes, with the unused bytes between the header and sector 8 zeroed. The file is
// created exclusively (an existing file is an error) with mode 0400.
func BackupHeader(hdr io.ReaderAt, path string) error {
	h, err := ReadHeader(hdr)
	if err != nil {
		return err
	}
	dataLen, fileLen := backupSize(h)
	if dataLen < alignKeyslots {
		return fmt.Errorf("%w: metadata area of %d bytes is too small to back up", ErrCorruptHeader, dataLen)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o400)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: requested header backup file %s already exists", ErrInvalidParameter, path)
		}
		return fmt.Errorf("cannot create header backup file: %w", err)
	}
	werr := copyMetadata(f, hdr, h, dataLen, fileLen)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return fmt.Errorf("cannot write header backup file %s: %w", path, werr)
	}
	return nil
}

// copyMetadata streams the first dataLen bytes of hdr to w in bounded chunks, zeroing the
// unused bytes between the header and sector 8 when slot 0 starts there (as cryptsetup
// does), then zero-pads to fileLen. Streaming keeps memory bounded: a hostile header may
// claim a metadata area of up to 2 TiB, which a single buffer could not hold.
func copyMetadata(w io.Writer, hdr io.ReaderAt, h *Header, dataLen, fileLen int64) error {
	buf := make([]byte, min(dataLen, volumeChunk))
	defer clear(buf)
	for off := int64(0); off < dataLen; {
		n := int(min(int64(len(buf)), dataLen-off))
		if m, err := hdr.ReadAt(buf[:n], off); m < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading LUKS header area: %w", err)
		}
		if off == 0 && uint64(h.Keyslots[0].KeyMaterialOffset)*SectorSize == alignKeyslots {
			clear(buf[HeaderSize:alignKeyslots])
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		off += int64(n)
	}
	if pad := fileLen - dataLen; pad > 0 {
		if _, err := w.Write(make([]byte, pad)); err != nil {
			return err
		}
	}
	return nil
}

// RestoreHeader writes a header backup (made by BackupHeader or cryptsetup
// luksHeaderBackup) back to hdr. The backup must hold a valid LUKS1 header and its full
// metadata area. If hdr already carries a LUKS1 header, its payload offset and key size
// must equal the backup's (cryptsetup: "Data offset or key size differs on device and
// backup, restore failed."); nothing is written otherwise.
//
// What a crash or a failed write part way guarantees: at every point the device holds a
// valid header that opens with every passphrase of the old header, or one that opens with
// the passphrases of the backup's slots that could be staged — all of them when the
// device has a free key-slot place for each backup slot whose own place the old header
// uses (with cryptsetup's layout: when old and backup slots together fit in the eight
// places), at least one always. Writing the backup's key material straight over the old
// one (what cryptsetup does) would break that: the old header would point at the backup's
// material. So the restore goes through a staging header. (1) Each backup slot is written
// where the old header has no enabled key material: in its own place if that is free,
// otherwise in the place of a slot index that neither header uses (cryptsetup refuses
// overlapping slot places, so a moved slot takes that index in the staging header). (2)
// The staging header — the backup's header with only the staged slots enabled, at their
// staged places — replaces the old one. (3) The rest of the backup's area is written, (4)
// the backup's header, (5) the backup's bytes at the borrowed places. Until (2) every old
// passphrase opens; from (2) on, the staged backup passphrases do; from (4) on, all of
// the backup's. When no place is free at all, the old slots that overlap the first backup
// slot are disabled first, so the old header's other passphrases still open it until (2)
// and that one backup passphrase after it. Only a 512-byte sector is assumed to be
// written atomically (as cryptsetup assumes); the header is two sectors (slot 6 straddles
// them, slot 7 is in the second), so each header change writes the sectors that differ
// one at a time, synced, in an order where the header between them still opens with the
// slots of the old one or of the new one (see writeHeaderSectors). The guarantee needs
// hdr to have a Sync method that makes earlier writes durable (an *os.File does); without
// one, the order of writes reaching the disk is the device's. If no order keeps a passphrase working (the backup's
// slots overlap every old slot and no place is free — impossible with cryptsetup's
// layout, where equal payload offsets and key sizes give both headers the same eight slot
// places), nothing is written and the error says so.
//
// A device with a LUKS2 header is restored as cryptsetup restores it (luksHeaderRestore
// only asks to confirm: "does not contain LUKS header"), with the same guarantee: the
// LUKS2 metadata copies and key-slot areas count as in use, so the backup's slots are
// staged beside them and the LUKS2 header opens until the LUKS1 staging header replaces
// it (its primary copy's first sectors); a backup whose slots all overlap those areas is
// refused with ErrNoFreeKeyslot.
func RestoreHeader(hdr ReadWriterAt, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: cannot open header backup file: %w", ErrInvalidParameter, err)
	}
	defer f.Close()
	hb := make([]byte, HeaderSize)
	if _, err := io.ReadFull(f, hb); err != nil {
		return fmt.Errorf("%w: backup file does not contain valid LUKS header: %w", ErrNotLUKS, err)
	}
	var bh Header
	if err := bh.UnmarshalBinary(hb); err != nil {
		return fmt.Errorf("backup file does not contain valid LUKS header: %w", err)
	}
	if err := bh.Validate(); err != nil {
		return fmt.Errorf("backup file does not contain valid LUKS header: %w", err)
	}
	dataLen, _ := backupSize(&bh)
	if dataLen < alignKeyslots {
		return fmt.Errorf("%w: backup file does not contain valid LUKS header", ErrCorruptHeader)
	}
	// Check the claimed metadata area against the file before reading it: a hostile header
	// in a 4 KiB file may claim almost 2 TiB.
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: cannot read header backup file %s: %w", ErrInvalidParameter, path, err)
	}
	if fi.Size() < dataLen {
		return fmt.Errorf("%w: backup file %s has %d bytes, its header needs %d", ErrInvalidParameter, path, fi.Size(), dataLen)
	}
	curBytes := make([]byte, HeaderSize)
	if _, err := io.ReadFull(io.NewSectionReader(hdr, 0, HeaderSize), curBytes); err != nil {
		clear(curBytes) // a device shorter than a header has nothing to keep
	}
	var keep []byteRange // device areas in use beyond cur's slots
	cur, err := ReadHeader(hdr)
	if err != nil {
		// Only a device that reads and holds no LUKS1 header has nothing to keep: a read
		// failure would skip the checks below.
		if perr := probeDevice(hdr, dataLen); perr != nil {
			return perr
		}
		cur = nil
		// A LUKS2 header (cryptsetup restores a LUKS1 backup over it, as over any device
		// without a LUKS1 header): its metadata copies and key slots stay untouched until
		// the LUKS1 staging header replaces it.
		if h2, err := ReadHeader2(hdr); err == nil {
			keep = append(keep, byteRange{0, int64(2 * h2.HeaderSize)})
			for _, ks := range h2.Keyslots {
				keep = append(keep, byteRange{int64(ks.Area.Offset), int64(ks.Area.Offset + ks.Area.Size)})
			}
		}
	} else if cur.PayloadOffset != bh.PayloadOffset || cur.KeyBytes != bh.KeyBytes {
		return fmt.Errorf("%w: data offset or key size differs on device and backup, restore failed", ErrInvalidParameter)
	}
	plan, err := planRestore(cur, &bh, keep)
	if err != nil {
		return err
	}

	buf := make([]byte, min(dataLen, volumeChunk))
	defer clear(buf)
	// copyRange copies backup bytes [from, to) to the device at the same offset plus shift.
	copyRange := func(from, to, shift int64) error {
		for off := from; off < to; {
			n := int(min(int64(len(buf)), to-off))
			if _, err := f.ReadAt(buf[:n], off); err != nil {
				return fmt.Errorf("%w: cannot read header backup file %s: %w", ErrInvalidParameter, path, err)
			}
			if err := writeFull(hdr, buf[:n], off+shift); err != nil {
				return fmt.Errorf("restoring LUKS header: %w", err)
			}
			off += int64(n)
		}
		return nil
	}
	step := func(err error) error {
		if err != nil {
			return err
		}
		if err := syncDevice(hdr); err != nil {
			return fmt.Errorf("restoring LUKS header: %w", err)
		}
		return nil
	}
	// onDisk and onDiskLive are the header bytes on the device and the slots that open
	// with them, as the writes below change them.
	onDisk, onDiskLive := curBytes, enabledSlots(cur)
	putHeader := func(h []byte, live [NumKeyslots]bool) error {
		if err := writeHeaderSectors(hdr, onDisk, h, onDiskLive, live); err != nil {
			return fmt.Errorf("restoring LUKS header: %w", err)
		}
		onDisk, onDiskLive = h, live
		return nil
	}
	if plan.oldTrimmed != nil {
		b, err := plan.oldTrimmed.MarshalBinary()
		if err != nil {
			return err
		}
		if err := putHeader(b, enabledSlots(plan.oldTrimmed)); err != nil {
			return err
		}
	}
	for _, m := range plan.moves {
		if err := copyRange(m.src.lo, m.src.hi, m.dst.lo-m.src.lo); err != nil {
			return err
		}
	}
	if err := step(nil); err != nil {
		return err
	}
	sb, err := plan.staging.MarshalBinary()
	if err != nil {
		return err
	}
	if err := putHeader(sb, plan.stagedLive); err != nil {
		return err
	}
	// Everything but the header and the places outside the backup's own slots that the
	// staging header still uses.
	at := int64(HeaderSize)
	for _, r := range plan.moved {
		if err := copyRange(at, min(r.lo, dataLen), 0); err != nil {
			return err
		}
		at = max(at, r.hi)
	}
	if err := step(copyRange(at, dataLen, 0)); err != nil {
		return err
	}
	bb := make([]byte, HeaderSize)
	if _, err := f.ReadAt(bb, 0); err != nil {
		return fmt.Errorf("%w: cannot read header backup file %s: %w", ErrInvalidParameter, path, err)
	}
	if err := putHeader(bb, enabledSlots(&bh)); err != nil {
		return err
	}
	for _, r := range plan.moved {
		if err := copyRange(r.lo, min(r.hi, dataLen), 0); err != nil {
			return err
		}
	}
	return step(nil)
}

// probeDevice reads the first n bytes of hdr (those a restore checks and writes) and
// returns the read error, if any, other than the device ending before n: a header that
// failed to load for a read error must not count as "no header".
func probeDevice(hdr io.ReaderAt, n int64) error {
	err := copyRange(io.Discard, hdr, 0, n)
	if err == nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return nil
	}
	return fmt.Errorf("reading the device's LUKS header, nothing written: %w", err)
}

// enabledSlots is which of h's slots are enabled (none for nil).
func enabledSlots(h *Header) (live [NumKeyslots]bool) {
	if h != nil {
		for i := range h.Keyslots {
			live[i] = h.Keyslots[i].Enabled()
		}
	}
	return live
}

// writeHeaderSectors replaces the 1024-byte LUKS1 header from (on the device, whose
// slots fromLive open) with to (whose slots toLive open once written) so that a crash
// never leaves a header that keeps neither set. The header spans two sectors, and only a
// one-sector write can be assumed atomic: slot 6 straddles the boundary (its active
// flag, iterations and the first salt bytes in the first sector, the rest in the
// second) and slot 7 lies in the second. Writing the two sectors at once may land
// either one alone; so the sectors that differ are written one at a time, each synced,
// in the order whose intermediate header (one sector of each) still holds every live
// slot of the header it takes its key digest from: the first sector first when to's
// live slots in the second sector are already there, else the second first when
// from's live slots there are unchanged. Without either, the write is one sector pair
// and a torn write may lose the slots in the second sector.
func writeHeaderSectors(w io.WriterAt, from, to []byte, fromLive, toLive [NumKeyslots]bool) error {
	head, tail := to[:SectorSize], to[SectorSize:HeaderSize]
	headSame := bytes.Equal(from[:SectorSize], head)
	tailSame := bytes.Equal(from[SectorSize:HeaderSize], tail)
	write := func(p []byte, off int64) error {
		if err := writeFull(w, p, off); err != nil {
			return fmt.Errorf("writing LUKS header: %w", err)
		}
		return syncDevice(w)
	}
	// keeps: the header made of head's first sector and tail's second holds every
	// slot of src that live marks.
	keeps := func(headSrc, tailSrc, src []byte, live [NumKeyslots]bool) bool {
		mix := append(append([]byte(nil), headSrc[:SectorSize]...), tailSrc[SectorSize:HeaderSize]...)
		// A LUKS1 first sector makes the whole a LUKS1 header, whose slots 6 and 7 must
		// be valid even when disabled (over a LUKS2 header the second sector is not).
		if bytes.Equal(mix[:len(magic)], magic) && binary.BigEndian.Uint16(mix[len(magic):]) == 1 {
			var h Header
			if h.UnmarshalBinary(mix) != nil || h.Validate() != nil {
				return false
			}
		}
		for k, ok := range live {
			o := offKeyslots + k*keyslotSize
			if ok && !bytes.Equal(mix[o:o+keyslotSize], src[o:o+keyslotSize]) {
				return false
			}
		}
		return true
	}
	switch {
	case headSame && tailSame:
		return nil
	case tailSame:
		return write(head, 0)
	case headSame:
		return write(tail, SectorSize)
	case keeps(to, from, to, toLive):
		if err := write(head, 0); err != nil {
			return err
		}
		return write(tail, SectorSize)
	case keeps(from, to, from, fromLive):
		if err := write(tail, SectorSize); err != nil {
			return err
		}
		return write(head, 0)
	default:
		return write(to[:HeaderSize], 0)
	}
}

// byteRange is [lo, hi) on the device.
type byteRange struct{ lo, hi int64 }

func (r byteRange) overlaps(o byteRange) bool { return r.lo < o.hi && o.lo < r.hi }

func slotArea(h *Header, i int) byteRange {
	lo := int64(h.Keyslots[i].KeyMaterialOffset) * SectorSize
	return byteRange{lo, lo + int64(h.AFSectors())*SectorSize}
}

// restorePlan is RestoreHeader's write order; see its documentation.
type restorePlan struct {
	oldTrimmed *Header           // written first when old slots must be given up (nil: not needed)
	moves      []slotMove        // backup key material written before the staging header
	moved      []byteRange       // the moves' destinations outside their own slot, in offset order
	staging    *Header           // the backup's header with only the staged slots enabled
	stagedLive [NumKeyslots]bool // the staging header's slots that open (the staged ones)
}

// slotMove is one backup slot's key material (src, in the backup file) staged at dst.
type slotMove struct{ src, dst byteRange }

func planRestore(cur, bh *Header, keep []byteRange) (*restorePlan, error) {
	oldAreas := append([]byteRange(nil), keep...)
	if cur != nil {
		for i := range cur.Keyslots {
			if cur.Keyslots[i].Enabled() {
				oldAreas = append(oldAreas, slotArea(cur, i))
			}
		}
	}
	usedByOld := func(r byteRange) bool {
		for _, o := range oldAreas {
			if r.overlaps(o) {
				return true
			}
		}
		return false
	}
	var enabled []int
	for i := range bh.Keyslots {
		if bh.Keyslots[i].Enabled() {
			enabled = append(enabled, i)
		}
	}
	if len(enabled) == 0 {
		return nil, fmt.Errorf("%w: backup header has no enabled key slot, restore would leave no way to open the device", ErrInvalidParameter)
	}
	// The staging header holds backup slot from at index at, whose (canonical) key-material
	// place it uses: cryptsetup refuses a header whose slots' places overlap, enabled or
	// not, so a slot can only move to another index's place.
	staging := *bh
	for i := range staging.Keyslots {
		staging.Keyslots[i] = Keyslot{Active: KeyDisabled, KeyMaterialOffset: bh.Keyslots[i].KeyMaterialOffset, Stripes: Stripes}
	}
	plan := &restorePlan{staging: &staging}
	taken := map[int]bool{}
	stage := func(from, at int) {
		staging.Keyslots[at] = bh.Keyslots[from]
		staging.Keyslots[at].KeyMaterialOffset = bh.Keyslots[at].KeyMaterialOffset
		taken[at] = true
		plan.stagedLive[at] = true
		plan.moves = append(plan.moves, slotMove{slotArea(bh, from), slotArea(bh, at)})
		if at != from {
			plan.moved = append(plan.moved, slotArea(bh, at))
		}
	}
	// Backup slots whose own place is free in the old header, then the others at places
	// that neither header uses.
	var rest []int
	for _, i := range enabled {
		if !usedByOld(slotArea(bh, i)) {
			stage(i, i)
		} else {
			rest = append(rest, i)
		}
	}
	for _, i := range rest {
		for k := range bh.Keyslots {
			if !taken[k] && !bh.Keyslots[k].Enabled() && !usedByOld(slotArea(bh, k)) {
				stage(i, k)
				break
			}
		}
	}
	keepTail(plan, cur, bh)
	if len(plan.moves) > 0 {
		sort.Slice(plan.moved, func(i, j int) bool { return plan.moved[i].lo < plan.moved[j].lo })
		return plan, nil
	}
	// No place is free: give up the old slots the first backup slot overlaps, if others
	// remain.
	if cur == nil {
		return nil, fmt.Errorf("%w: no order of writes keeps a passphrase working if the restore is interrupted (the backup's key slots overlap every key slot and the metadata of the LUKS2 header on the device)", ErrNoFreeKeyslot)
	}
	first := enabled[0]
	a := slotArea(bh, first)
	trimmed := *cur
	kept := 0
	for i := range trimmed.Keyslots {
		if !trimmed.Keyslots[i].Enabled() {
			continue
		}
		if slotArea(cur, i).overlaps(a) {
			trimmed.Keyslots[i].Active = KeyDisabled
		} else {
			kept++
		}
	}
	if kept == 0 {
		return nil, fmt.Errorf("%w: no order of writes keeps a passphrase working if the restore is interrupted (the backup's key slots overlap every slot on the device and no key-slot area is free); kill a slot on the device first", ErrNoFreeKeyslot)
	}
	plan.oldTrimmed = &trimmed
	stage(first, first)
	keepTail(plan, &trimmed, bh)
	return plan, nil
}

// keepTail copies into the staging header the old header's enabled slots 6 and 7 (in the
// header's second sector) where the staging header has no slot of its own, at the same
// key-material place: with the backup's key digest they open nothing, but the second
// sector then changes only by the staged slots, so writeHeaderSectors can write it
// first without giving up the old slots there (old slots 0–5 and 7 in use leave only
// place 6 for a staged slot, whose active flag is in the first sector).
func keepTail(plan *restorePlan, old, bh *Header) {
	if old == nil {
		return
	}
	for k := 6; k < NumKeyslots; k++ {
		if !plan.stagedLive[k] && old.Keyslots[k].Enabled() && old.Keyslots[k].KeyMaterialOffset == bh.Keyslots[k].KeyMaterialOffset {
			plan.staging.Keyslots[k] = old.Keyslots[k]
		}
	}
}

// SetUUID stores a new UUID in the header (cryptsetup luksUUID --uuid). uuid is normalised
// to lower case; "" generates a random one.
func SetUUID(hdr ReadWriterAt, uuid string) error {
	h, err := ReadHeader(hdr)
	if err != nil {
		return err
	}
	if uuid == "" {
		uuid, err = randomUUID(rand.Reader)
	} else {
		uuid, err = canonicalUUID(uuid)
	}
	if err != nil {
		return err
	}
	h.UUID = uuid
	return writeHeader(hdr, h)
}
