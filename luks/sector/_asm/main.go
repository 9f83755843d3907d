// Command _asm generates luks/sector's AES-NI and VAES assembly (aesni_amd64.s) and its Go
// declarations (aesni_amd64_decl.go) with avo. It is a module of its own so that avo never
// becomes a dependency of the library; run it through `go generate ./luks/sector`.
//
// Every loop is unrolled here, in Go, rather than by hand in the .s file: the lane count,
// the register plan and the tweak arithmetic are each written once.
package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Fixed register plan (no allocator: the functions are leaves and the plan is documented in
// the generated file): AX round keys, CX round count, SI src, DI dst, DX tweaks/IVs, BX
// blocks or sectors left, R8/R9 the round loop.
var (
	xState = []VecPhysical{X0, X1, X2, X3, X4, X5, X6, X7}
	zState = []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7}
	zTweak = []VecPhysical{Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23}
)

func m(base Register, disp int) Mem { return Mem{Base: base, Disp: disp} }

func loadArgs(names ...string) {
	regs := []Register{RCX, RAX, RDI, RSI, RDX, RBX}
	for i, n := range names {
		Load(Param(n), regs[i])
	}
}

// aesRound emits one middle or last round on all states (SSE two-operand forms).
func aesRound(enc, last bool, k VecPhysical, states []VecPhysical) {
	for _, s := range states {
		switch {
		case enc && !last:
			AESENC(k, s)
		case enc:
			AESENCLAST(k, s)
		case !last:
			AESDEC(k, s)
		default:
			AESDECLAST(k, s)
		}
	}
}

// roundLoop emits rounds 1…nr−1 as a counted loop (the round count is a run-time value,
// 10, 12 or 14) and the last round; round 0 (the key whitening) is the caller's.
func roundLoop(label string, enc bool, states []VecPhysical) {
	MOVQ(RAX, R8)
	MOVQ(RCX, R9)
	DECQ(R9)
	Label(label)
	ADDQ(Imm(16), R8)
	MOVOU(m(R8, 0), X8)
	aesRound(enc, false, X8, states)
	DECQ(R9)
	JNZ(LabelRef(label))
	MOVOU(m(R8, 16), X8)
	aesRound(enc, true, X8, states)
}

func vaesRound(enc, last bool, k VecPhysical, states []VecPhysical) {
	for _, s := range states {
		switch {
		case enc && !last:
			VAESENC(k, s, s)
		case enc:
			VAESENCLAST(k, s, s)
		case !last:
			VAESDEC(k, s, s)
		default:
			VAESDECLAST(k, s, s)
		}
	}
}

func vaesRoundLoop(label string, enc bool, states []VecPhysical) {
	vaesRoundLoopWith(label, enc, states, RAX, RCX)
}

// vaesRoundLoopWith is vaesRoundLoop with the schedule at keys and the round count in nr.
func vaesRoundLoopWith(label string, enc bool, states []VecPhysical, keys, nr Register) {
	MOVQ(keys, R8)
	MOVQ(nr, R9)
	DECQ(R9)
	Label(label)
	ADDQ(Imm(16), R8)
	VBROADCASTI32X4(m(R8, 0), Z8)
	vaesRound(enc, false, Z8, states)
	DECQ(R9)
	JNZ(LabelRef(label))
	VBROADCASTI32X4(m(R8, 16), Z8)
	vaesRound(enc, true, Z8, states)
}

// The AES functions end by zeroing every vector register they used: a round key, tweak or
// ESSIV IV left in a register outlives the call in memory nobody clears, because the kernel
// copies all vector registers into the signal frame (on the goroutine's signal stack) of
// every signal the thread takes, and Go's asynchronous preemption (SIGURG) spills them onto
// the goroutine stack. Their callers run long after such a call returns, so the window would
// be wide; zeroing here closes it for everything but a signal taken during the call itself.

// clearSSE zeroes X0-X15 (SSE2 only: the AES-NI functions may run without AVX).
func clearSSE() {
	for _, r := range []VecPhysical{X0, X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12, X13, X14, X15} {
		PXOR(r, r)
	}
}

// clearAVX512 zeroes Z0-Z31: VZEROALL clears Z0-Z15 whole, but not Z16-Z31.
func clearAVX512() {
	VZEROALL()
	for _, r := range []VecPhysical{Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31} {
		VPXORQ(r, r, r)
	}
}

