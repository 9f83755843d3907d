package luks

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/luks/sector"
)

// TestPBKDF2MatchesStdlib: the cancellable PBKDF2 is byte-identical to crypto/pbkdf2.
func TestPBKDF2MatchesStdlib(t *testing.T) {
	for _, hn := range []string{"sha1", "sha224", "sha256", "sha384", "sha512", "ripemd160", "whirlpool"} {
		nh, err := sector.NewHash(hn)
		require.NoError(t, err)
		for _, iter := range []uint32{1, 2, 1000, pbkdf2CheckEvery + 3} {
			for _, n := range []int{16, 20, 32, 64, 100} {
				t.Run(fmt.Sprintf("%s-%d-%d", hn, iter, n), func(t *testing.T) {
					pass, salt := []byte("pass\x00word"), []byte("NaCl-32-bytes-of-salt-0123456789")
					got, err := pbkdf2Key(context.Background(), nh, pass, salt, iter, n)
					require.NoError(t, err)
					want, err := pbkdf2.Key(nh, string(pass), salt, int(iter), n)
					require.NoError(t, err)
					assert.Equal(t, want, got)
				})
			}
		}
	}
	// RFC 6070 test vector (sha1, 4096 iterations).
	nh, _ := sector.NewHash("sha1")
	got, err := pbkdf2Key(context.Background(), nh, []byte("password"), []byte("salt"), 4096, 20)
	require.NoError(t, err)
	assert.Equal(t, "4b007901b765489abead49d926f721d065a429c1", hex.EncodeToString(got))
	_, err = pbkdf2Key(context.Background(), nh, nil, nil, 0, 20)
	assert.ErrorIs(t, err, ErrInvalidParameter)
}

// TestPBKDF2Cancel: a derivation demanding 2^32-1 iterations (an hour of CPU) returns as soon
// as the context is cancelled.
func TestPBKDF2Cancel(t *testing.T) {
	nh, _ := sector.NewHash("sha256")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err := pbkdf2Key(ctx, nh, []byte("p"), []byte("s"), ^uint32(0), 32)
	require.ErrorIs(t, err, context.Canceled)

	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = pbkdf2Key(ctx, nh, []byte("p"), []byte("s"), ^uint32(0), 32)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestIterationCounts(t *testing.T) {
	nh, _ := sector.NewHash("sha256")
	ctx := context.Background()
	_, _, err := iterationCounts(ctx, nh, 64, 0, 999)
	require.ErrorIs(t, err, ErrInvalidParameter)
	s, m, err := iterationCounts(ctx, nh, 64, 0, 5000)
	require.NoError(t, err)
	assert.Equal(t, [2]uint32{5000, 1000}, [2]uint32{s, m})

	// Calibration with a short target: the slot gets the measured count (at least 1000) and
	// the MK digest the count for 125 ms (at least 1000), as in cryptsetup 2.x.
	target := 50 * time.Millisecond
	n, err := benchmarkPBKDF2(ctx, nh, 64, target)
	require.NoError(t, err)
	assert.Greater(t, n, uint32(1000), "any machine does more than 20000 iterations/s")
	s, m, err = iterationCounts(ctx, nh, 64, target, 0)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, s, uint32(minIterations))
	assert.GreaterOrEqual(t, m, uint32(minIterations))
	if s > 1000 {
		// MK count = slot count × 125 / 50, within the rounding of one conversion.
		assert.InDelta(t, float64(s)*125/50, float64(m), 1)
	}
	_, err = benchmarkPBKDF2(ctx, nh, 64, 0)
	assert.ErrorIs(t, err, ErrInvalidParameter)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = benchmarkPBKDF2(cctx, nh, 64, 10*time.Second)
	assert.ErrorIs(t, err, context.Canceled)
}

// TestFormatCalibrated: a calibrated format (short iteration time) opens with cryptsetup.
func TestFormatCalibrated(t *testing.T) {
	dir := t.TempDir()
	img := newImage(t, dir, "cal.img", 8<<20)
	f := openRW(t, img)
	h, _, err := Format(context.Background(), f, []byte("calibrated"), FormatOptions{IterTime: 50 * time.Millisecond, Hash: "sha1"})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, h.Keyslots[0].Iterations, uint32(1000))
	assert.GreaterOrEqual(t, h.MKDigestIterations, uint32(1000))
	testPass(t, img, writeKeyFile(t, dir, "k", []byte("calibrated")), 0, true)
}

func TestAFSplitMerge(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{1})
	for _, hn := range []string{"sha1", "sha256", "sha512", "ripemd160", "whirlpool", "sha224"} {
		nh, err := sector.NewHash(hn)
		require.NoError(t, err)
		for _, kb := range []int{16, 20, 32, 48, 64, 65} {
			key := make([]byte, kb)
			rng.Read(key)
			split, err := afSplit(key, Stripes, nh, rng)
			require.NoError(t, err)
			require.Len(t, split, kb*Stripes)
			assert.Equal(t, key, afMerge(split, kb, Stripes, nh), "%s %d", hn, kb)
			// Any damaged stripe destroys the key.
			split[kb*1234] ^= 1
			assert.NotEqual(t, key, afMerge(split, kb, Stripes, nh))
		}
	}
	// diffuse of a sha1 64-byte buffer: three full blocks and a 4-byte tail hashed with
	// counter 3 (the index of the partial block).
	nh, _ := sector.NewHash("sha1")
	buf := bytes.Repeat([]byte{0xab}, 64)
	want := make([]byte, 0, 64)
	for i := 0; i < 4; i++ {
		h := nh()
		h.Write([]byte{0, 0, 0, byte(i)})
		h.Write(buf[i*20 : min((i+1)*20, 64)])
		want = append(want, h.Sum(nil)[:min(20, 64-i*20)]...)
	}
	diffuse(nh(), buf)
	assert.Equal(t, want, buf)
	_, err := afSplit(nil, Stripes, nh, rng)
	assert.ErrorIs(t, err, ErrInvalidParameter)
}
