package luks

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"

	"github.com/cloudluks/cloudluks/luks/internal/jsonc"
)

// BackupHeader2 writes the LUKS2 metadata of hdr to a new file at path in cryptsetup's
// LUKS2 luksHeaderBackup format (LUKS2_hdr_backup): the first AreasSize bytes of the
// device — both header copies and the keyslots area, as stored — zero-padded to a
// multiple of 4096 bytes. The file is created exclusively with mode 0400, as for LUKS1.
func BackupHeader2(hdr io.ReaderAt, path string) error {
	h, err := ReadHeader2(hdr)
	if err != nil {
		return err
	}
	dataLen := int64(h.AreasSize())
	fileLen := (dataLen + backupPageSize - 1) / backupPageSize * backupPageSize
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o400)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: requested header backup file %s already exists", ErrInvalidParameter, path)
		}
		return fmt.Errorf("cannot create header backup file: %w", err)
	}
	werr := copyRange(f, hdr, 0, dataLen)
	if werr == nil && fileLen > dataLen {
		_, werr = f.Write(make([]byte, fileLen-dataLen))
	}
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

// copyRange streams n bytes of r from off to w in bounded chunks (a hostile header may
// claim areas far larger than memory).
func copyRange(w io.Writer, r io.ReaderAt, off, n int64) error {
	buf := make([]byte, min(n, volumeChunk))
	defer clear(buf)
	for done := int64(0); done < n; {
		k := int(min(int64(len(buf)), n-done))
		if m, err := r.ReadAt(buf[:k], off+done); m < k {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading LUKS2 header area at %d: %w", off+done, err)
		}
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		done += int64(k)
	}
	return nil
}

// offsetWriter writes sequentially through an io.WriterAt.
type offsetWriter struct {
	w   io.WriterAt
	off int64
}

func (o *offsetWriter) Write(p []byte) (int, error) {
	if err := writeFull(o.w, p, o.off); err != nil {
		return 0, err
	}
	o.off += int64(len(p))
	return len(p), nil
}

