package luks

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// Large Volume reads and writes are cut into chunks of whole sectors that every core taking
// part claims one at a time from a shared cursor: a chunk is read from the device into the
// caller's buffer and decrypted there at once (or encrypted into a per-core scratch buffer
// and written), so its bytes are still in that core's L2 cache when the cipher runs and the
// range crosses main memory once. The calling goroutine works through chunks itself and
// wakes at most GOMAXPROCS−1 helpers from a process-wide pool (never more than
// maxVolumeWorkers); a helper that arrives late finds the cursor at the end and leaves, so a
// call never waits for a core that is busy elsewhere, only for chunks already begun. Nothing
// is allocated per call: the job, the scratch buffers and the helpers are pooled.
//
// Measured on a 2-vCPU KVM guest (AMD EPYC Zen 4), which is why it is built this way:
//   - a goroutine woken by a channel send goes to the sender's P and starts only when
//     another P steals it, tens to hundreds of microseconds later, or when the sender
//     blocks: a static split into one run per core left the second run to the caller
//     after its own, i.e. serial (1.0–1.16× on 2 cores);
//   - Go's copy of 1 MiB or more uses non-temporal stores, and a run of megabytes evicts
//     itself from L2 anyway: reading a whole run and then decrypting it crossed memory
//     twice, and two cores share its bandwidth.

const (
	// volumeParChunk is the unit a core claims: its ciphertext and the device's copy of it
	// (page cache, or the memory of an in-memory device) fit a core's L2 cache, 1 MiB or
	// more on every current server CPU, and it is well under the 1 MiB from which Go's copy
	// bypasses the cache. 128 KiB of AES-XTS is ~10 µs on one core, a hundred times the cost
	// of claiming it. A multiple of every sector size.
	volumeParChunk = 128 << 10
	// maxSectorSize is the largest LUKS2 sector size (one partial sector's buffer).
	maxSectorSize = 4096
	// maxVolumeWorkers caps the pool whatever GOMAXPROCS says.
	maxVolumeWorkers = 256
)

// volumeJob is one ReadAt/WriteAt call's shared state. The call fields are set under mu
// when the job opens and read by helpers only while they count in active, which the
// caller waits to drop to zero before the job is closed and pooled again, so they never
// change under a helper. A helper holding a token of an earlier call (gen differs) leaves
// without touching them.
type volumeJob struct {
	mu     sync.Mutex
	idle   sync.Cond // signalled when active drops to zero while the caller waits
	gen    uint64    // odd while a call is open
	active int       // helpers inside the call
	wait   bool      // the caller is waiting on idle

	v       *Volume
	p       []byte
	off     int64 // payload byte of p[0], sector-aligned
	write   bool
	next    atomic.Int64 // next chunk to claim
	nchunks int64

	errMu sync.Mutex
	errAt int // offset in p of the earliest failed chunk; -1 if none
	err   error
}

// volumeToken wakes a helper for the call gen of job.
type volumeToken struct {
	job *volumeJob
	gen uint64
}

var (
	volumeJobs = sync.Pool{New: func() any {
		j := new(volumeJob)
		j.idle.L = &j.mu
		return j
	}}
	volumeScratch = sync.Pool{New: func() any { return new([volumeParChunk]byte) }}
	volumeSector  = sync.Pool{New: func() any { return new([maxSectorSize]byte) }}
	volumeTokens  = make(chan volumeToken, maxVolumeWorkers)
	volumeWorkers atomic.Int32
	volumeStart   sync.Mutex
)

// volumeWorkersFor starts helpers until n run (n ≤ maxVolumeWorkers). Helpers never exit:
// an idle one is a goroutine blocked on a channel receive.
func volumeWorkersFor(n int) {
	if int(volumeWorkers.Load()) >= n {
		return
	}
	volumeStart.Lock()
	defer volumeStart.Unlock()
	for int(volumeWorkers.Load()) < n {
		volumeWorkers.Add(1)
		go func() {
			for t := range volumeTokens {
				t.help()
			}
		}()
	}
}

func (t volumeToken) help() {
	j := t.job
	j.mu.Lock()
	if j.gen != t.gen {
		j.mu.Unlock()
		return // that call is over
	}
	j.active++
	j.mu.Unlock()
	j.work()
	j.mu.Lock()
	j.active--
	if j.active == 0 && j.wait {
		j.idle.Signal()
	}
	j.mu.Unlock()
}

// work claims and handles chunks until none are left.
func (j *volumeJob) work() {
	var scratch *[volumeParChunk]byte
	if j.write {
		scratch = volumeScratch.Get().(*[volumeParChunk]byte)
		defer volumeScratch.Put(scratch)
	}
	v := j.v
	for {
		i := j.next.Add(1) - 1
		if i >= j.nchunks {
			return
		}
		at := int(i) * volumeParChunk
		p := j.p[at:min(at+volumeParChunk, len(j.p))]
		first := (j.off + int64(at)) / v.ss
		var err error
		if j.write {
			err = v.writeSectors(scratch[:len(p)], p, first)
		} else {
			err = v.readSectors(p, first)
		}
		if err != nil {
			j.fail(at, err)
			j.next.Store(j.nchunks) // later chunks would be thrown away
			return
		}
	}
}

