package luks

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/luks/sector"
)

// withProcs runs the test with GOMAXPROCS n, so that a 2-core machine still splits into as
// many runs as a large instance would.
func withProcs(t *testing.T, n int) {
	old := runtime.GOMAXPROCS(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
}

// Large unaligned writes and reads, split into runs on the worker pool, against the cipher
// applied serially to the raw device: same bytes on disk, same plaintext back.
func TestVolumeParallelRuns(t *testing.T) {
	withProcs(t, 8)
	d := &memDev{b: make([]byte, 8<<20)}
	h, vk, err := Format(t.Context(), d, []byte("p"), FormatOptions{ForceIterations: 1000})
	require.NoError(t, err)
	v, err := NewVolume(d, h, vk)
	require.NoError(t, err)
	defer v.Close()
	c, err := sector.New(h.CipherName, h.CipherMode, vk.b)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct{ off, n int64 }{{0, 1 << 20}, {100, 5<<20 + 77}, {512, v.Size() - 512}, {511, 3 * volumeParChunk}, {0, v.Size()}} {
		pt := make([]byte, tc.n)
		for i := range pt {
			pt[i] = byte(rng.Uint32())
		}
		keep := append([]byte(nil), pt...)
		w, err := v.WriteAt(pt, tc.off)
		require.NoError(t, err)
		require.Equal(t, len(pt), w)
		require.Equal(t, keep, pt, "WriteAt must not touch the caller's plaintext")
		// Independent check: decrypt the covering sectors of the raw device serially.
		first, last := tc.off/SectorSize, (tc.off+tc.n+SectorSize-1)/SectorSize
		raw := append([]byte(nil), d.b[h.PayloadOffsetBytes()+first*SectorSize:h.PayloadOffsetBytes()+last*SectorSize]...)
		c.Decrypt(raw, raw, uint64(first))
		require.Equal(t, pt, raw[tc.off-first*SectorSize:][:tc.n], "off %d n %d: device contents", tc.off, tc.n)
		got := make([]byte, tc.n)
		r, err := v.ReadAt(got, tc.off)
		require.NoError(t, err)
		require.Equal(t, len(got), r)
		require.Equal(t, pt, got, "off %d n %d: read back", tc.off, tc.n)
	}
	require.GreaterOrEqual(t, int(volumeWorkers.Load()), 7, "runs were spread over the pool")
}

// A whole-sector ReadAt or WriteAt allocates nothing, however large: no chunk buffer, no
// goroutine per call.
func TestVolumeWholeSectorsNoAllocs(t *testing.T) {
	withProcs(t, 4)
	d, h, vk := formatted(t, FormatOptions{})
	v, err := NewVolume(d, h, vk)
	require.NoError(t, err)
	defer v.Close()
	buf := make([]byte, 1<<20)
	for _, n := range []int{SectorSize, 8 * SectorSize, len(buf)} {
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := v.WriteAt(buf[:n], 4096); err != nil {
				t.Fatal(err)
			}
			if _, err := v.ReadAt(buf[:n], 4096); err != nil {
				t.Fatal(err)
			}
		})
		require.Zero(t, allocs, "%d bytes", n)
	}
}

var errInjected = errors.New("injected read error")

// failingDev is the real in-memory device with reads from failAt on failing: a fault the
// device cannot be made to produce.
type failingDev struct {
	*memDev
	failAt int64
}

func (f *failingDev) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.failAt {
		return 0, errInjected
	}
	return f.memDev.ReadAt(p, off)
}

// A run that fails makes ReadAt report the failure and a count that stops before the failed
// run, whatever the other runs did; the bytes it counts are right.
func TestVolumeParallelReadError(t *testing.T) {
	withProcs(t, 4)
	d, h, vk := formatted(t, FormatOptions{})
	v, err := NewVolume(d, h, vk)
	require.NoError(t, err)
	defer v.Close()
	want := make([]byte, 2<<20)
	_, err = v.ReadAt(want, 0)
	require.NoError(t, err)
	v.data = &failingDev{memDev: d, failAt: h.PayloadOffsetBytes() + 1<<20 + 3*SectorSize}
	got := make([]byte, len(want))
	n, err := v.ReadAt(got, 0)
	require.ErrorIs(t, err, errInjected)
	require.Less(t, n, 1<<20+3*SectorSize)
	require.Equal(t, want[:n], got[:n])
}

