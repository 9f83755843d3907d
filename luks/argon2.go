package luks

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"runtime"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/blake2b"
)

// Argon2 work limits for hostile headers. golang.org/x/crypto/argon2 allocates the whole
// memory cost at once and cannot be interrupted, so the cost is bounded before the call;
// the same bounds hold for argon2Lanes, the implementation for more than 255 lanes.
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
	if cpus > 255 {
		// libargon2 (and so cryptsetup 2.6.1 on unlock) takes up to 2^24-1 lanes;
		// x/crypto/argon2 takes a uint8.
		return argon2Lanes(ctx, typ, pass, salt, uint32(time), uint32(memory), uint32(cpus), uint32(keyLen))
	}
	if typ == "argon2i" {
		return argon2.Key(pass, salt, uint32(time), uint32(memory), uint8(cpus), uint32(keyLen)), nil
	}
	return argon2.IDKey(pass, salt, uint32(time), uint32(memory), uint8(cpus), uint32(keyLen)), nil
}

// argon2Lanes is Argon2 version 0x13 as RFC 9106 specifies it (sections 3.2 to 3.6),
// written here for the parallelism x/crypto/argon2 cannot take (256 … 2^24-1 lanes, which
// libargon2 accepts). It is used only there, so the x/crypto code keeps its speed for
// every header cryptsetup writes (at most 4 lanes). The caller has checked the
// parameters and the memory limits; the lanes of each slice run on GOMAXPROCS
// goroutines and ctx is honoured between slices. The memory is wiped before returning.
func argon2Lanes(ctx context.Context, typ string, pass, salt []byte, passes, memory, lanes, keyLen uint32) ([]byte, error) {
	y := uint32(argon2TypeID)
	if typ == "argon2i" {
		y = argon2TypeI
	}
	// H0 (section 3.2, step 1), with no secret and no associated data.
	h0in := make([]byte, 0, 40+len(pass)+len(salt)+8)
	for _, v := range []uint32{lanes, keyLen, memory, passes, 0x13, y, uint32(len(pass))} {
		h0in = binary.LittleEndian.AppendUint32(h0in, v)
	}
	h0in = append(h0in, pass...)
	h0in = binary.LittleEndian.AppendUint32(h0in, uint32(len(salt)))
	h0in = append(h0in, salt...)
	h0in = binary.LittleEndian.AppendUint32(h0in, 0) // K
	h0in = binary.LittleEndian.AppendUint32(h0in, 0) // X
	h0 := blake2b.Sum512(h0in)
	clear(h0in)
	defer clear(h0[:])

	a := &argon2State{lanes: lanes, passes: passes, typ: y}
	a.q = memory / (4 * lanes) * 4 // m' = 4·p·floor(m / 4p) blocks, q = m' / p columns
	a.seg = a.q / 4
	a.mem = make([]argon2Block, uint64(a.q)*uint64(lanes))
	defer clear(a.mem)

	// buf holds key-derived blocks (B[l][0..1], then C): wiped on every return, a
	// cancelled one included.
	var buf [argon2BlockSize]byte
	defer clear(buf[:])
	seed := make([]byte, 0, 72)
	defer clear(seed[:cap(seed)])
	for l := uint32(0); l < lanes; l++ {
		for j := uint32(0); j < 2; j++ {
			seed = append(seed[:0], h0[:]...)
			seed = binary.LittleEndian.AppendUint32(seed, j)
			seed = binary.LittleEndian.AppendUint32(seed, l)
			argon2Hprime(buf[:], seed)
			a.mem[l*a.q+j].load(buf[:])
		}
	}

	workers := min(runtime.GOMAXPROCS(0), int(lanes))
	for r := uint32(0); r < passes; r++ {
		for sl := uint32(0); sl < 4; sl++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			var wg sync.WaitGroup
			next := make(chan uint32, lanes)
			for l := uint32(0); l < lanes; l++ {
				next <- l
			}
			close(next)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for l := range next {
						a.segment(r, sl, l)
					}
				}()
			}
			wg.Wait()
		}
	}

	// Final block C: XOR of every lane's last column (section 3.2, steps 7 and 8).
	c := a.mem[a.q-1]
	for l := uint32(1); l < lanes; l++ {
		c.xor(&a.mem[l*a.q+a.q-1])
	}
	c.store(buf[:])
	clear(c[:])
	out := make([]byte, keyLen)
	argon2Hprime(out, buf[:])
	return out, nil
}

const (
	argon2TypeI     = 1
	argon2TypeID    = 2
	argon2BlockSize = 1024
)

// argon2Block is one 1 KiB memory block as 128 little-endian 64-bit words.
type argon2Block [128]uint64

func (b *argon2Block) load(p []byte) {
	for i := range b {
		b[i] = binary.LittleEndian.Uint64(p[8*i:])
	}
}

func (b *argon2Block) store(p []byte) {
	for i, v := range b {
		binary.LittleEndian.PutUint64(p[8*i:], v)
	}
}

func (b *argon2Block) xor(o *argon2Block) {
	for i := range b {
		b[i] ^= o[i]
	}
}