// clearVectors is the same for Go code: the memmove that copies a key into a Cipher or a
// schedule carries it through X0-X1 (and wider registers where it uses them).
func clearVectors() {
	name := "clearVectorRegisters"
	TEXT(name, NOSPLIT, "func(avx, avx512 bool)")
	Doc(name+" zeroes X0-X15, and with avx Y0-Y15, and with avx512 Z0-Z31 (each flag only",
		"where the CPU and the OS support that state).")
	Load(Param("avx"), RAX)
	Load(Param("avx512"), RBX)
	clearSSE()
	TESTB(AL, AL)
	JZ(LabelRef(name + "_done"))
	VZEROALL()
	TESTB(BL, BL)
	JZ(LabelRef(name + "_done"))
	for _, r := range []VecPhysical{Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31} {
		VPXORQ(r, r, r)
	}
	Label(name + "_done")
	RET()
}

func encdec(enc bool) string {
	if enc {
		return "Enc"
	}
	return "Dec"
}

// xexAESNI: dst[i] = E(src[i] ⊕ tw[i]) ⊕ tw[i], eight blocks per iteration, then one at a time.
func xexAESNI(enc bool) {
	name := "aesniXEX" + encdec(enc)
	TEXT(name, NOSPLIT, "func(nr int, rk *byte, dst, src, tw *byte, n int)")
	if enc {
		Doc(name+": for i < n, dst[i] = E(src[i] ⊕ tw[i]) ⊕ tw[i] over 16-byte blocks, eight at a",
			"time (XTS, LRW and, with zero tw, ECB). rk is aesSchedule.enc, nr the round count.")
	} else {
		Doc(name + " is aesniXEXEnc with AES decryption; rk is aesSchedule.dec.")
	}
	Pragma("noescape")
	loadArgs("nr", "rk", "dst", "src", "tw", "n")
	Label(name + "_loop8")
	CMPQ(RBX, Imm(8))
	JB(LabelRef(name + "_tail"))
	MOVOU(m(RAX, 0), X8)
	for i, s := range xState {
		MOVOU(m(RSI, 16*i), s)
		MOVOU(m(RDX, 16*i), X9)
		PXOR(X9, s)
		PXOR(X8, s)
	}
	roundLoop(name+"_rounds8", enc, xState)
	for i, s := range xState {
		MOVOU(m(RDX, 16*i), X9)
		PXOR(X9, s)
		MOVOU(s, m(RDI, 16*i))
	}
	ADDQ(Imm(128), RSI)
	ADDQ(Imm(128), RDI)
	ADDQ(Imm(128), RDX)
	SUBQ(Imm(8), RBX)
	JMP(LabelRef(name + "_loop8"))

	Label(name + "_tail")
	TESTQ(RBX, RBX)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop1")
	MOVOU(m(RSI, 0), X0)
	MOVOU(m(RDX, 0), X9)
	PXOR(X9, X0)
	MOVOU(m(RAX, 0), X8)
	PXOR(X8, X0)
	roundLoop(name+"_rounds1", enc, xState[:1])
	PXOR(X9, X0)
	MOVOU(X0, m(RDI, 0))
	ADDQ(Imm(16), RSI)
	ADDQ(Imm(16), RDI)
	ADDQ(Imm(16), RDX)
	DECQ(RBX)
	JNZ(LabelRef(name + "_loop1"))
	Label(name + "_done")
	clearSSE()
	RET()
}

func cbcEncAESNI() {
	name := "aesniCBCEnc"
	TEXT(name, NOSPLIT, "func(nr int, rk *byte, dst, src, iv *byte, n int)")
	Doc(name + " CBC-encrypts n blocks with the 16-byte IV at iv (serial by nature).")
	Pragma("noescape")
	loadArgs("nr", "rk", "dst", "src", "iv", "n")
	MOVOU(m(RDX, 0), X0)
	TESTQ(RBX, RBX)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop")
	MOVOU(m(RSI, 0), X9)
	PXOR(X9, X0)
	MOVOU(m(RAX, 0), X8)
	PXOR(X8, X0)
	roundLoop(name+"_rounds", true, xState[:1])
	MOVOU(X0, m(RDI, 0))
	ADDQ(Imm(16), RSI)
	ADDQ(Imm(16), RDI)
	DECQ(RBX)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
	clearSSE()
	RET()
}

