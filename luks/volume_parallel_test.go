package luks

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"

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
	for _, tc := range []struct{ off, n int64 }{{0, 1 << 20}, {100, 5<<20 + 77}, {512, v.Size() - 512}, {511, 3 * parallelRun}, {0, v.Size()}} {
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

// BenchmarkVolumeLarge reads and writes 4 MiB per call; run with -cpu 1,2,… for the scaling
// across cores (each run covers at least parallelRun bytes).
func BenchmarkVolumeLarge(b *testing.B) {
	d := &memDev{b: make([]byte, 8<<20)}
	h, vk, err := Format(b.Context(), d, []byte("p"), FormatOptions{ForceIterations: 1000})
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewVolume(d, h, vk)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	buf := make([]byte, 4<<20)
	b.Run("read", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			if _, err := v.ReadAt(buf, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			if _, err := v.WriteAt(buf, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
