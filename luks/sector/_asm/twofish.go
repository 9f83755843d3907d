package main

import (
	"flag"
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Twofish with AVX2 (8 blocks per YMM register) and AVX-512 (16 per ZMM), in a file of its
// own (twofish_amd64.s, generated with -twofish). Word j of every block of a lane group sits
// in one register (a 4×4 transpose in every 128-bit lane after loading, and the same
// transpose before storing). With AVX2, g is four VPGATHERDDs from the key-dependent S-boxes
// with the MDS matrix folded in (twofishKey.s, 4 × 256 words at the key pointer, the 40
// subkeys after them at 4096); with AVX-512 it is byte lookups and GF(2⁸) products (g4).
// Two lane groups are interleaved instruction by instruction so that one's lookups run while
// the other waits. The 16 rounds are unrolled without the Feistel swap: round r takes g of
// words (0, 1) and updates (2, 3) when r is even, the other way round when odd.
//
// Register plan. AVX2: Y0–Y5 and Y6–Y11 the two groups (two words, the rest scratch: the two
// words a round only updates live in stack slots), Y12 0xff in every dword, Y13 the gather
// mask, Y14–Y15 scratch. AVX-512: Z0–Z11 and Z12–Z23 the groups (all four words, the rest
// scratch for g4), Z24–Z27 g4's constants, K1–K4 bit 7 of the S-box indices. AX the schedule,
// SI src, DI dst, BX blocks left.
var twofishFlag = flag.Bool("twofish", false, "generate the Twofish assembly (twofish_amd64.s) instead of aesni_amd64.s")

// twofishMain generates the Twofish file when -twofish is given and reports whether it did.
func twofishMain() bool {
	flag.Parse()
	if !*twofishFlag {
		return false
	}
	ConstraintExpr("amd64,gc,!purego")
	twofishConsts()
	for _, wide := range []bool{false, true} {
		twofishECB(wide, true)
		twofishECB(wide, false)
	}
	Generate()
	return true
}

// twofishGroup is one lane group: where each of its four words lives (a register, or with
// AVX2 a stack slot for the two words a round only updates), and its free registers.
type twofishGroup struct {
	word [4]Op
	free []VecPhysical
}

func (g *twofishGroup) alloc() VecPhysical {
	r := g.free[0]
	g.free = g.free[1:]
	return r
}

func (g *twofishGroup) release(ops ...Op) {
	for _, o := range ops {
		if r, ok := o.(VecPhysical); ok {
			g.free = append(g.free, r)
		}
	}
}

// twofishEmit is the width-dependent part: AVX2 (VEX, 16 YMM registers, two of a group's
// words spilled to the stack) or AVX-512 (EVEX, everything in ZMM registers).
type twofishEmit struct {
	wide  bool
	lanes int
	ff    VecPhysical // 0x000000ff in every lane
	gmask VecPhysical // AVX2's gather mask (all ones before every gather)
	slots Mem         // AVX2: two 32-byte stack slots per group
	spare []VecPhysical
	// AVX-512: the byte-transpose controls and the GF2P8AFFINEQB matrices.
	byteT, byteTRol, mulEF, mul5B VecPhysical
}

func (e *twofishEmit) xor(a, b, dst Op) {
	if e.wide {
		VPXORD(a, b, dst)
	} else {
		VPXOR(a, b, dst)
	}
}

func (e *twofishEmit) and(a, b, dst Op) {
	if e.wide {
		VPANDD(a, b, dst)
	} else {
		VPAND(a, b, dst)
	}
}

func (e *twofishEmit) mov(src, dst Op) {
	if e.wide {
		VMOVDQU32(src, dst)
	} else {
		VMOVDQU(src, dst)
	}
}

// rot sets dst = src rotated left by n (1 or 31); AVX2 needs a scratch register.
func (e *twofishEmit) rot(n int, src, dst, tmp Op) {
	if e.wide {
		VPROLD(U8(n), src, dst)
		return
	}
	VPSRLD(U8(32-n), src, tmp)
	VPSLLD(U8(n), src, dst)
	VPOR(tmp, dst, dst)
}

// byteIndex sets idx to byte j of every lane of x.
func (e *twofishEmit) byteIndex(x Op, j int, idx VecPhysical) {
	switch j {
	case 0:
		e.and(e.ff, x, idx)
	case 3:
		VPSRLD(U8(24), x, idx)
	default:
		VPSRLD(U8(8*j), x, idx)
		e.and(e.ff, idx, idx)
	}
}

// gather sets dst to word idx of the S-box table with MDS (AVX2 only; the mask is all ones
// before every gather, which clears it).
func (e *twofishEmit) gather(table int, idx, dst VecPhysical) {
	mem := Mem{Base: RAX, Index: idx, Scale: 4, Disp: 1024 * table}
	VPCMPEQD(e.gmask, e.gmask, e.gmask)
	VPGATHERDD(e.gmask, mem, dst)
}

// round emits round rnd (its subkeys K_{2rnd+8}, K_{2rnd+9}) on every group, encrypting or
// decrypting, interleaving the groups step by step.
func (e *twofishEmit) round(groups []*twofishGroup, rnd int, enc bool) {
	in, out := [2]int{0, 1}, [2]int{2, 3}
	if rnd%2 == 1 {
		in, out = out, in
	}
	type regs struct{ t0, t1, idx, tmp VecPhysical }
	rs := make([]regs, len(groups))
	for i, g := range groups {
		if e.wide {
			rs[i] = regs{t0: g.alloc(), t1: g.alloc()}
		} else {
			rs[i] = regs{g.alloc(), g.alloc(), g.alloc(), g.alloc()}
		}
	}
	each := func(f func(g *twofishGroup, r *regs)) {
		for i, g := range groups {
			f(g, &rs[i])
		}
	}
	if e.wide {
		var t []VecPhysical
		for _, g := range groups {
			for len(g.free) > 0 {
				t = append(t, g.alloc())
			}
		}
		if len(t) != 12 {
			panic("twofish: g4 needs six free registers in each group")
		}
		g0, g1 := groups[0], groups[1]
		e.g4([4]Op{g0.word[in[0]], g0.word[in[1]], g1.word[in[0]], g1.word[in[1]]},
			[4]bool{false, true, false, true},
			[4]VecPhysical{rs[0].t0, rs[0].t1, rs[1].t0, rs[1].t1}, t)
		for i, r := range t {
			groups[i/6].release(r)
		}
	}
	// t0 = g(X), t1 = g(ROL(Y, 8)): byte j of ROL(Y, 8) is byte j−1 of Y.
	for j := 0; j < 4 && !e.wide; j++ {
		each(func(g *twofishGroup, r *regs) {
			e.byteIndex(g.word[in[0]], j, r.idx)
			if j == 0 {
				e.gather(0, r.idx, r.t0)
			} else {
				e.gather(j, r.idx, r.tmp)
				e.xor(r.tmp, r.t0, r.t0)
			}
		})
		each(func(g *twofishGroup, r *regs) {
			e.byteIndex(g.word[in[1]], (j+3)%4, r.idx)
			if j == 0 {
				e.gather(0, r.idx, r.t1)
			} else {
				e.gather(j, r.idx, r.tmp)
				e.xor(r.tmp, r.t1, r.t1)
			}
		})
	}
	// F0 = t0 + t1 + K_{2r+8}, F1 = t0 + 2·t1 + K_{2r+9}.
	each(func(g *twofishGroup, r *regs) {
		VPADDD(r.t1, r.t0, r.t0)
		VPADDD(r.t0, r.t1, r.t1)
		if e.wide {
			VPADDD_BCST(m(RAX, 4096+4*(2*rnd+8)), r.t0, r.t0)
			VPADDD_BCST(m(RAX, 4096+4*(2*rnd+9)), r.t1, r.t1)
			return
		}
		VPBROADCASTD(m(RAX, 4096+4*(2*rnd+8)), r.idx)
		VPADDD(r.idx, r.t0, r.t0)
		VPBROADCASTD(m(RAX, 4096+4*(2*rnd+9)), r.idx)
		VPADDD(r.idx, r.t1, r.t1)
	})
	each(func(g *twofishGroup, r *regs) {
		u, v := g.word[out[0]], g.word[out[1]]
		var nu, nv VecPhysical
		if enc {
			// U = ROR(U ⊕ F0, 1), V = ROL(V, 1) ⊕ F1.
			e.xor(u, r.t0, r.t0)
			e.rot(31, r.t0, r.t0, r.tmp)
			nu = r.t0
			if e.wide {
				e.rot(1, v, v, nil)
				e.xor(r.t1, v, v)
				nv = v.(VecPhysical)
			} else {
				e.mov(v, r.tmp)
				e.rot(1, r.tmp, r.tmp, r.idx)
				e.xor(r.t1, r.tmp, r.tmp)
				nv = r.tmp
			}
		} else {
			// U = ROL(U, 1) ⊕ F0, V = ROR(V ⊕ F1, 1).
			e.xor(v, r.t1, r.t1)
			e.rot(31, r.t1, r.t1, r.idx)
			nv = r.t1
			if e.wide {
				e.rot(1, u, u, nil)
				e.xor(r.t0, u, u)
				nu = u.(VecPhysical)
			} else {
				e.mov(u, r.tmp)
				e.rot(1, r.tmp, r.tmp, r.idx)
				e.xor(r.t0, r.tmp, r.tmp)
				nu = r.tmp
			}
		}
		used := map[VecPhysical]bool{nu: true, nv: true}
		for _, x := range []VecPhysical{r.t0, r.t1, r.idx, r.tmp} {
			if x != nil && !used[x] {
				g.release(x)
			}
		}
		if !e.wide {
			// The inputs go to the stack slots the outputs were read from: the next round
			// only updates them.
			e.mov(g.word[in[0]], u)
			e.mov(g.word[in[1]], v)
			g.release(g.word[in[0]], g.word[in[1]])
			g.word[in[0]], g.word[in[1]] = u, v
		} else if nu != u {
			g.release(u)
		} else {
			g.release(v)
		}
		g.word[out[0]], g.word[out[1]] = nu, nv
	})
}

// transpose4 turns four registers of one block per 128-bit lane into four registers of one
// word each, and back (it is its own inverse), through t.
func (e *twofishEmit) transpose4(r [4]VecPhysical, t [4]VecPhysical) {
	VPUNPCKLDQ(r[1], r[0], t[0])
	VPUNPCKHDQ(r[1], r[0], t[1])
	VPUNPCKLDQ(r[3], r[2], t[2])
	VPUNPCKHDQ(r[3], r[2], t[3])
	VPUNPCKLQDQ(t[2], t[0], r[0])
	VPUNPCKHQDQ(t[2], t[0], r[1])
	VPUNPCKLQDQ(t[3], t[1], r[2])
	VPUNPCKHQDQ(t[3], t[1], r[3])
}

// twofishECB emits twofish{Enc,Dec}{AVX2,AVX512}: n blocks, a multiple of 2·lanes.
func twofishECB(wide, enc bool) {
	e := &twofishEmit{wide: wide, lanes: 8}
	suffix := "AVX2"
	var regs []VecPhysical
	if wide {
		e.lanes, suffix = 16, "AVX512"
		regs = []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11,
			Z12, Z13, Z14, Z15, Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23}
		e.byteT, e.byteTRol, e.mulEF, e.mul5B = Z24, Z25, Z26, Z27
	} else {
		regs = []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11, Y12, Y13}
		e.gmask = regs[13]
		e.spare = []VecPhysical{Y14, Y15}
	}
	if !wide {
		e.ff = regs[12]
	}
	step := 2 * e.lanes
	name := "twofish" + encdec(enc) + suffix
	TEXT(name, NOSPLIT, "func(k *uint32, dst, src *byte, n int)")
	if enc {
		Doc(fmt.Sprintf("%s Twofish-encrypts n blocks (a multiple of %d) with the schedule at k", name, step),
			fmt.Sprintf("(twofishKey), %d at a time; dst may equal src.", step))
	} else {
		Doc(fmt.Sprintf("%s is twofishEnc%s decrypting.", name, suffix))
	}
	Pragma("noescape")
	if !wide {
		e.slots = AllocLocal(4 * 32)
	}
	Load(Param("k"), RAX)
	Load(Param("dst"), RDI)
	Load(Param("src"), RSI)
	Load(Param("n"), RBX)
	if wide {
		VMOVDQU64(twofishConstM.Offset(cByteT), e.byteT)
		VMOVDQU64(twofishConstM.Offset(cByteTRol), e.byteTRol)
		VPBROADCASTQ(twofishConstM.Offset(cMulEF), e.mulEF)
		VPBROADCASTQ(twofishConstM.Offset(cMul5B), e.mul5B)
	} else {
		MOVL(U32(0xff), ECX)
		VMOVD(ECX, e.ff.AsX())
		VPBROADCASTD(e.ff.AsX(), e.ff)
	}
	Label(name + "_loop")
	CMPQ(RBX, U32(step))
	JB(LabelRef(name + "_done"))
	bytes := 16 * e.lanes
	vec := bytes / 4
	groups := make([]*twofishGroup, 2)
	for gi := range groups {
		g := &twofishGroup{free: append([]VecPhysical(nil), regs[6*gi:6*gi+6]...)}
		if wide {
			g.free = append([]VecPhysical(nil), regs[12*gi:12*gi+12]...)
		}
		groups[gi] = g
	}
	// Whitening subkeys: K0…K3 on the way in and K4…K7 on the way out when encrypting; the
	// other way round when decrypting, where the input words are (2, 3, 0, 1).
	inK, outK := 0, 4
	inWord := [4]int{0, 1, 2, 3}
	if !enc {
		inK, outK = 4, 0
		inWord = [4]int{2, 3, 0, 1}
	}
	for gi, g := range groups {
		// Load and transpose with the other group's free registers as scratch.
		var r, t [4]VecPhysical
		for j := range r {
			r[j] = g.alloc()
		}
		other := groups[1-gi]
		for j := range t {
			t[j] = other.free[j]
		}
		for j := 0; j < 4; j++ {
			e.mov(m(RSI, bytes*gi+vec*j), r[j])
		}
		e.transpose4(r, t)
		for j := 0; j < 4; j++ {
			VPBROADCASTD(m(RAX, 4096+4*(inK+j)), t[0])
			e.xor(t[0], r[j], r[j])
			g.word[inWord[j]] = r[j]
		}
		if !wide {
			// The words round 0 (or, decrypting, round 15) only updates go to the stack.
			spill := [2]int{2, 3}
			if !enc {
				spill = [2]int{0, 1}
			}
			for i, w := range spill {
				slot := e.slots.Offset(64*gi + 32*i)
				e.mov(g.word[w], slot)
				g.release(g.word[w])
				g.word[w] = slot
			}
		}
	}
	if enc {
		for r := 0; r < 16; r++ {
			e.round(groups, r, true)
		}
	} else {
		for r := 15; r >= 0; r-- {
			e.round(groups, r, false)
		}
	}
	// Output words: (2, 3, 0, 1) ⊕ K4…K7 encrypting, (0, 1, 2, 3) ⊕ K0…K3 decrypting.
	outWord := [4]int{2, 3, 0, 1}
	if !enc {
		outWord = [4]int{0, 1, 2, 3}
	}
	for gi, g := range groups {
		var w [4]VecPhysical
		for j := 0; j < 4; j++ {
			o := g.word[outWord[j]]
			if r, ok := o.(VecPhysical); ok {
				w[j] = r
			} else {
				w[j] = g.alloc()
				e.mov(o, w[j])
			}
		}
		t := append(append([]VecPhysical(nil), g.free...), e.spare...)
		for j := 0; j < 4; j++ {
			VPBROADCASTD(m(RAX, 4096+4*(outK+j)), t[0])
			e.xor(t[0], w[j], w[j])
		}
		e.transpose4(w, [4]VecPhysical(t[:4]))
		for j := 0; j < 4; j++ {
			e.mov(w[j], m(RDI, bytes*gi+vec*j))
		}
		g.release(w[0], w[1], w[2], w[3])
	}
	ADDQ(U32(2*bytes), RSI)
	ADDQ(U32(2*bytes), RDI)
	SUBQ(U32(step), RBX)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	// The state and the gathered S-box words are key-dependent: leave none in registers.
	for _, r := range append(regs, e.spare...) {
		if wide {
			VPXORD(r, r, r)
		} else {
			VPXOR(r, r, r)
		}
	}
	if !wide {
		for i := 0; i < 4; i++ {
			VMOVDQU(regs[0], e.slots.Offset(32*i))
		}
	}
	if wide {
		// K1…K4 hold bit 7 of the last state bytes looked up.
		for _, k := range []Op{K1, K2, K3, K4} {
			KXORQ(k, k, k)
		}
	}
	VZEROUPPER()
	RET()
}

