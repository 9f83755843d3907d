package luks

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
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
	if cur, err := ReadHeader(hdr); err == nil {
		if cur.PayloadOffset != bh.PayloadOffset || cur.KeyBytes != bh.KeyBytes {
			return fmt.Errorf("%w: data offset or key size differs on device and backup, restore failed", ErrInvalidParameter)
		}
	}
	// Stream in bounded chunks, the first 4 KiB (the header) last, so that a failure part
	// way leaves the device's old header in place.
	buf := make([]byte, min(dataLen, volumeChunk))
	defer clear(buf)
	copyRange := func(from, to int64) error {
		for off := from; off < to; {
			n := int(min(int64(len(buf)), to-off))
			if _, err := f.ReadAt(buf[:n], off); err != nil {
				return fmt.Errorf("%w: cannot read header backup file %s: %w", ErrInvalidParameter, path, err)
			}
			if err := writeFull(hdr, buf[:n], off); err != nil {
				return fmt.Errorf("restoring LUKS header: %w", err)
			}
			off += int64(n)
		}
		return nil
	}
	if err := copyRange(alignKeyslots, dataLen); err != nil {
		return err
	}
	if err := syncDevice(hdr); err != nil {
		return err
	}
	if err := copyRange(0, alignKeyslots); err != nil {
		return err
	}
	return syncDevice(hdr)
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