// RestoreHeader2 writes a LUKS2 header backup (made by BackupHeader2 or cryptsetup
// luksHeaderBackup) back to hdr, as LUKS2_hdr_restore checks it: the backup must load as a
// valid LUKS2 header (either copy), carry no mandatory requirement but an online
// reencryption, and if hdr already holds a LUKS2 header (not one in an offline
// reencryption), its data offset and AreasSize must equal the backup's (else
// ErrInvalidParameter). Nothing is written before these checks. When it returns nil, the
// first AreasSize bytes of hdr are the backup's, byte for byte, as after cryptsetup
// luksHeaderRestore.
//
// What a crash or a failed write part way guarantees, when hdr holds a valid LUKS2 header
// with the backup's metadata size: at every point hdr holds a LUKS2 header that opens with
// every passphrase of the old header, or one that opens with the passphrases of the
// backup's key slots that could be staged — all of them whenever the keyslots area has
// room for them beside the old header's slots, at least one whenever one fits (when none
// fits — the device's slots fill the keyslots area — the backup is written in
// cryptsetup's order below, without this guarantee, as cryptsetup restores it). cryptsetup (LUKS2_hdr_restore) writes the backup
// in one pass from offset 0, so a crash there can leave the old header's slots pointing at
// the backup's key material: neither passphrase set opens. The order here:
//
//  1. Each backup slot whose area the old header's slots do not use is written in its own
//     place; each other one at a free place in the keyslots area that neither header uses
//     (the staged slots), then sync. The old header, still in both copies, uses none of
//     these bytes.
//  2. A staging header — the backup's JSON with only the staged slots, at their staged
//     places, and a sequence ID above both headers' — is written as every LUKS2 header
//     write is (primary, sync, secondary, sync): a torn copy fails its checksum and the
//     other copy is used; the newer complete copy wins over the older.
//  3. The rest of the backup's keyslots area, except the staged places the staging header
//     still uses, then sync.
//  4. The backup's primary copy, sync, its secondary copy, sync (the staging copy keeps
//     winning by its higher sequence ID until the backup's secondary replaces it; from
//     then on all of the backup's slots open).
//  5. The backup's own bytes at the staged places, sync.
//
// When the device's two copies disagree (one damaged, or stale after a crash between
// their writes, such as in an earlier run of this restore), the bad copy is first
// rewritten from the one in use, which is not touched: the plan then protects the slots
// of the only header a crash can fall back to. The guarantee assumes 512-byte sectors
// are written atomically and that hdr has a Sync method making earlier writes durable
// (an *os.File has). A device without a
// LUKS2 header has nothing to keep: it opens with the backup's staged slots from step 2.
// A device whose metadata size differs from the backup's (same AreasSize, other split)
// cannot be restored without overwriting one copy with the other's area: there the bytes
// are written in cryptsetup's order and a crash may leave neither passphrase set working;
// the backup file is never modified, so running the restore again completes it. A device
// with a LUKS1 header is, as for cryptsetup (which only asks to confirm), a device
// without a LUKS2 header: the staged slots avoid nothing of it, and the first header
// write (the primary copy over the LUKS1 header and the JSON area over LUKS1 slot 0's
// key material) can leave neither passphrase set working; back the LUKS1 header up
// first (BackupHeader) or convert it (ConvertLUKS1ToLUKS2) before restoring a LUKS2
// backup onto it.
func RestoreHeader2(hdr ReadWriterAt, path string) error {
	bf, err := os.Open(path)
	if err != nil {
		return err
	}
	defer bf.Close()
	bh, err := ReadHeader2(bf)
	if err != nil {
		return fmt.Errorf("backup file %s: %w", path, err)
	}
	if bh.UnmetRequirements(true) != nil {
		return fmt.Errorf("%w: forbidden LUKS2 requirements detected in backup %s", ErrUnmetRequirements, path)
	}
	if err := CheckRestore2(hdr, bh); err != nil {
		return err
	}
	md, total := int64(bh.MetadataSize()), int64(bh.AreasSize())
	copyBack := func(off, n int64) error {
		if n <= 0 {
			return nil
		}
		return copyRange(&offsetWriter{w: hdr, off: off}, io.NewSectionReader(bf, off, n), 0, n)
	}
	synced := func(err error) error {
		if err != nil {
			return err
		}
		return syncDevice(hdr)
	}
	dh, derr := ReadHeader2(hdr)
	if derr == nil && (dh.PrimaryErr != nil || dh.SecondaryErr != nil) {
		// One copy is damaged or stale (a crash between the two copies' writes, such as an
		// earlier restore interrupted while writing its staging header): the staging plan
		// below protects only the areas of the copy in use, and a torn write of the good
		// copy would fall back to the other one. Rewrite the bad copy from the good one
		// first, as cryptsetup's recovery does on a load for writing; the good copy is not
		// touched, so a crash during the repair leaves it in use.
		if err := repairLUKS2Copy(hdr, dh.PrimaryErr != nil); err != nil {
			return err
		}
		if dh, derr = ReadHeader2(hdr); derr != nil {
			return fmt.Errorf("LUKS2 header after repairing its other copy: %w", derr)
		}
	}
	plainOrder := func() error {
		for _, r := range []struct{ off, n int64 }{{2 * md, total - 2*md}, {md, md}, {0, md}} {
			if err := synced(copyBack(r.off, r.n)); err != nil {
				return err
			}
		}
		return nil
	}
	if derr == nil && dh.HeaderSize != bh.HeaderSize {
		for _, r := range []struct{ off, n int64 }{{2 * md, total - 2*md}, {md, md}, {0, md}} {
			if err := synced(copyBack(r.off, r.n)); err != nil {
				return err
			}
		}
		return nil
	}
	if derr != nil {
		dh = nil
	}
	plan, err := planRestore2(dh, bh)
	if errors.Is(err, ErrNoFreeKeyslot) {
		// No backup slot fits beside the device's (a keyslots area the device's slots fill,
		// such as one holding a reencryption's own key slot): cryptsetup restores such a
		// backup, so this does too, in cryptsetup's order and without the guarantee above.
		return plainOrder()
	}
	if err != nil {
		return err
	}
	// randOr: a backup copy that is damaged or stale gets a fresh salt, as any LUKS2 write
	// gives it (its bytes are restored from the backup at the end all the same). The
	// backup's requirements were checked above (an online reencryption may be restored),
	// so the staging copy is loaded without the write-time requirements check.
	_, stage, err := loadLUKS2AnyRequirements(bf, randOr(nil))
	if err != nil {
		return fmt.Errorf("backup file %s: %w", path, err)
	}
	restrictKeyslots(stage, plan.keep)
	for _, s := range plan.staged {
		if s.to != s.from.off {
			stage.json.Get("keyslots").Get(strconv.Itoa(s.id)).Get("area").Set("offset", jsonc.NewString(strconv.FormatUint(s.to, 10)))
		}
		if err := copyRange(&offsetWriter{w: hdr, off: int64(s.to)}, io.NewSectionReader(bf, int64(s.from.off), int64(s.from.len)), 0, int64(s.from.len)); err != nil {
			return err
		}
	}
	if err := syncDevice(hdr); err != nil {
		return err
	}
	stage.seqid = bh.SeqID
	if dh != nil {
		stage.seqid = max(stage.seqid, dh.SeqID)
	}
	if err := writeLUKS2(hdr, stage); err != nil {
		return err
	}
	// The keyslots area but the places the staging header points at outside the backup's
	// own areas.
	at := 2 * md
	for _, r := range plan.moved {
		if err := copyBack(at, int64(r.off)-at); err != nil {
			return err
		}
		at = int64(r.off + r.len)
	}
	if err := synced(copyBack(at, total-at)); err != nil {
		return err
	}
	if err := synced(copyBack(0, md)); err != nil {
		return err
	}
	if err := synced(copyBack(md, md)); err != nil {
		return err
	}
	for _, r := range plan.moved {
		if err := copyBack(int64(r.off), int64(r.len)); err != nil {
			return err
		}
	}
	return syncDevice(hdr)
}