// cbcDecAESNI keeps the chaining value in X15 and reads the previous ciphertext from src
// before dst is written, so dst may equal src.
func cbcDecAESNI() {
	name := "aesniCBCDec"
	TEXT(name, NOSPLIT, "func(nr int, rk *byte, dst, src, iv *byte, n int)")
	Doc(name + " CBC-decrypts n blocks, eight in parallel; dst may equal src.")
	Pragma("noescape")
	loadArgs("nr", "rk", "dst", "src", "iv", "n")
	MOVOU(m(RDX, 0), X15)
	Label(name + "_loop8")
	CMPQ(RBX, Imm(8))
	JB(LabelRef(name + "_tail"))
	MOVOU(m(RAX, 0), X8)
	for i, s := range xState {
		MOVOU(m(RSI, 16*i), s)
		PXOR(X8, s)
	}
	roundLoop(name+"_rounds8", false, xState)
	PXOR(X15, X0)
	for i := 1; i < 8; i++ {
		MOVOU(m(RSI, 16*(i-1)), X9)
		PXOR(X9, xState[i])
	}
	MOVOU(m(RSI, 112), X15)
	for i, s := range xState {
		MOVOU(s, m(RDI, 16*i))
	}
	ADDQ(Imm(128), RSI)
	ADDQ(Imm(128), RDI)
	SUBQ(Imm(8), RBX)
	JMP(LabelRef(name + "_loop8"))

	Label(name + "_tail")
	TESTQ(RBX, RBX)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop1")
	MOVOU(m(RSI, 0), X0)
	MOVOU(X0, X10)
	MOVOU(m(RAX, 0), X8)
	PXOR(X8, X0)
	roundLoop(name+"_rounds1", false, xState[:1])
	PXOR(X15, X0)
	MOVOU(X10, X15)
	MOVOU(X0, m(RDI, 0))
	ADDQ(Imm(16), RSI)
	ADDQ(Imm(16), RDI)
	DECQ(RBX)
	JNZ(LabelRef(name + "_loop1"))
	Label(name + "_done")
	clearSSE()
	RET()
}

// cbcEnc8AESNI runs eight independent CBC chains (eight sectors) side by side.
func cbcEnc8AESNI() {
	name := "aesniCBCEnc8"
	TEXT(name, NOSPLIT, "func(nr int, rk *byte, dst, src, ivs *byte)")
	Doc(name+" CBC-encrypts eight consecutive 512-byte sectors in parallel, one chain per",
		"sector; ivs holds the eight 16-byte IVs.")
	Pragma("noescape")
	loadArgs("nr", "rk", "dst", "src", "ivs")
	for i, s := range xState {
		MOVOU(m(RDX, 16*i), s)
	}
	XORQ(R10, R10)
	Label(name + "_step")
	MOVOU(m(RAX, 0), X8)
	for i, s := range xState {
		MOVOU(Mem{Base: RSI, Index: R10, Scale: 1, Disp: 512 * i}, X9)
		PXOR(X9, s)
		PXOR(X8, s)
	}
	roundLoop(name+"_rounds", true, xState)
	for i, s := range xState {
		MOVOU(s, Mem{Base: RDI, Index: R10, Scale: 1, Disp: 512 * i})
	}
	ADDQ(Imm(16), R10)
	CMPQ(R10, U32(512))
	JB(LabelRef(name + "_step"))
	clearSSE()
	RET()
}

// xexVAES is xexAESNI with four blocks per ZMM register, 32 blocks per iteration.
func xexVAES(enc bool) {
	name := "vaesXEX" + encdec(enc)
	TEXT(name, NOSPLIT, "func(nr int, rk *byte, dst, src, tw *byte, n int)")
	if enc {
		Doc(name + " is aesniXEXEnc for n a multiple of 32, four blocks per ZMM register.")
	} else {
		Doc(name + " is aesniXEXDec for n a multiple of 32.")
	}
	Pragma("noescape")
	loadArgs("nr", "rk", "dst", "src", "tw", "n")
	Label(name + "_loop")
	CMPQ(RBX, Imm(32))
	JB(LabelRef(name + "_done"))
	VBROADCASTI32X4(m(RAX, 0), Z8)
	for i, t := range zTweak {
		VMOVDQU64(m(RDX, 64*i), t)
	}
	vaesBody(name, enc)
	ADDQ(U32(512), RDX)
	SUBQ(Imm(32), RBX)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	clearAVX512()
	RET()
}