// volumeUnderTest formats an in-memory device of payload bytes as LUKS1 (512-byte sectors)
// or LUKS2 with the given sector size, and opens its Volume; ref is an independent cipher
// of the same key for serial checks.
func volumeUnderTest(t *testing.T, luks2 bool, sectorSize int, payload int64) (*memDev, *Volume, Metadata, *sector.Cipher) {
	t.Helper()
	d := &memDev{b: make([]byte, payload+16<<20)}
	var h Metadata
	var vk *VolumeKey
	if luks2 {
		_, k, err := FormatLUKS2(t.Context(), d, []byte("p"), LUKS2FormatOptions{PBKDF: "pbkdf2", ForceIterations: 1000, SectorSize: sectorSize})
		require.NoError(t, err)
		h2, err := ReadHeader2(d)
		require.NoError(t, err)
		h, vk = h2, k
	} else {
		h1, k, err := Format(t.Context(), d, []byte("p"), FormatOptions{ForceIterations: 1000})
		require.NoError(t, err)
		h, vk = h1, k
	}
	v, err := NewVolume(d, h, vk)
	require.NoError(t, err)
	t.Cleanup(func() { v.Close() })
	require.Equal(t, int64(sectorSize), v.ss)
	seg, err := h.DataSegment()
	require.NoError(t, err)
	name, mode, err := sector.SplitSpec(seg.Cipher)
	require.NoError(t, err)
	spec, err := sector.ParseSpec(name, mode)
	require.NoError(t, err)
	ref, err := sector.NewFromSpec(spec, vk.b)
	require.NoError(t, err)
	return d, v, h, ref
}

// Random unaligned writes and reads, large ones split over seven helpers, against a byte
// model; then the whole device decrypted serially by an independent cipher equals the
// model, and a parallel read equals a serial (GOMAXPROCS 1) one. LUKS1 and LUKS2, 512- and
// 4096-byte sectors.
func TestVolumeParallelMatchesSerial(t *testing.T) {
	for _, tc := range []struct {
		name  string
		luks2 bool
		ss    int
	}{{"luks1-512", false, 512}, {"luks2-512", true, 512}, {"luks2-4096", true, 4096}} {
		t.Run(tc.name, func(t *testing.T) {
			withProcs(t, 8)
			d, v, h, ref := volumeUnderTest(t, tc.luks2, tc.ss, 6<<20)
			rng := rand.New(rand.NewPCG(uint64(tc.ss), 7))
			model := make([]byte, v.Size())
			_, err := v.ReadAt(model, 0)
			require.NoError(t, err)
			for i := 0; i < 60; i++ {
				off := rng.Int64N(v.Size())
				n := int(min(int64(rng.IntN(3<<20)), v.Size()-off))
				if i%3 == 0 { // sector-aligned at both ends: whole sectors only
					off = off / v.ss * v.ss
					n = int(min(int64(n), v.Size()-off)) / int(v.ss) * int(v.ss)
				}
				buf := make([]byte, n)
				if rng.IntN(2) == 0 {
					for j := range buf {
						buf[j] = byte(rng.Uint32())
					}
					w, err := v.WriteAt(buf, off)
					require.NoError(t, err)
					require.Equal(t, n, w)
					copy(model[off:], buf)
				} else {
					r, err := v.ReadAt(buf, off)
					require.NoError(t, err)
					require.Equal(t, n, r)
					require.Equal(t, model[off:off+int64(n)], buf, "read %d bytes at %d", n, off)
				}
			}
			seg, err := h.DataSegment()
			require.NoError(t, err)
			raw := append([]byte(nil), d.b[seg.Offset:seg.Offset+v.Size()]...)
			require.NoError(t, ref.CryptLarge(raw, append([]byte(nil), raw...), tc.ss, seg.IVTweak, false))
			require.Equal(t, model, raw, "device decrypted serially")
			par := make([]byte, v.Size())
			_, err = v.ReadAt(par, 0)
			require.NoError(t, err)
			runtime.GOMAXPROCS(1)
			ser := make([]byte, v.Size())
			_, err = v.ReadAt(ser, 0)
			require.NoError(t, err)
			require.Equal(t, ser, par, "parallel and serial reads")
			require.Equal(t, model, par)
		})
	}
}