type argon2State struct {
	mem                        []argon2Block
	lanes, passes, typ, q, seg uint32
}

// argon2Hprime is the variable-length hash H' of section 3.3, filling out.
func argon2Hprime(out, in []byte) {
	var t [4]byte
	binary.LittleEndian.PutUint32(t[:], uint32(len(out)))
	if len(out) <= blake2b.Size {
		h, _ := blake2b.New(len(out), nil) // cannot fail: 1 ≤ size ≤ 64, no key
		h.Write(t[:])
		h.Write(in)
		h.Sum(out[:0])
		return
	}
	h, _ := blake2b.New512(nil)
	h.Write(t[:])
	h.Write(in)
	var v [blake2b.Size]byte
	h.Sum(v[:0])
	n := copy(out, v[:32])
	for len(out)-n > blake2b.Size {
		v = blake2b.Sum512(v[:])
		n += copy(out[n:], v[:32])
	}
	last, _ := blake2b.New(len(out)-n, nil)
	last.Write(v[:])
	last.Sum(out[n:n])
	clear(v[:])
}

// argon2Mix is the addition of GB (section 3.6) with the multiplication added:
// a + b + 2·trunc(a)·trunc(b), trunc keeping the low 32 bits.
func argon2Mix(a, b uint64) uint64 {
	return a + b + 2*(a&0xffffffff)*(b&0xffffffff)
}

// argon2P is the permutation P of section 3.6 on 16 words (in place): GB on the four
// columns of the 4×4 word matrix, then on its four diagonals. GB is written out on local
// words (the compiler inlines argon2Mix, not a whole GB), which halves the time of a
// version calling GB and copying words through index tables.
func argon2P(p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15 *uint64) {
	v0 := *p0
	v1 := *p1
	v2 := *p2
	v3 := *p3
	v4 := *p4
	v5 := *p5
	v6 := *p6
	v7 := *p7
	v8 := *p8
	v9 := *p9
	v10 := *p10
	v11 := *p11
	v12 := *p12
	v13 := *p13
	v14 := *p14
	v15 := *p15
	v0 = argon2Mix(v0, v4)
	v12 = bits.RotateLeft64(v12^v0, -32)
	v8 = argon2Mix(v8, v12)
	v4 = bits.RotateLeft64(v4^v8, -24)
	v0 = argon2Mix(v0, v4)
	v12 = bits.RotateLeft64(v12^v0, -16)
	v8 = argon2Mix(v8, v12)
	v4 = bits.RotateLeft64(v4^v8, -63)
	v1 = argon2Mix(v1, v5)
	v13 = bits.RotateLeft64(v13^v1, -32)
	v9 = argon2Mix(v9, v13)
	v5 = bits.RotateLeft64(v5^v9, -24)
	v1 = argon2Mix(v1, v5)
	v13 = bits.RotateLeft64(v13^v1, -16)
	v9 = argon2Mix(v9, v13)
	v5 = bits.RotateLeft64(v5^v9, -63)
	v2 = argon2Mix(v2, v6)
	v14 = bits.RotateLeft64(v14^v2, -32)
	v10 = argon2Mix(v10, v14)
	v6 = bits.RotateLeft64(v6^v10, -24)
	v2 = argon2Mix(v2, v6)
	v14 = bits.RotateLeft64(v14^v2, -16)
	v10 = argon2Mix(v10, v14)
	v6 = bits.RotateLeft64(v6^v10, -63)
	v3 = argon2Mix(v3, v7)
	v15 = bits.RotateLeft64(v15^v3, -32)
	v11 = argon2Mix(v11, v15)
	v7 = bits.RotateLeft64(v7^v11, -24)
	v3 = argon2Mix(v3, v7)
	v15 = bits.RotateLeft64(v15^v3, -16)
	v11 = argon2Mix(v11, v15)
	v7 = bits.RotateLeft64(v7^v11, -63)
	v0 = argon2Mix(v0, v5)
	v15 = bits.RotateLeft64(v15^v0, -32)
	v10 = argon2Mix(v10, v15)
	v5 = bits.RotateLeft64(v5^v10, -24)
	v0 = argon2Mix(v0, v5)
	v15 = bits.RotateLeft64(v15^v0, -16)
	v10 = argon2Mix(v10, v15)
	v5 = bits.RotateLeft64(v5^v10, -63)
	v1 = argon2Mix(v1, v6)
	v12 = bits.RotateLeft64(v12^v1, -32)
	v11 = argon2Mix(v11, v12)
	v6 = bits.RotateLeft64(v6^v11, -24)
	v1 = argon2Mix(v1, v6)
	v12 = bits.RotateLeft64(v12^v1, -16)
	v11 = argon2Mix(v11, v12)
	v6 = bits.RotateLeft64(v6^v11, -63)
	v2 = argon2Mix(v2, v7)
	v13 = bits.RotateLeft64(v13^v2, -32)
	v8 = argon2Mix(v8, v13)
	v7 = bits.RotateLeft64(v7^v8, -24)
	v2 = argon2Mix(v2, v7)
	v13 = bits.RotateLeft64(v13^v2, -16)
	v8 = argon2Mix(v8, v13)
	v7 = bits.RotateLeft64(v7^v8, -63)
	v3 = argon2Mix(v3, v4)
	v14 = bits.RotateLeft64(v14^v3, -32)
	v9 = argon2Mix(v9, v14)
	v4 = bits.RotateLeft64(v4^v9, -24)
	v3 = argon2Mix(v3, v4)
	v14 = bits.RotateLeft64(v14^v3, -16)
	v9 = argon2Mix(v9, v14)
	v4 = bits.RotateLeft64(v4^v9, -63)
	*p0 = v0
	*p1 = v1
	*p2 = v2
	*p3 = v3
	*p4 = v4
	*p5 = v5
	*p6 = v6
	*p7 = v7
	*p8 = v8
	*p9 = v9
	*p10 = v10
	*p11 = v11
	*p12 = v12
	*p13 = v13
	*p14 = v14
	*p15 = v15
}