func (j *volumeJob) fail(at int, err error) {
	j.errMu.Lock()
	if j.errAt < 0 || at < j.errAt {
		j.errAt, j.err = at, err
	}
	j.errMu.Unlock()
}

// writeSectors encrypts the whole sectors p (plaintext, left untouched) from sector first
// into buf (len(p) bytes) and writes them.
func (v *Volume) writeSectors(buf, p []byte, first int64) error {
	// IVs count 512-byte units from iv_tweak whatever the sector size (v.crypt).
	if err := v.c.CryptLarge(buf, p, int(v.ss), v.tweak+uint64(first)*uint64(v.ss/SectorSize), true); err != nil {
		return err
	}
	if err := writeFull(v.data, buf, v.off+first*v.ss); err != nil {
		return fmt.Errorf("writing payload sector %d: %w", first, err)
	}
	return nil
}

// wholeSectors reads and decrypts (or encrypts and writes) the whole sectors p at payload
// byte off (sector-aligned), chunk by chunk on the calling goroutine and on up to
// GOMAXPROCS−1 helpers. It returns how many bytes of p are done before the earliest
// failure, and that failure: every chunk before the failed one was claimed earlier and has
// finished.
func (v *Volume) wholeSectors(p []byte, off int64, write bool) (int, error) {
	nchunks := int64((len(p) + volumeParChunk - 1) / volumeParChunk)
	helpers := int(min(int64(runtime.GOMAXPROCS(0)), maxVolumeWorkers, nchunks)) - 1
	j := volumeJobs.Get().(*volumeJob)
	j.mu.Lock()
	j.gen++ // odd: open
	gen := j.gen
	j.v, j.p, j.off, j.write, j.nchunks = v, p, off, write, nchunks
	j.next.Store(0)
	j.errAt, j.err = -1, nil
	j.mu.Unlock()
	if helpers > 0 {
		volumeWorkersFor(helpers)
		for range helpers {
			select {
			case volumeTokens <- volumeToken{j, gen}:
			default: // every helper has work queued already: do without
			}
		}
	}
	j.work()
	j.mu.Lock()
	j.gen++ // even: closed to helpers not yet inside
	for j.active > 0 {
		j.wait = true
		j.idle.Wait()
	}
	j.wait = false
	j.v, j.p = nil, nil
	j.mu.Unlock()
	done, err := len(p), j.err
	if err != nil {
		done = j.errAt
	}
	j.err = nil
	volumeJobs.Put(j)
	return done, err
}

// readWhole is ReadAt for a range holding at least one whole sector (ok false otherwise:
// the chunked path in ReadAt serves reads inside one sector). Whole sectors are read into p
// itself and decrypted there, on several cores when the range is large; the partial
// sectors at either end go through a pooled one-sector buffer.
func (v *Volume) readWhole(p []byte, off int64) (n int, ok bool, err error) {
	ss := v.ss
	head := int((ss - off%ss) % ss)
	if int64(head)+ss > int64(len(p)) {
		return 0, false, nil
	}
	mid := int((int64(len(p)-head) / ss) * ss)
	if head > 0 {
		if err := v.readPartial(p[:head], off); err != nil {
			return 0, true, err
		}
	}
	if k, err := v.wholeSectors(p[head:head+mid], off+int64(head), false); err != nil {
		return head + k, true, err
	}
	if tail := p[head+mid:]; len(tail) > 0 {
		if err := v.readPartial(tail, off+int64(head+mid)); err != nil {
			return head + mid, true, err
		}
	}
	return len(p), true, nil
}

// readPartial fills p (within one sector) from payload byte off.
func (v *Volume) readPartial(p []byte, off int64) error {
	sec := volumeSector.Get().(*[maxSectorSize]byte)
	defer volumeSector.Put(sec)
	defer clear(sec[:])
	if err := v.readSectors(sec[:v.ss], off/v.ss); err != nil {
		return err
	}
	copy(p, sec[off%v.ss:v.ss])
	return nil
}

// writeWholeRange is WriteAt for a range holding at least one whole sector (ok false
// otherwise). The partial sectors at either end go through writeChunk, which serialises
// their read-modify-write; the whole sectors between are encrypted and written in chunks.
func (v *Volume) writeWholeRange(p []byte, off int64) (n int, ok bool, err error) {
	ss := v.ss
	head := int((ss - off%ss) % ss)
	if int64(head)+ss > int64(len(p)) {
		return 0, false, nil
	}
	mid := int((int64(len(p)-head) / ss) * ss)
	if head > 0 {
		if err := v.writeChunk(p[:head], off/ss, int(off%ss), off+int64(head)); err != nil {
			return 0, true, err
		}
	}
	if k, err := v.wholeSectors(p[head:head+mid], off+int64(head), true); err != nil {
		return head + k, true, err
	}
	if tail := p[head+mid:]; len(tail) > 0 {
		start := off + int64(head+mid)
		if err := v.writeChunk(tail, start/ss, 0, start+int64(len(tail))); err != nil {
			return head + mid, true, err
		}
	}
	return len(p), true, nil
}