// recordingDev notes the largest read and write the Volume makes of the device.
type recordingDev struct {
	*memDev
	maxRead, maxWrite atomic.Int64
}

func (r *recordingDev) ReadAt(p []byte, off int64) (int, error) {
	for m := r.maxRead.Load(); int64(len(p)) > m && !r.maxRead.CompareAndSwap(m, int64(len(p))); m = r.maxRead.Load() {
	}
	return r.memDev.ReadAt(p, off)
}

func (r *recordingDev) WriteAt(p []byte, off int64) (int, error) {
	for m := r.maxWrite.Load(); int64(len(p)) > m && !r.maxWrite.CompareAndSwap(m, int64(len(p))); m = r.maxWrite.Load() {
	}
	return r.memDev.WriteAt(p, off)
}

// A large ReadAt or WriteAt touches the device in chunks of at most volumeParChunk, on one
// core or several: each chunk is decrypted while it is still in that core's cache (and
// below the 1 MiB from which Go's copy streams past the cache), so the range crosses
// memory once.
func TestVolumeChunksFitCache(t *testing.T) {
	for _, procs := range []int{1, 2, 8} {
		withProcs(t, procs)
		d, v, _, _ := volumeUnderTest(t, true, 4096, 8<<20)
		rec := &recordingDev{memDev: d}
		v.data = rec
		buf := make([]byte, 8<<20)
		_, err := v.WriteAt(buf, 0)
		require.NoError(t, err)
		_, err = v.ReadAt(buf, 0)
		require.NoError(t, err)
		require.Equal(t, int64(volumeParChunk), rec.maxRead.Load(), "GOMAXPROCS %d", procs)
		require.Equal(t, int64(volumeParChunk), rec.maxWrite.Load(), "GOMAXPROCS %d", procs)
	}
}

// gatedDev blocks reads that reach gate until open is closed.
type gatedDev struct {
	*memDev
	gate    int64
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
}

func (g *gatedDev) ReadAt(p []byte, off int64) (int, error) {
	if off <= g.gate && g.gate < off+int64(len(p)) {
		g.once.Do(func() { close(g.entered) })
		<-g.open
	}
	return g.memDev.ReadAt(p, off)
}

// A call never waits for a helper that is busy elsewhere (blocked on a slow device, or not
// scheduled on a loaded machine): with the only helper stuck in another call's chunk, a
// large read still completes on the calling goroutine.
func TestVolumeNoWaitForBusyHelper(t *testing.T) {
	withProcs(t, 2)
	d, v, h, _ := volumeUnderTest(t, false, 512, 8<<20)
	po := h.(*Header).PayloadOffsetBytes()
	g := &gatedDev{memDev: d, gate: po + 3<<20, entered: make(chan struct{}), open: make(chan struct{})}
	v.data = g
	var release sync.Once
	// Before v.Close (cleanups run last first), which waits for the blocked read.
	t.Cleanup(func() { release.Do(func() { close(g.open) }) })
	first := make(chan error, 1)
	go func() {
		_, err := v.ReadAt(make([]byte, 4<<20), 0) // its chunk at 3 MiB blocks
		first <- err
	}()
	<-g.entered
	second := make(chan error, 1)
	go func() {
		_, err := v.ReadAt(make([]byte, 2<<20), 5<<20)
		second <- err
	}()
	select {
	case err := <-second:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("a read waited for a helper blocked in another call")
	}
	release.Do(func() { close(g.open) })
	require.NoError(t, <-first)
}
