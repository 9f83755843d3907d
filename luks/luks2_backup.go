package luks

import (
	"errors"
	"fmt"
	"io"
	"os"
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
// luksHeaderBackup) back to hdr, as LUKS2_hdr_restore does: the backup must load as a
// valid LUKS2 header (either copy), carry no mandatory requirement but an online
// reencryption, and if hdr already holds a LUKS2 header (not one in an offline
// reencryption), its data offset and AreasSize must equal the backup's (else
// ErrInvalidParameter). Nothing is written before these checks.
//
// The backup's keyslots area is written first, then its secondary copy, then its primary
// copy, each synced. A crash part way leaves a device that may open with neither the old
// nor the backup's passphrases — the old header's slots point into areas already
// overwritten — but the backup file is untouched, so running the restore again completes
// it; cryptsetup, which writes the same bytes in one pass from offset 0, leaves the same.
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
	for _, r := range []struct{ off, n int64 }{{2 * md, total - 2*md}, {md, md}, {0, md}} {
		if err := copyRange(&offsetWriter{w: hdr, off: r.off}, io.NewSectionReader(bf, r.off, r.n), 0, r.n); err != nil {
			return err
		}
		if err := syncDevice(hdr); err != nil {
			return err
		}
	}
	return nil
}

// CheckRestore2 makes RestoreHeader2's checks of the device against a loaded backup
// header bh: when hdr holds a LUKS2 header, its data offset and header-and-areas size must
// be the backup's. A device without a LUKS2 header passes.
func CheckRestore2(hdr io.ReaderAt, bh *Header2) error {
	dh, err := ReadHeader2(hdr)
	if err != nil || dh.LegacyReencryption() {
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