// vaesBody whitens src with the tweaks in Z16-Z23 and round key 0 (in Z8), runs the rounds
// and stores E(·) ⊕ tweak to dst; it advances SI and DI by 512.
func vaesBody(name string, enc bool) {
	for i, s := range zState {
		VPXORQ(m(RSI, 64*i), zTweak[i], s)
	}
	for _, s := range zState {
		VPXORQ(Z8, s, s)
	}
	vaesRoundLoop(name+"_rounds", enc, zState)
	for i, s := range zState {
		VPXORQ(zTweak[i], s, s)
	}
	for i, s := range zState {
		VMOVDQU64(s, m(RDI, 64*i))
	}
	ADDQ(U32(512), RSI)
	ADDQ(U32(512), RDI)
}

// mulAlpha4 sets dst to src·α⁴ in each 128-bit lane: the lane shifts left by four bits
// (quadword shifts, the low quadword's top four bits carried into the high one) and the four
// bits shifted out of the top come back as their carry-less product with 0x87 (x⁷+x²+x+1,
// Z30). Z24-Z26 are scratch.
func mulAlpha4(src, dst VecPhysical) {
	VPSRLQ(Imm(60), src, Z24)
	VPSLLQ(Imm(4), src, dst)
	VPSRLDQ(Imm(8), Z24, Z25)
	VPSLLDQ(Imm(8), Z24, Z24)
	VPCLMULQDQ(Imm(0), Z30, Z25, Z26)
	VPTERNLOGQ(Imm(xor3), Z26, Z24, dst)
}

// loadPoly sets Z30 to 0x87 in every quadword, for mulAlpha4.
func loadPoly() {
	MOVQ(U32(0x87), R8)
	VPBROADCASTQ(R8, Z30)
}

func xtsVAES(enc bool) {
	name := "vaesXTS" + encdec(enc)
	TEXT(name, NOSPLIT, "func(nr int, rk *byte, dst, src, tw4 *byte, nsec int)")
	if enc {
		Doc(name+" is XTS encryption of nsec 512-byte sectors; tw4 holds the first four tweaks of",
			"each sector (64 bytes per sector), the rest are derived in registers.")
	} else {
		Doc(name + " is vaesXTSEnc with decryption round keys.")
	}
	Pragma("noescape")
	loadArgs("nr", "rk", "dst", "src", "tw4", "nsec")
	loadPoly()
	Label(name + "_loop")
	TESTQ(RBX, RBX)
	JZ(LabelRef(name + "_done"))
	VMOVDQU64(m(RDX, 0), zTweak[0])
	for i := 1; i < len(zTweak); i++ {
		mulAlpha4(zTweak[i-1], zTweak[i])
	}
	VBROADCASTI32X4(m(RAX, 0), Z8)
	vaesBody(name, enc)
	ADDQ(Imm(64), RDX)
	DECQ(RBX)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	clearAVX512()
	RET()
}

// Constants of the fused sector functions, one 64-byte row each.
var consts Mem

const (
	cLoMask  = 0   // all ones in the low quadword of each 128-bit lane
	cLaneIdx = 64  // 0, 1, 2, 3 in the low quadwords: sector offsets of the four lanes
	cShiftL  = 128 // lane i shifts by i bits: multiplies by α^i
	cShiftR  = 192 // 64 − i: the bits lane i shifts out
	// cAlphaSSE holds dwords 0x87, 0, 1, 0: the carries of one doubling (mulAlphaSSE).
	cAlphaSSE = 256
)

