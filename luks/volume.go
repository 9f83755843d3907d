package luks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cloudluks/cloudluks/luks/sector"
)

// volumeChunk bounds the buffer one ReadAt/WriteAt step uses.
const volumeChunk = 1 << 20

// Volume is the decrypted payload of a LUKS1 device as an io.ReaderAt and io.WriterAt,
// like dm-crypt would present it but in user space: byte 0 is the first byte of the payload
// (payload sector 0 uses IV sector 0). Reads and writes need not be sector-aligned; partial
// sectors are read, decrypted, patched, encrypted and written back. It is safe for
// concurrent use: parallel ReadAt calls, and parallel WriteAt calls on non-overlapping byte
// ranges (as io.WriterAt allows) even when they share a sector, because partial-sector
// read-modify-write is serialised. A ReadAt concurrent with a WriteAt to the same sector
// may see that sector torn, as with any block device.
type Volume struct {
	mu     sync.RWMutex
	rmw    sync.Mutex // held across a read-modify-write of partial sectors
	data   ReadWriterAt
	c      *sector.Cipher
	off    int64
	size   int64
	closed bool
}

// NewVolume opens the payload of data (the data device: the image itself, or the data
// device of a detached header) with volume key vk, which is checked against the header's
// MK digest so a wrong key can never write garbage. The size of data must be knowable (an
// *os.File or something with Size() int64).
func NewVolume(data ReadWriterAt, h *Header, vk *VolumeKey) (*Volume, error) {
	sc, err := prepare(h, 0)
	if err != nil {
		return nil, err
	}
	if vk == nil || vk.Len() != int(h.KeyBytes) {
		return nil, fmt.Errorf("%w: key length does not match the header's %d bytes", ErrVolumeKeyMismatch, h.KeyBytes)
	}
	ok, err := verifyVolumeKey(context.Background(), h, sc, vk.b)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrVolumeKeyMismatch
	}
	size, known := deviceSize(data)
	if !known {
		return nil, fmt.Errorf("%w: cannot determine the size of the data device", ErrInvalidParameter)
	}
	off := h.PayloadOffsetBytes()
	if size < off {
		return nil, fmt.Errorf("%w: data device has %d bytes, payload starts at %d", ErrDeviceTooSmall, size, off)
	}
	c, err := sector.NewFromSpec(sc.spec, vk.b)
	if err != nil {
		return nil, err
	}
	return &Volume{data: data, c: c, off: off, size: (size - off) / SectorSize * SectorSize}, nil
}

// Size is the payload size in bytes (data device size minus payload offset, in whole
// sectors).
func (v *Volume) Size() int64 { return v.size }

// Close wipes the volume's copy of the key; later reads and writes fail with ErrClosed. It
// does not close the data device.
func (v *Volume) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.closed {
		v.c.Wipe()
		v.closed = true
	}
	return nil
}

// ReadAt decrypts len(p) payload bytes at off. Like os.File, it returns io.EOF when fewer
// bytes remain.
func (v *Volume) ReadAt(p []byte, off int64) (int, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.usable(off); err != nil {
		return 0, err
	}
	if off >= v.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	n := int(min(int64(want), v.size-off))
	if k, ok, err := v.readWhole(p[:n], off); ok { // volume_parallel.go
		if err == nil && n < want {
			err = io.EOF
		}
		return k, err
	}
	// One buffer for every chunk: a chunk spans at most volumeChunk bytes plus the partial
	// sector before it.
	scratch := make([]byte, min(int64(n)+2*SectorSize, volumeChunk+SectorSize))
	defer clear(scratch)
	done := 0
	for done < n {
		pos := off + int64(done)
		first := pos / SectorSize
		skipB := int(pos % SectorSize)
		take := min(n-done, volumeChunk-skipB)
		last := (pos + int64(take) + SectorSize - 1) / SectorSize
		buf := scratch[:(last-first)*SectorSize]
		if err := v.readSectors(buf, first); err != nil {
			return done, err
		}
		copy(p[done:done+take], buf[skipB:])
		done += take
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// usable refuses I/O on a closed volume or at a negative offset (callers hold v.mu).
func (v *Volume) usable(off int64) error {
	if v.closed {
		return ErrClosed
	}
	if off < 0 {
		return fmt.Errorf("%w: negative offset %d", ErrInvalidParameter, off)
	}
	return nil
}

func (v *Volume) readSectors(buf []byte, first int64) error {
	m, err := v.data.ReadAt(buf, v.off+first*SectorSize)
	if m < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("reading payload sector %d: %w", first, err)
	}
	v.c.Decrypt(buf, buf, uint64(first))
	return nil
}

// WriteAt encrypts p into the payload at off. The payload does not grow: bytes beyond
// Size are not written and the short count comes with an error wrapping io.ErrShortWrite.
func (v *Volume) WriteAt(p []byte, off int64) (int, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.usable(off); err != nil {
		return 0, err
	}
	n := 0
	if off < v.size {
		n = int(min(int64(len(p)), v.size-off))
	}
	done := 0
	if k, ok, err := v.writeWholeRange(p[:n], off); ok { // volume_parallel.go
		if err != nil {
			return k, err
		}
		done = n
	}
	for done < n {
		pos := off + int64(done)
		first := pos / SectorSize
		skipB := int(pos % SectorSize)
		take := min(n-done, volumeChunk-skipB)
		end := pos + int64(take)
		if err := v.writeChunk(p[done:done+take], first, skipB, end); err != nil {
			return done, err
		}
		done += take
	}
	if n < len(p) {
		return n, fmt.Errorf("luks: write beyond the end of the volume (%d bytes): %w", v.size, io.ErrShortWrite)
	}
	return n, nil
}

// writeChunk encrypts src into the sectors from first on; src starts skipB bytes into
// sector first and ends at payload byte end. The partial sectors at either end are read,
// patched and written back under v.rmw, so two writers of disjoint bytes of one sector
// cannot undo each other's update.
func (v *Volume) writeChunk(src []byte, first int64, skipB int, end int64) error {
	last := (end + SectorSize - 1) / SectorSize
	buf := make([]byte, (last-first)*SectorSize)
	if skipB != 0 || end%SectorSize != 0 {
		v.rmw.Lock()
		defer v.rmw.Unlock()
	}
	if skipB != 0 {
		if err := v.readSectors(buf[:SectorSize], first); err != nil {
			return err
		}
	}
	if end%SectorSize != 0 && (last-1 > first || skipB == 0) {
		if err := v.readSectors(buf[len(buf)-SectorSize:], last-1); err != nil {
			clear(buf)
			return err
		}
	}
	copy(buf[skipB:], src)
	v.c.Encrypt(buf, buf, uint64(first))
	if err := writeFull(v.data, buf, v.off+first*SectorSize); err != nil {
		return fmt.Errorf("writing payload sector %d: %w", first, err)
	}
	return nil
}