// repairLUKS2Copy rewrites one header copy of hdr (the primary if primary, else the
// secondary) from the copy in use, with the same sequence ID, and syncs: the copy in use
// is not written.
func repairLUKS2Copy(hdr ReadWriterAt, primary bool) error {
	_, m, err := loadLUKS2ForWrite(hdr, randOr(nil))
	if err != nil {
		return err
	}
	area, err := m.jsonArea()
	if err != nil {
		return err
	}
	off := int64(0)
	if !primary {
		off = int64(m.hdrSize)
	}
	bin := m.binary(!primary)
	if err := writeFull(hdr, bin, off); err != nil {
		return fmt.Errorf("repairing LUKS2 header copy at %d: %w", off, err)
	}
	if err := writeFull(hdr, area, off+l2BinLen); err != nil {
		return fmt.Errorf("repairing LUKS2 JSON area at %d: %w", off+l2BinLen, err)
	}
	sum := sha256.New()
	sum.Write(bin)
	sum.Write(area)
	copy(bin[l2OffCsum:], sum.Sum(nil))
	if err := writeFull(hdr, bin, off); err != nil {
		return fmt.Errorf("repairing LUKS2 header copy at %d: %w", off, err)
	}
	if err := syncDevice(hdr); err != nil {
		return fmt.Errorf("repairing LUKS2 header copy: %w", err)
	}
	return nil
}

// stagedSlot is a backup key slot written, before any header, at to.
type stagedSlot struct {
	id   int
	from area // its area in the backup
	to   uint64
}

// restorePlan2 is RestoreHeader2's choice of staged slots; see its documentation.
type restorePlan2 struct {
	staged []stagedSlot
	keep   map[int]bool
	moved  []area // staged places outside the slot's own area, in offset order
}

func overlaps(a, b area) bool { return a.off < b.off+b.len && b.off < a.off+a.len }