func emitConsts() {
	consts = GLOBL("sectorconsts", RODATA|NOPTR)
	// The assembler wants DATA in increasing offsets: row by row, lane by lane.
	rows := []struct {
		off    int
		lo, hi func(lane int) uint64
	}{
		{cLoMask, func(int) uint64 { return ^uint64(0) }, func(int) uint64 { return 0 }},
		{cLaneIdx, func(l int) uint64 { return uint64(l) }, func(int) uint64 { return 0 }},
		{cShiftL, func(l int) uint64 { return uint64(l) }, func(l int) uint64 { return uint64(l) }},
		{cShiftR, func(l int) uint64 { return uint64(64 - l) }, func(l int) uint64 { return uint64(64 - l) }},
	}
	for _, r := range rows {
		for lane := 0; lane < 4; lane++ {
			DATA(r.off+16*lane, U64(r.lo(lane)))
			DATA(r.off+16*lane+8, U64(r.hi(lane)))
		}
	}
	DATA(cAlphaSSE, U64(0x87))
	DATA(cAlphaSSE+8, U64(1))
}

// plain64IVs sets Z27 to the plain64 IVs of sectors R12…R12+3, one per 128-bit lane
// (LE64(sector) in the low half, zero in the high half; the sector number wraps mod 2^64 as
// dm-crypt's does), and advances R12 by four.
func plain64IVs() {
	VPBROADCASTQ(R12, Z27)
	VPANDQ(consts.Offset(cLoMask), Z27, Z27)
	VPADDQ(consts.Offset(cLaneIdx), Z27, Z27)
	ADDQ(Imm(4), R12)
}

// encryptZ27 AES-encrypts the four blocks in Z27 with the schedule at keys, nr rounds.
func encryptZ27(label string, keys, nr Register) {
	VBROADCASTI32X4(m(keys, 0), Z8)
	VPXORQ(Z8, Z27, Z27)
	vaesRoundLoopWith(label, true, []VecPhysical{Z27}, keys, nr)
}

// groupOfFour sets R13 to min(4, BX), the sectors of this group, and takes them from BX.
func groupOfFour() {
	MOVQ(U32(4), R13)
	CMPQ(RBX, R13)
	CMOVQLT(RBX, R13)
	SUBQ(R13, RBX)
}

// nextLane broadcasts lane 0 of Z27 to all four lanes of dst and rotates Z27 down one lane,
// so the next sector's value is in lane 0.
func nextLane(dst VecPhysical) {
	VSHUFI64X2(Imm(0), Z27, Z27, dst)
	VALIGNQ(Imm(2), Z27, Z27, Z27)
}

// xtsSectorTweaks turns T (broadcast in Z16) into the 32 tweaks of a sector in Z16-Z23:
// lane i of Z16 becomes T·α^i (variable shifts, carries across the quadwords and the
// reduction as in mulAlpha4), then each register is the previous one times α⁴.
func xtsSectorTweaks() {
	VPSRLVQ(Z29, Z16, Z24)
	VPSLLVQ(Z28, Z16, Z16)
	VPSLLDQ(Imm(8), Z24, Z25)
	VPSRLDQ(Imm(8), Z24, Z24)
	VPXORQ(Z25, Z16, Z16)
	VPXORQ(Z24, Z16, Z16)
	for _, sh := range []int{1, 2, 7} {
		VPSLLQ(Imm(uint64(sh)), Z24, Z26)
		VPXORQ(Z26, Z16, Z16)
	}
	for i := 1; i < len(zTweak); i++ {
		mulAlpha4(zTweak[i-1], zTweak[i])
	}
}

// xtsPlain64VAES is XTS over whole sectors with plain64 IVs, everything in one call: the
// IVs are built in registers, their tweak encryptions run four sectors to a ZMM register,
// and all 32 tweaks of a sector are derived in registers. Nothing is written to memory but
// dst, so no tweak (key-dependent) is left on the stack.
func xtsPlain64VAES(enc bool) {
	name := "vaesXTSPlain64" + encdec(enc)
	TEXT(name, NOSPLIT, "func(nr int, rk, rkt *byte, dst, src *byte, sector uint64, nsec int)")
	if enc {
		Doc(name+" XTS-encrypts nsec 512-byte sectors numbered from sector with plain64 IVs;",
			"rk is the data key's encryption schedule, rkt the tweak key's.")
	} else {
		Doc(name + " is vaesXTSPlain64Enc with rk the data key's decryption schedule.")
	}
	Pragma("noescape")
	Load(Param("nr"), RCX)
	Load(Param("rk"), RAX)
	Load(Param("rkt"), R11)
	Load(Param("dst"), RDI)
	Load(Param("src"), RSI)
	Load(Param("sector"), R12)
	Load(Param("nsec"), RBX)
	VMOVDQU64(consts.Offset(cShiftL), Z28)
	VMOVDQU64(consts.Offset(cShiftR), Z29)
	loadPoly()
	Label(name + "_group")
	TESTQ(RBX, RBX)
	JZ(LabelRef(name + "_done"))
	plain64IVs()
	encryptZ27(name+"_tweak", R11, RCX)
	groupOfFour()
	Label(name + "_sector")
	nextLane(Z16)
	xtsSectorTweaks()
	VBROADCASTI32X4(m(RAX, 0), Z8)
	vaesBody(name, enc)
	DECQ(R13)
	JNZ(LabelRef(name + "_sector"))
	JMP(LabelRef(name + "_group"))
	Label(name + "_done")
	clearAVX512()
	RET()
}