// The AVX-512 code looks the S-boxes up without gathers (Zen 4 gathers about one word per
// cycle), four g inputs at once (X and ROL(Y, 8) of both groups): a VPSHUFB (4×4 byte
// transpose in every 128-bit lane, with the rotation by 8 folded in for Y) and a 4×4 dword
// transpose put byte j of all four inputs in register j; s_j (twofishKey.b, at 4352) is two
// VPERMT2Bs of 128 entries on it, bit 7 of the index choosing between them (VPBLENDMB); the
// MDS matrix, whose entries are 01, EF and 5B, is then GF2P8AFFINEQB products (multiplying
// by a constant in GF(2⁸) modulo 0x169 is linear) XORed register by register; the same two
// transposes, in reverse, bring the four results back to one word per lane.
const (
	twofishSboxOff = 4352
	cByteT         = 0   // VPSHUFB control: the byte transpose
	cByteTRol      = 64  // the same after a rotation left by 8 of every dword
	cMulEF         = 128 // GF2P8AFFINEQB matrix of y ↦ EF·y
	cMul5B         = 136
)

var twofishConstM Mem

// twofishMDS is the specification's matrix (row i: output byte i).
var twofishMDS = [4][4]byte{
	{0x01, 0xEF, 0x5B, 0x5B},
	{0x5B, 0xEF, 0xEF, 0x01},
	{0xEF, 0x5B, 0x01, 0xEF},
	{0xEF, 0x01, 0xEF, 0x5B},
}