// argon2G is the compression function G of section 3.5: out = P-columns(P-rows(x⊕y)) ⊕
// x ⊕ y, XORed into out's old value when xorInto (passes after the first, version 0x13).
// P runs in place on the block's words: first on the eight rows of 16 consecutive words,
// then on the eight columns of 16-byte registers Q_j, Q_j+8, …, Q_j+56 (words 2j, 2j+1,
// 2j+16, 2j+17, …, 2j+113).
func argon2G(out, x, y *argon2Block, xorInto bool) {
	var r, z argon2Block
	for i := range r {
		r[i] = x[i] ^ y[i]
	}
	z = r
	for i := 0; i < 128; i += 16 {
		w := (*[16]uint64)(z[i : i+16])
		argon2P(&w[0], &w[1], &w[2], &w[3], &w[4], &w[5], &w[6], &w[7],
			&w[8], &w[9], &w[10], &w[11], &w[12], &w[13], &w[14], &w[15])
	}
	for j := 0; j < 16; j += 2 {
		w := (*[114]uint64)(z[j : j+114])
		argon2P(&w[0], &w[1], &w[16], &w[17], &w[32], &w[33], &w[48], &w[49],
			&w[64], &w[65], &w[80], &w[81], &w[96], &w[97], &w[112], &w[113])
	}
	if xorInto {
		for i := range out {
			out[i] ^= z[i] ^ r[i]
		}
	} else {
		for i := range out {
			out[i] = z[i] ^ r[i]
		}
	}
	clear(r[:])
	clear(z[:])
}

// segment fills one lane's segment of a slice (section 3.4): data-independent indexing
// from address blocks for argon2i and for argon2id's first half pass, else from the
// previous block's first word.
func (a *argon2State) segment(pass, slice, lane uint32) {
	indep := a.typ == argon2TypeI || (pass == 0 && slice < 2)
	var addr, input, zero argon2Block
	if indep {
		input[0], input[1], input[2] = uint64(pass), uint64(lane), uint64(slice)
		input[3], input[4], input[5] = uint64(a.q)*uint64(a.lanes), uint64(a.passes), uint64(a.typ)
	}
	nextAddresses := func() {
		input[6]++
		argon2G(&addr, &zero, &input, false)
		argon2G(&addr, &zero, &addr, false)
	}
	start := uint32(0)
	if pass == 0 && slice == 0 {
		start = 2 // B[l][0] and B[l][1] come from H0
		if indep {
			nextAddresses()
		}
	}
	base := lane * a.q
	for i := start; i < a.seg; i++ {
		col := slice*a.seg + i
		prev := base + col - 1
		if col == 0 {
			prev = base + a.q - 1
		}
		var rnd uint64
		if indep {
			if i%128 == 0 {
				nextAddresses()
			}
			rnd = addr[i%128]
		} else {
			rnd = a.mem[prev][0]
		}
		refLane := uint32((rnd >> 32) % uint64(a.lanes))
		if pass == 0 && slice == 0 {
			refLane = lane
		}
		ref := refLane*a.q + a.refIndex(pass, slice, i, uint32(rnd), refLane == lane)
		argon2G(&a.mem[base+col], &a.mem[prev], &a.mem[ref], pass > 0)
	}
	clear(addr[:])
}

// refIndex maps J1 onto the reference set W (section 3.4.2): the blocks of the lane
// already computed and not being overwritten, minus the previous block where that is in W.
func (a *argon2State) refIndex(pass, slice, i, j1 uint32, sameLane bool) uint32 {
	var size uint32
	switch {
	case pass == 0 && slice == 0:
		size = i - 1
	case pass == 0 && sameLane:
		size = slice*a.seg + i - 1
	case pass == 0:
		size = slice * a.seg
	case sameLane:
		size = a.q - a.seg + i - 1
	default:
		size = a.q - a.seg
	}
	if !sameLane && i == 0 {
		size--
	}
	x := uint64(j1) * uint64(j1) >> 32
	rel := uint64(size) - 1 - (uint64(size) * x >> 32)
	startPos := uint64(0)
	if pass != 0 && slice != 3 {
		startPos = uint64(slice+1) * uint64(a.seg)
	}
	return uint32((startPos + rel) % uint64(a.q))
}