// cbcDecVAES is CBC decryption of whole sectors with plain64 or ESSIV IVs computed in the
// same call: the IVs of four sectors are encrypted (ESSIV) in one ZMM register ahead of the
// data rounds, which do not depend on them, so out-of-order execution overlaps the two.
// Block j of a sector is D(C_j) ⊕ C_{j−1}: the previous ciphertexts are read from src at
// −16 bytes, all before the sector's dst is written, so dst may equal src.
func cbcDecVAES() {
	name := "vaesCBCDecSectors"
	TEXT(name, NOSPLIT, "func(nr int, rk *byte, ivnr int, rkiv *byte, dst, src *byte, sector uint64, nsec int)")
	Doc(name+" CBC-decrypts nsec 512-byte sectors numbered from sector; rk is the decryption",
		"schedule. The IV of sector s is LE64(s) (plain64) if rkiv is nil, else its encryption",
		"with the ivnr-round schedule rkiv (ESSIV).")
	Pragma("noescape")
	Load(Param("nr"), RCX)
	Load(Param("rk"), RAX)
	Load(Param("ivnr"), R10)
	Load(Param("rkiv"), R11)
	Load(Param("dst"), RDI)
	Load(Param("src"), RSI)
	Load(Param("sector"), R12)
	Load(Param("nsec"), RBX)
	Label(name + "_group")
	TESTQ(RBX, RBX)
	JZ(LabelRef(name + "_done"))
	plain64IVs()
	TESTQ(R11, R11)
	JZ(LabelRef(name + "_plain"))
	encryptZ27(name+"_essiv", R11, R10)
	Label(name + "_plain")
	groupOfFour()
	Label(name + "_sector")
	nextLane(Z9)
	VBROADCASTI32X4(m(RAX, 0), Z8)
	for i, s := range zState {
		VPXORQ(m(RSI, 64*i), Z8, s)
	}
	vaesRoundLoop(name+"_rounds", false, zState)
	// Lane-shifted previous ciphertexts: (IV, C0, C1, C2) for the first register.
	VMOVDQU64(m(RSI, 0), Z10)
	VALIGNQ(Imm(6), Z9, Z10, Z10)
	VPXORQ(Z10, zState[0], zState[0])
	for i := 1; i < len(zState); i++ {
		VPXORQ(m(RSI, 64*i-16), zState[i], zState[i])
	}
	for i, s := range zState {
		VMOVDQU64(s, m(RDI, 64*i))
	}
	ADDQ(U32(512), RSI)
	ADDQ(U32(512), RDI)
	DECQ(R13)
	JNZ(LabelRef(name + "_sector"))
	JMP(LabelRef(name + "_group"))
	Label(name + "_done")
	clearAVX512()
	RET()
}

// mulAlphaAVX sets b to a·α (one XTS doubling) on XMM registers; s is scratch. The sign of
// each dword, shuffled so that the top bit of the high quadword lands on dword 0 and that of
// the low quadword on dword 2, masked to 0x87 and 1, is the carry the quadword shifts lose.
// VEX forms throughout: their memory operands need no alignment (the schedules are not
// 16-byte aligned).
func mulAlphaAVX(a, b, s VecPhysical) {
	VPSHUFD(Imm(0x13), a, s)
	VPSRAD(Imm(31), s, s)
	VPAND(consts.Offset(cAlphaSSE), s, s)
	VPADDQ(a, a, b)
	VPXOR(s, b, b)
}