func gf169(a, b byte) byte {
	var p uint
	x := uint(a)
	for ; b != 0; b >>= 1 {
		if b&1 != 0 {
			p ^= x
		}
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x169
		}
	}
	return byte(p)
}

// mulMatrix is the GF2P8AFFINEQB matrix of y ↦ c·y: byte 7−i of the qword is the row of
// output bit i, bit k of it set when bit i of c·x^k is.
func mulMatrix(c byte) uint64 {
	var q uint64
	for i := 0; i < 8; i++ {
		var row byte
		for k := 0; k < 8; k++ {
			if gf169(c, 1<<k)>>i&1 != 0 {
				row |= 1 << k
			}
		}
		q |= uint64(row) << (8 * (7 - i))
	}
	return q
}

func twofishConsts() {
	twofishConstM = GLOBL("twofishconsts", RODATA|NOPTR)
	// Output byte 4q+m of a lane is byte m of dword q: input byte 4m+q, or with the
	// rotation, byte (q+3) mod 4 of dword m.
	for c, rot := range []int{0, 3} {
		for b := 0; b < 64; b += 8 {
			var v uint64
			for k := 0; k < 8; k++ {
				o := (b + k) % 16
				q, mm := o/4, o%4
				v |= uint64(4*mm+(q+rot)%4) << (8 * k)
			}
			DATA(64*c+b, U64(v))
		}
	}
	DATA(cMulEF, U64(mulMatrix(0xEF)))
	DATA(cMul5B, U64(mulMatrix(0x5B)))
}

