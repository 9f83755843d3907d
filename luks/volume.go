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

// Volume is the decrypted payload of a LUKS1 or LUKS2 device as an io.ReaderAt and
// io.WriterAt, like dm-crypt would present it but in user space: byte 0 is the first byte
// of the payload, encrypted in the segment's sector size (512 for LUKS1, up to 4096 for
// LUKS2) with IVs counted in 512-byte sectors from the segment's iv_tweak, as cryptsetup
// maps it. Reads and writes need not be sector-aligned; partial
// sectors are read, decrypted, patched, encrypted and written back. It is safe for
// concurrent use: parallel ReadAt calls, and parallel WriteAt calls on non-overlapping byte
// ranges (as io.WriterAt allows) even when they share a sector, because partial-sector
// read-modify-write is serialised. A ReadAt concurrent with a WriteAt to the same sector
// may see that sector torn, as with any block device.
//
// A ReadAt or WriteAt of more than 128 KiB of whole sectors uses up to GOMAXPROCS cores:
// the range is cut into 128 KiB chunks that the calling goroutine and pooled helpers claim
// in turn from one counter, the only state they share. Each chunk is read from the data
// device into p and decrypted there while it is still in that core's cache (a write
// encrypts into a per-core scratch chunk), so the range crosses memory once; a call waits
// only for chunks a helper has begun, never for a helper that is late or busy elsewhere.
// Nothing is allocated per call. The rate is then the cipher's per core (~10 GB/s for
// aes-xts with VAES) up to what the memory and the data device deliver: on a machine of
// many cores a large read is bounded by memory bandwidth, not by this code. Waking a
// parked helper costs tens of microseconds, 70–200 µs on a 2-vCPU KVM guest, about what 1
// MiB takes on one core: ranges of 1 MiB or less gain little from a second core, large
// ones are where it pays.
type Volume struct {
	mu     sync.RWMutex
	rmw    sync.Mutex // held across a read-modify-write of partial sectors
	data   ReadWriterAt
	c      *sector.Cipher
	off    int64
	size   int64
	ss     int64  // encryption sector size
	tweak  uint64 // IV sector of payload byte 0 (LUKS2 iv_tweak, plain --skip)
	closed bool
}

// NewVolume opens the payload of data (the data device: the image itself, or the data
// device of a detached header) with volume key vk, which is checked against the header's
// digest so a wrong key can never write garbage. h is a *Header or a *Header2 (its
// DataSegment: a LUKS2 header with unmet requirements is refused). The size of data must
// be knowable (an *os.File or something with Size() int64); a LUKS2 segment of fixed size
// must fit in it.
func NewVolume(data ReadWriterAt, h Metadata, vk *VolumeKey) (*Volume, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: no header", ErrInvalidParameter)
	}
	seg, err := h.DataSegment()
	if err != nil {
		return nil, err
	}
	name, mode, err := sector.SplitSpec(seg.Cipher)
	if err != nil {
		return nil, fmt.Errorf("cipher %q: %w", seg.Cipher, err)
	}
	spec, err := sector.ParseSpec(name, mode)
	if err != nil {
		return nil, fmt.Errorf("cipher %q: %w", seg.Cipher, err)
	}
	if vk == nil || vk.Len() != seg.KeyBytes {
		return nil, fmt.Errorf("%w: key length does not match the header's %d bytes", ErrVolumeKeyMismatch, seg.KeyBytes)
	}
	ok, err := h.verifyKey(context.Background(), vk.b)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrVolumeKeyMismatch
	}
	ss := int64(seg.SectorSize)
	if ss < SectorSize || ss > 4096 || ss&(ss-1) != 0 {
		return nil, fmt.Errorf("%w: sector size %d", ErrUnsupportedCipher, ss)
	}
	size, known := deviceSize(data)
	if !known {
		return nil, fmt.Errorf("%w: cannot determine the size of the data device", ErrInvalidParameter)
	}
	off := seg.Offset
	if size < off {
		return nil, fmt.Errorf("%w: data device has %d bytes, payload starts at %d", ErrDeviceTooSmall, size, off)
	}
	n := (size - off) / ss * ss
	if seg.Size > 0 {
		if seg.Size > size-off {
			return nil, fmt.Errorf("%w: data device has %d bytes, segment ends at %d", ErrDeviceTooSmall, size, off+seg.Size)
		}
		n = seg.Size
	}
	c, err := sector.NewFromSpec(spec, vk.b)
	if err != nil {
		return nil, err
	}
	return &Volume{data: data, c: c, off: off, size: n, ss: ss, tweak: seg.IVTweak}, nil
}

// crypt en- or decrypts whole sectors in place; first counts sectors of v.ss bytes.
func (v *Volume) crypt(buf []byte, first int64, enc bool) error {
	return v.c.CryptLarge(buf, buf, int(v.ss), v.tweak+uint64(first)*uint64(v.ss/SectorSize), enc)
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
	ss := v.ss
	scratch := make([]byte, min(int64(n)+2*ss, volumeChunk+ss))
	defer clear(scratch)
	done := 0
	for done < n {
		pos := off + int64(done)
		first := pos / ss
		skipB := int(pos % ss)
		take := min(n-done, volumeChunk-skipB)
		last := (pos + int64(take) + ss - 1) / ss
		buf := scratch[:(last-first)*ss]
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
	m, err := v.data.ReadAt(buf, v.off+first*v.ss)
	if m < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("reading payload sector %d: %w", first, err)
	}
	return v.crypt(buf, first, false)
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
		first := pos / v.ss
		skipB := int(pos % v.ss)
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
	ss := v.ss
	last := (end + ss - 1) / ss
	buf := make([]byte, (last-first)*ss)
	if skipB != 0 || end%ss != 0 {
		v.rmw.Lock()
		defer v.rmw.Unlock()
	}
	if skipB != 0 {
		if err := v.readSectors(buf[:ss], first); err != nil {
			return err
		}
	}
	if end%ss != 0 && (last-1 > first || skipB == 0) {
		if err := v.readSectors(buf[int64(len(buf))-ss:], last-1); err != nil {
			clear(buf)
			return err
		}
	}
	copy(buf[skipB:], src)
	if err := v.crypt(buf, first, true); err != nil {
		clear(buf)
		return err
	}
	if err := writeFull(v.data, buf, v.off+first*ss); err != nil {
		return fmt.Errorf("writing payload sector %d: %w", first, err)
	}
	return nil
}