// planRestore2 stages every backup slot it can: in place when the device header (dh; nil
// when there is none) does not use its area, else at the lowest 4 KiB-aligned place of
// the keyslots area that no slot of either header and no other staged slot uses.
func planRestore2(dh, bh *Header2) (*restorePlan2, error) {
	var old, bak []area
	if dh != nil {
		for _, ks := range dh.Keyslots {
			old = append(old, area{ks.Area.Offset, ks.Area.Size})
		}
	}
	ids := make([]int, 0, len(bh.Keyslots))
	for id, ks := range bh.Keyslots {
		ids = append(ids, id)
		bak = append(bak, area{ks.Area.Offset, ks.Area.Size})
	}
	sort.Ints(ids)
	free := func(a area, used ...[]area) bool {
		for _, list := range used {
			for _, u := range list {
				if overlaps(a, u) {
					return false
				}
			}
		}
		return true
	}
	p := &restorePlan2{keep: map[int]bool{}}
	var placed []area
	lo, hi := 2*bh.HeaderSize, 2*bh.HeaderSize+bh.Config.KeyslotsSize
	// In place first, so that a relocated slot never takes a place another could have kept.
	for _, id := range ids {
		a := area{bh.Keyslots[id].Area.Offset, bh.Keyslots[id].Area.Size}
		if free(a, old) {
			p.staged = append(p.staged, stagedSlot{id, a, a.off})
			p.keep[id] = true
			placed = append(placed, a)
		}
	}
	for _, id := range ids {
		if p.keep[id] {
			continue
		}
		a := area{bh.Keyslots[id].Area.Offset, bh.Keyslots[id].Area.Size}
		for off := lo; off+a.len <= hi; off += 4096 {
			if c := (area{off, a.len}); free(c, old, bak, placed) {
				p.staged = append(p.staged, stagedSlot{id, a, off})
				p.keep[id] = true
				placed = append(placed, c)
				p.moved = append(p.moved, c)
				break
			}
		}
	}
	if len(p.staged) == 0 {
		return nil, fmt.Errorf("%w: no order of writes keeps a passphrase working if the restore is interrupted (the keyslots area has no room for a backup key slot beside the device's slots); kill a slot on the device first", ErrNoFreeKeyslot)
	}
	sort.Slice(p.moved, func(i, j int) bool { return p.moved[i].off < p.moved[j].off })
	return p, nil
}

// restrictKeyslots drops from m every key slot not in keep, and their ids from the digests
// and tokens that list them (the staging header's JSON).
func restrictKeyslots(m *luks2Metadata, keep map[int]bool) {
	kept := func(v *jsonc.Value) bool {
		id, err := strconv.Atoi(v.Text)
		return v.Kind == jsonc.String && err == nil && keep[id]
	}
	for _, group := range []string{"digests", "tokens"} {
		for _, mem := range m.json.Get(group).Members {
			list := mem.Value.Get("keyslots")
			if list == nil || list.Kind != jsonc.Array {
				continue
			}
			items := []*jsonc.Value{}
			for _, it := range list.Items {
				if kept(it) {
					items = append(items, it)
				}
			}
			mem.Value.Set("keyslots", jsonc.NewArray(items...))
		}
	}
	ks := m.json.Get("keyslots")
	var drop []string
	for _, mem := range ks.Members {
		if !kept(jsonc.NewString(mem.Key)) {
			drop = append(drop, mem.Key)
		}
	}
	for _, id := range drop {
		ks.Delete(id)
	}
}

// CheckRestore2 makes RestoreHeader2's checks of the device against a loaded backup
// header bh: when hdr holds a LUKS2 header, its data offset and header-and-areas size must
// be the backup's. A device without a LUKS2 header passes; one whose first AreasSize bytes
// cannot be read fails with the read error.
func CheckRestore2(hdr io.ReaderAt, bh *Header2) error {
	dh, err := ReadHeader2(hdr)
	if err != nil {
		// A read failure is not "no header": it would skip the checks below.
		return probeDevice(hdr, int64(bh.AreasSize()))
	}
	if dh.LegacyReencryption() {
		return nil
	}
	if dh.DataOffset() != bh.DataOffset() {
		return fmt.Errorf("%w: data offset differs on device and backup", ErrInvalidParameter)
	}
	if dh.AreasSize() != bh.AreasSize() {
		return fmt.Errorf("%w: binary header with keyslot areas size differs on device and backup", ErrInvalidParameter)
	}
	return nil
}

// SetUUIDLUKS2 stores a new UUID in both LUKS2 header copies (luksUUID --uuid;
// crypt_set_uuid): uuid is normalised to lower case, "" generates a random one; the
// sequence ID goes up as for every LUKS2 write.
func SetUUIDLUKS2(hdr ReadWriterAt, uuid string, rnd io.Reader) error {
	rnd = randOr(rnd)
	_, m, err := loadLUKS2ForWrite(hdr, rnd)
	if err != nil {
		return err
	}
	if uuid == "" {
		uuid, err = randomUUID(rnd)
	} else {
		uuid, err = canonicalUUID(uuid)
	}
	if err != nil {
		return err
	}
	m.uuid = uuid
	return writeLUKS2(hdr, m)
}