// aesRoundsMem runs the nr−1 middle rounds and the last one on states with the round keys
// read as memory operands (every XMM register holds data or tweaks), schedule at AX.
func aesRoundsMem(label string, enc bool, states []VecPhysical) {
	MOVQ(RAX, R8)
	MOVQ(RCX, R9)
	DECQ(R9)
	Label(label)
	ADDQ(Imm(16), R8)
	for _, st := range states {
		if enc {
			VAESENC(m(R8, 0), st, st)
		} else {
			VAESDEC(m(R8, 0), st, st)
		}
	}
	DECQ(R9)
	JNZ(LabelRef(label))
	for _, st := range states {
		if enc {
			VAESENCLAST(m(R8, 16), st, st)
		} else {
			VAESDECLAST(m(R8, 16), st, st)
		}
	}
}

// xtsPlain64AESNI is vaesXTSPlain64Enc/Dec for AES-NI with AVX but without AVX-512: eight
// blocks in X0-X7 with their tweaks in X8-X15, the tweaks derived in registers (X0 is
// scratch before the data is loaded), the sector's first tweak encrypted in X8.
func xtsPlain64AESNI(enc bool) {
	name := "aesniXTSPlain64" + encdec(enc)
	TEXT(name, NOSPLIT, "func(nr int, rk, rkt *byte, dst, src *byte, sector uint64, nsec int)")
	if enc {
		Doc(name + " is vaesXTSPlain64Enc with AES-NI and AVX only, eight blocks at a time.")
	} else {
		Doc(name + " is vaesXTSPlain64Dec with AES-NI and AVX only.")
	}
	Pragma("noescape")
	Load(Param("nr"), RCX)
	Load(Param("rk"), RAX)
	Load(Param("rkt"), R11)
	Load(Param("dst"), RDI)
	Load(Param("src"), RSI)
	Load(Param("sector"), R12)
	Load(Param("nsec"), RBX)
	tw := []VecPhysical{X8, X9, X10, X11, X12, X13, X14, X15}
	Label(name + "_sector")
	TESTQ(RBX, RBX)
	JZ(LabelRef(name + "_done"))
	// T = E_K2(LE64(sector) ‖ 0).
	VMOVQ(R12, X8)
	VPXOR(m(R11, 0), X8, X8)
	MOVQ(R11, R8)
	MOVQ(RCX, R9)
	DECQ(R9)
	Label(name + "_tweak")
	ADDQ(Imm(16), R8)
	VAESENC(m(R8, 0), X8, X8)
	DECQ(R9)
	JNZ(LabelRef(name + "_tweak"))
	VAESENCLAST(m(R8, 16), X8, X8)
	MOVQ(U32(4), R13)
	Label(name + "_eight")
	for i := 1; i < 8; i++ {
		mulAlphaAVX(tw[i-1], tw[i], X0)
	}
	for i, st := range xState {
		VPXOR(m(RSI, 16*i), tw[i], st)
		VPXOR(m(RAX, 0), st, st)
	}
	aesRoundsMem(name+"_rounds", enc, xState)
	for i, st := range xState {
		VPXOR(tw[i], st, st)
		VMOVDQU(st, m(RDI, 16*i))
	}
	mulAlphaAVX(X15, X8, X0)
	ADDQ(Imm(128), RSI)
	ADDQ(Imm(128), RDI)
	DECQ(R13)
	JNZ(LabelRef(name + "_eight"))
	INCQ(R12)
	DECQ(RBX)
	JMP(LabelRef(name + "_sector"))
	Label(name + "_done")
	VZEROALL()
	RET()
}

func main() {
	if twofishMain() {
		return
	}
	ConstraintExpr("amd64,gc,!purego")
	xexAESNI(true)
	xexAESNI(false)
	cbcEncAESNI()
	cbcDecAESNI()
	xexVAES(true)
	xexVAES(false)
	xtsVAES(true)
	xtsVAES(false)
	cbcEnc8AESNI()
	emitConsts()
	xtsPlain64VAES(true)
	xtsPlain64VAES(false)
	cbcDecVAES()
	xtsPlain64AESNI(true)
	xtsPlain64AESNI(false)
	clearVectors()
	serpentECB(true)
	serpentECB(false)
	serpentECBAVX2(true)
	serpentECBAVX2(false)
	Generate()
}