// g4 sets dst[k] = g(in[k]), or g(ROL(in[k], 8)) where rol[k], through the 12 registers t.
func (e *twofishEmit) g4(in [4]Op, rol [4]bool, dst [4]VecPhysical, t []VecPhysical) {
	r := [4]VecPhysical{t[0], t[1], t[2], t[3]}
	s := [4]VecPhysical{t[4], t[5], t[6], t[7]}
	for k := range in {
		ctl := e.byteT
		if rol[k] {
			ctl = e.byteTRol
		}
		VPSHUFB(ctl, in[k], r[k])
	}
	e.transpose4(r, s)
	masks := [4]Op{K1, K2, K3, K4}
	// y_j = s_j(r[j]), two temporaries per byte position.
	for j := 0; j < 4; j++ {
		VPMOVB2M(r[j], masks[j])
	}
	for j := 0; j < 4; j++ {
		lo, hi := t[4+j], t[8+j]
		tab := twofishSboxOff + 256*j
		VMOVDQU64(m(RAX, tab), lo)
		VPERMT2B(m(RAX, tab+64), r[j], lo)
		VMOVDQU64(m(RAX, tab+128), hi)
		VPERMT2B(m(RAX, tab+192), r[j], hi)
		VPBLENDMB(hi, lo, masks[j], r[j])
	}
	y := r
	ef := [4]VecPhysical{t[4], t[5], t[6], t[7]}
	fb := [4]VecPhysical{t[8], t[9], t[10], t[11]}
	for j := 0; j < 4; j++ {
		VGF2P8AFFINEQB(U8(0), e.mulEF, y[j], ef[j])
		VGF2P8AFFINEQB(U8(0), e.mul5B, y[j], fb[j])
	}
	prod := func(j int, c byte) VecPhysical {
		switch c {
		case 0x01:
			return y[j]
		case 0xEF:
			return ef[j]
		}
		return fb[j]
	}
	for i := 0; i < 4; i++ {
		row := twofishMDS[i]
		VPXORD(prod(1, row[1]), prod(0, row[0]), dst[i])
		VPTERNLOGD(U8(0x96), prod(3, row[3]), prod(2, row[2]), dst[i])
	}
	e.transpose4(dst, s)
	for k := range dst {
		VPSHUFB(e.byteT, dst[k], dst[k])
	}
}
