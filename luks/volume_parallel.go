package luks

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// Large Volume reads and writes are split into runs of whole sectors that cores handle side
// by side: each run is read (or written) and decrypted (or encrypted) by one goroutine, so
// both the copy from the device and the cipher scale with the cores. The goroutines are a
// process-wide pool started on demand, at most GOMAXPROCS−1 of them (the calling goroutine
// takes a run itself) and never more than maxVolumeWorkers; a call hands out runs as values
// on a channel and waits on a pooled job, so it allocates nothing.

const (
	// parallelRun is the least a run is worth handing to another core: the hand-off (a
	// channel send and a wake-up, around a microsecond) would cost more than the crypto it
	// saves on less (64 KiB of AES-XTS is ~10 µs on one core).
	parallelRun = 64 << 10
	// writeScratch bounds the pooled buffer one write run encrypts into: p is the caller's
	// plaintext and stays untouched.
	writeScratch = 256 << 10 // a multiple of every sector size
	// maxSectorSize is the largest LUKS2 sector size (one partial sector's buffer).
	maxSectorSize = 4096
	// maxVolumeWorkers caps the pool whatever GOMAXPROCS says.
	maxVolumeWorkers = 256
)

// volumeJob is one ReadAt/WriteAt call's share of the pool: runs report their first failure
// here, the caller waits on wg.
type volumeJob struct {
	wg    sync.WaitGroup
	mu    sync.Mutex
	errAt int // offset in the call's buffer of the earliest failed run; -1 if none
	err   error
}

func (j *volumeJob) fail(at int, err error) {
	j.mu.Lock()
	if j.errAt < 0 || at < j.errAt {
		j.errAt, j.err = at, err
	}
	j.mu.Unlock()
}

// volumeRun is the unit of work: len(p) bytes of whole sectors from sector first.
type volumeRun struct {
	v     *Volume
	p     []byte
	first int64
	at    int // offset of p in the call's buffer
	write bool
	job   *volumeJob
}

var (
	volumeJobs    = sync.Pool{New: func() any { return new(volumeJob) }}
	volumeScratch = sync.Pool{New: func() any { return new([writeScratch]byte) }}
	volumeSector  = sync.Pool{New: func() any { return new([maxSectorSize]byte) }}
	volumeRuns    = make(chan volumeRun, maxVolumeWorkers)
	volumeWorkers atomic.Int32
	volumeStart   sync.Mutex
)

// volumeWorkersFor starts workers until n run (n ≤ maxVolumeWorkers). Workers never exit:
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
			for r := range volumeRuns {
				r.do()
				r.job.wg.Done()
			}
		}()
	}
}

func (r volumeRun) do() {
	var err error
	if r.write {
		err = r.v.writeWhole(r.p, r.first)
	} else {
		err = r.v.readSectors(r.p, r.first)
	}
	if err != nil {
		r.job.fail(r.at, err)
	}
}

// writeWhole encrypts the whole sectors p (plaintext, left untouched) from sector first and
// writes them, through a pooled scratch buffer.
func (v *Volume) writeWhole(p []byte, first int64) error {
	buf := volumeScratch.Get().(*[writeScratch]byte)
	defer volumeScratch.Put(buf)
	for done := 0; done < len(p); {
		n := min(len(p)-done, writeScratch)
		s := first + int64(done)/v.ss
		// IVs count 512-byte units from iv_tweak whatever the sector size (v.crypt).
		if err := v.c.CryptLarge(buf[:n], p[done:done+n], int(v.ss), v.tweak+uint64(s)*uint64(v.ss/SectorSize), true); err != nil {
			return err
		}
		if err := writeFull(v.data, buf[:n], v.off+s*v.ss); err != nil {
			return fmt.Errorf("writing payload sector %d: %w", s, err)
		}
		done += n
	}
	return nil
}

// wholeSectors runs the whole sectors p (payload byte off, sector-aligned) as runs on the
// pool, the calling goroutine taking the first. It returns how many bytes of p are done
// before the earliest failure, and that failure.
func (v *Volume) wholeSectors(p []byte, off int64, write bool) (int, error) {
	ss := int(v.ss)
	nsec := len(p) / ss
	runs := min(runtime.GOMAXPROCS(0), maxVolumeWorkers, max(1, len(p)/parallelRun))
	per := (nsec + runs - 1) / runs * ss
	job := volumeJobs.Get().(*volumeJob)
	job.errAt, job.err = -1, nil
	if runs > 1 {
		volumeWorkersFor(runs - 1)
	}
	for at := per; at < len(p); at += per {
		end := min(at+per, len(p))
		job.wg.Add(1)
		volumeRuns <- volumeRun{v: v, p: p[at:end], first: (off + int64(at)) / v.ss, at: at, write: write, job: job}
	}
	volumeRun{v: v, p: p[:min(per, len(p))], first: off / v.ss, at: 0, write: write, job: job}.do()
	job.wg.Wait()
	done, err := len(p), job.err
	if err != nil {
		done = job.errAt
	}
	job.err = nil
	volumeJobs.Put(job)
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
// their read-modify-write; the whole sectors between are encrypted and written by runs.
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
