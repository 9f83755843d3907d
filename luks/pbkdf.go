package luks

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash"
	"time"
)

// pbkdf2CheckEvery is how many PRF iterations run between two looks at the context: small
// enough that cancelling a hostile 2^32-iteration slot returns within milliseconds, large
// enough that the check costs nothing measurable.
const pbkdf2CheckEvery = 1 << 12

// pbkdf2Key is PBKDF2 (RFC 8018 §5.2) with HMAC over newHash. It is computed here rather
// than with crypto/pbkdf2 for two reasons: crypto/pbkdf2 takes the password as a string (an
// unzeroable copy of the secret) and cannot be interrupted, while a header may demand
// billions of iterations. Its HMAC (prfHMAC) wipes every key-derived buffer, which
// crypto/hmac does not. The output is byte-identical to crypto/pbkdf2 (tested).
func pbkdf2Key(ctx context.Context, newHash func() hash.Hash, password, salt []byte, iter uint32, keyLen int) ([]byte, error) {
	if iter == 0 {
		return nil, fmt.Errorf("%w: PBKDF2 with 0 iterations", ErrInvalidParameter)
	}
	if keyLen <= 0 {
		return nil, fmt.Errorf("%w: PBKDF2 output length %d", ErrInvalidParameter, keyLen)
	}
	prf := newPRF(newHash, password)
	defer prf.wipe()
	hLen := prf.Size()
	nBlocks := (keyLen + hLen - 1) / hLen
	dk := make([]byte, 0, nBlocks*hLen)
	u := make([]byte, 0, hLen)
	t := make([]byte, hLen)
	defer clear(u[:hLen])
	defer clear(t)
	var ctr [4]byte
	for block := 1; block <= nBlocks; block++ {
		binary.BigEndian.PutUint32(ctr[:], uint32(block))
		u = prf.mac(u[:0], salt, ctr[:])
		copy(t, u)
		for n := uint32(2); n <= iter; n++ {
			if n%pbkdf2CheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					clear(dk[:cap(dk)])
					return nil, err
				}
			}
			u = prf.mac(u[:0], u, nil)
			for i := range t {
				t[i] ^= u[i]
			}
		}
		dk = append(dk, t...)
	}
	clear(dk[keyLen:])
	return dk[:keyLen], nil
}

// benchmarkPBKDF2 measures PBKDF2 with the real output length the way cryptsetup 2.x does
// (crypt_pbkdf_check: start at 2^15 iterations, grow until one run takes longer than the
// measuring time, then scale; times are CPU times as with cryptsetup's getrusage) and returns the iteration count that takes target. The
// measuring time is cryptsetup's 500 ms, shortened to target when target is shorter so that
// short iteration times (tests) stay short.
func benchmarkPBKDF2(ctx context.Context, newHash func() hash.Hash, keyLen int, target time.Duration) (uint32, error) {
	if target <= 0 {
		return 0, fmt.Errorf("%w: iteration time %v", ErrInvalidParameter, target)
	}
	measure := min(500*time.Millisecond, target)
	iter := uint32(1 << 15)
	lockThread()
	defer unlockThread()
	for step := 0; ; step++ {
		el, err := timePBKDF2(ctx, newHash, iter, keyLen)
		if err != nil {
			return 0, err
		}
		if el > measure {
			n := float64(iter) * float64(target) / float64(el)
			if n > float64(^uint32(0)) {
				return 0, fmt.Errorf("%w: iteration time %v needs more than 2^32 PBKDF2 iterations", ErrInvalidParameter, target)
			}
			return uint32(n), nil
		}
		if step > 10 || iter >= 1<<31 {
			return 0, fmt.Errorf("%w: PBKDF2 benchmark did not converge", ErrInvalidParameter)
		}
		switch ms := el.Milliseconds(); {
		case ms <= 62:
			iter <<= 4
		case ms <= 125:
			iter <<= 3
		case ms <= 250:
			iter <<= 2
		default:
			iter <<= 1
		}
		if iter == 0 {
			iter = 1 << 31
		}
	}
}

// timePBKDF2 runs one benchmark derivation and returns its CPU time (wall time where the
// thread CPU clock is unavailable). The caller locks the OS thread.
func timePBKDF2(ctx context.Context, newHash func() hash.Hash, iter uint32, keyLen int) (time.Duration, error) {
	c0, cpu := threadCPUTime()
	w0 := time.Now()
	dk, err := pbkdf2Key(ctx, newHash, []byte("foo"), []byte("bar"), iter, keyLen)
	if err != nil {
		return 0, err
	}
	clear(dk)
	if c1, ok := threadCPUTime(); cpu && ok {
		return c1 - c0, nil
	}
	return time.Since(w0), nil
}

// iterationCounts returns the key-slot and MK-digest iteration counts cryptsetup 2.x would
// choose: with force, slot = force (at least 1000) and MK = 1000; otherwise the benchmark
// rate scaled to iterTime for the slot (at least 1000) and to 125 ms for the MK digest (at
// least 1000).
func iterationCounts(ctx context.Context, newHash func() hash.Hash, keyLen int, iterTime time.Duration, force uint32) (slot, mk uint32, err error) {
	if force != 0 {
		if force < minIterations {
			return 0, 0, fmt.Errorf("%w: forced iteration count is too low for pbkdf2 (minimum is %d)", ErrInvalidParameter, minIterations)
		}
		return force, minIterations, nil
	}
	if iterTime == 0 {
		iterTime = DefaultIterTime
	}
	n, err := benchmarkPBKDF2(ctx, newHash, keyLen, iterTime)
	if err != nil {
		return 0, 0, err
	}
	slot = max(n, minIterations)
	mkf := float64(n) * mkdIterationsMS / float64(iterTime.Milliseconds())
	if iterTime < time.Millisecond {
		mkf = float64(n) * float64(mkdIterationsMS*time.Millisecond) / float64(iterTime)
	}
	if mkf > float64(^uint32(0)) {
		return 0, 0, fmt.Errorf("%w: MK digest iteration count overflows", ErrInvalidParameter)
	}
	mk = max(uint32(mkf), minIterations)
	return slot, mk, nil
}

// DefaultIterTime is cryptsetup's LUKS1 --iter-time default.
const DefaultIterTime = 2 * time.Second

// DefaultMaxIterations is the work limit, in PBKDF2 block-iterations (see
// UnlockOptions.MaxIterations), Unlock applies when UnlockOptions.MaxIterations is 0: about
// half a minute of sha256 PBKDF2 on a current x86 core, far above what cryptsetup chooses
// for its default 2 s, far below the 2^32-1 iterations times up to 210 blocks a hostile
// header may ask for.
const DefaultMaxIterations = 1 << 27
