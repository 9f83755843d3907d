package luks

import (
	"context"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// Argon2 work limits for hostile headers. golang.org/x/crypto/argon2 allocates the whole
// memory cost at once and cannot be interrupted, so the cost is bounded before the call.
const (
	// DefaultMaxArgon2Memory is cryptsetup's own ceiling for argon2 memory (4 GiB, in KiB).
	DefaultMaxArgon2Memory = 4 << 20
	// DefaultMaxArgon2Work bounds memory times passes (KiB·passes): 16 times cryptsetup's
	// default cost of 1 GiB with a 2 s calibration (about 4 passes).
	DefaultMaxArgon2Work = 1 << 26
)

// argon2Slack is the room beyond the memory cost itself that the Go runtime needs to map
// one slice of that size (a 64 MiB heap arena plus its metadata) and keep running.
func argon2Slack(memory int64) uint64 { return 64<<10 + uint64(memory)/64 }

// argon2Key derives keyLen bytes with argon2i or argon2id (version 0x13, no secret or
// associated data, as cryptsetup's libargon2 call). The parameters come from a header and
// are checked against libargon2's own limits first: x/crypto/argon2 panics on zero time or
// parallelism and silently raises a too-small memory cost, where libargon2 refuses.
func argon2Key(ctx context.Context, typ string, pass, salt []byte, time, memory, cpus int64, keyLen int, maxMem uint32, maxWork uint64) ([]byte, error) {
	if maxMem == 0 {
		maxMem = DefaultMaxArgon2Memory
	}
	if maxWork == 0 {
		maxWork = DefaultMaxArgon2Work
	}
	switch {
	case time < 1 || time > 1<<32-1:
		return nil, fmt.Errorf("%w: argon2 time cost %d", ErrCorruptKeyslot, time)
	case cpus < 1 || cpus > 1<<24-1: // libargon2's ARGON2_MAX_LANES
		return nil, fmt.Errorf("%w: argon2 parallelism %d", ErrCorruptKeyslot, cpus)
	case cpus > 255:
		// Valid for libargon2 (cryptsetup opens it), but x/crypto/argon2 takes a uint8.
		return nil, fmt.Errorf("%w: argon2 parallelism %d (golang.org/x/crypto/argon2 supports 1..255)", ErrUnsupportedKDF, cpus)
	case memory < 8*cpus || memory > 1<<32-1:
		return nil, fmt.Errorf("%w: argon2 memory cost %d KiB for %d lanes", ErrCorruptKeyslot, memory, cpus)
	case keyLen < 4:
		return nil, fmt.Errorf("%w: argon2 output of %d bytes", ErrCorruptKeyslot, keyLen)
	case len(salt) < 8:
		return nil, fmt.Errorf("%w: argon2 salt of %d bytes", ErrCorruptKeyslot, len(salt))
	}
	if uint64(memory) > uint64(maxMem) {
		return nil, fmt.Errorf("%w: argon2 needs %d KiB of memory, limit %d KiB", ErrWorkLimit, memory, maxMem)
	}
	if w := uint64(memory) * uint64(time); w > maxWork {
		return nil, fmt.Errorf("%w: argon2 work %d KiB·passes, limit %d", ErrWorkLimit, w, maxWork)
	}
	if avail, ok := availableMemoryKiB(); ok && uint64(memory)+argon2Slack(memory) > avail {
		return nil, fmt.Errorf("%w: argon2 needs %d KiB, %d KiB available (MemAvailable, RLIMIT_AS, cgroup memory.max)",
			ErrOutOfMemory, memory, avail)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if typ == "argon2i" {
		return argon2.Key(pass, salt, uint32(time), uint32(memory), uint8(cpus), uint32(keyLen)), nil
	}
	return argon2.IDKey(pass, salt, uint32(time), uint32(memory), uint8(cpus), uint32(keyLen)), nil
}
