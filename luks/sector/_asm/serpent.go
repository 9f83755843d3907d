package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Serpent with AVX-512, bitsliced: the 32-bit word j of 16 blocks sits in one ZMM register,
// so each S-box is a 4-input boolean function per output bit, three VPTERNLOGD each (the
// function with x3 = 0, with x3 = 1, and a select on x3), and the linear transform is
// rotates, shifts and three-way XORs. Two groups of 16 blocks are interleaved, one 512-byte
// sector per iteration. The S-boxes are the specification's tables (Anderson, Biham,
// Knudsen), with input bit i from word i and output bit j to word j, as in serpent.go.
var serpentSbox = [8][16]byte{
	{3, 8, 15, 1, 10, 6, 5, 11, 14, 13, 4, 2, 7, 0, 9, 12},
	{15, 12, 2, 7, 9, 0, 5, 10, 1, 11, 14, 8, 6, 13, 3, 4},
	{8, 6, 7, 9, 3, 12, 10, 15, 13, 1, 14, 4, 0, 11, 5, 2},
	{0, 15, 11, 8, 12, 9, 6, 3, 13, 1, 2, 4, 10, 7, 5, 14},
	{1, 15, 8, 3, 12, 0, 11, 6, 2, 5, 4, 10, 9, 14, 7, 13},
	{15, 5, 2, 11, 4, 10, 9, 12, 0, 3, 14, 8, 13, 6, 7, 1},
	{7, 2, 12, 5, 8, 4, 6, 11, 14, 9, 1, 15, 13, 3, 10, 0},
	{1, 13, 15, 0, 14, 8, 2, 11, 7, 4, 12, 10, 9, 3, 5, 6},
}

func inverse(s [16]byte) (inv [16]byte) {
	for i, v := range s {
		inv[v] = byte(i)
	}
	return inv
}

// ternImm is the VPTERNLOGD immediate of f(a, b, c), a the destination's old value, b the
// second source, c the third (Intel's index a·4 + b·2 + c).
func ternImm(f func(a, b, c int) int) uint64 {
	var imm uint64
	for i := 0; i < 8; i++ {
		imm |= uint64(f(i>>2&1, i>>1&1, i&1)&1) << i
	}
	return imm
}

// serpentGroup is the register set of one group of 16 blocks: x the state words, y the
// S-box outputs (then swapped with x), t scratch.
type serpentGroup struct {
	x, y [4]VecPhysical
	t    [2]VecPhysical
}

var serpentGroups = []*serpentGroup{
	{x: [4]VecPhysical{Z0, Z1, Z2, Z3}, y: [4]VecPhysical{Z4, Z5, Z6, Z7}, t: [2]VecPhysical{Z8, Z9}},
	{x: [4]VecPhysical{Z16, Z17, Z18, Z19}, y: [4]VecPhysical{Z20, Z21, Z22, Z23}, t: [2]VecPhysical{Z24, Z25}},
}

var serpentKey = Z10 // one subkey word, broadcast

// sbox applies s to every group: output bit j of s[x3x2x1x0] into y[j], then x and y swap.
func sbox(s [16]byte) {
	for j := 0; j < 4; j++ {
		f0 := ternImm(func(a, b, c int) int { return int(s[a|b<<1|c<<2]) >> j })
		f1 := ternImm(func(a, b, c int) int { return int(s[8|a|b<<1|c<<2]) >> j })
		mux := ternImm(func(a, b, c int) int {
			if c == 1 {
				return b
			}
			return a
		})
		for _, g := range serpentGroups {
			VMOVDQA64(g.x[0], g.y[j])
			VPTERNLOGD(Imm(f0), g.x[2], g.x[1], g.y[j])
			VMOVDQA64(g.x[0], g.t[1])
			VPTERNLOGD(Imm(f1), g.x[2], g.x[1], g.t[1])
			VPTERNLOGD(Imm(mux), g.x[3], g.t[1], g.y[j])
		}
	}
	for _, g := range serpentGroups {
		g.x, g.y = g.y, g.x
	}
}

var xor3 = ternImm(func(a, b, c int) int { return a ^ b ^ c })

// keyMix XORs subkey r (four words at AX+16r) into every group.
func keyMix(r int) {
	for j := 0; j < 4; j++ {
		VPBROADCASTD(m(RAX, 16*r+4*j), serpentKey)
		for _, g := range serpentGroups {
			VPXORD(serpentKey, g.x[j], g.x[j])
		}
	}
}

// lt is serpentLT on every group; t[0] holds the shifted word.
func lt() {
	for _, g := range serpentGroups {
		x, t := &g.x, g.t[0]
		VPROLD(Imm(13), x[0], x[0])
		VPROLD(Imm(3), x[2], x[2])
		VPTERNLOGD(Imm(xor3), x[2], x[0], x[1])
		VPSLLD(Imm(3), x[0], t)
		VPTERNLOGD(Imm(xor3), t, x[2], x[3])
		VPROLD(Imm(1), x[1], x[1])
		VPROLD(Imm(7), x[3], x[3])
		VPTERNLOGD(Imm(xor3), x[3], x[1], x[0])
		VPSLLD(Imm(7), x[1], t)
		VPTERNLOGD(Imm(xor3), t, x[3], x[2])
		VPROLD(Imm(5), x[0], x[0])
		VPROLD(Imm(22), x[2], x[2])
	}
}

// ilt is serpentILT on every group.
func ilt() {
	for _, g := range serpentGroups {
		x, t := &g.x, g.t[0]
		VPRORD(Imm(22), x[2], x[2])
		VPRORD(Imm(5), x[0], x[0])
		VPSLLD(Imm(7), x[1], t)
		VPTERNLOGD(Imm(xor3), t, x[3], x[2])
		VPTERNLOGD(Imm(xor3), x[3], x[1], x[0])
		VPRORD(Imm(7), x[3], x[3])
		VPRORD(Imm(1), x[1], x[1])
		VPSLLD(Imm(3), x[0], t)
		VPTERNLOGD(Imm(xor3), t, x[2], x[3])
		VPTERNLOGD(Imm(xor3), x[2], x[0], x[1])
		VPRORD(Imm(3), x[2], x[2])
		VPRORD(Imm(13), x[0], x[0])
	}
}

// transpose turns four registers of four blocks each (one block per 128-bit lane) into
// four registers of one word each, and back (it is its own inverse): a 4×4 transpose of
// 32-bit words inside every 128-bit lane, through y.
func transpose(g *serpentGroup) {
	r, t := g.x, g.y
	VPUNPCKLDQ(r[1], r[0], t[0])
	VPUNPCKHDQ(r[1], r[0], t[1])
	VPUNPCKLDQ(r[3], r[2], t[2])
	VPUNPCKHDQ(r[3], r[2], t[3])
	VPUNPCKLQDQ(t[2], t[0], r[0])
	VPUNPCKHQDQ(t[2], t[0], r[1])
	VPUNPCKLQDQ(t[3], t[1], r[2])
	VPUNPCKHQDQ(t[3], t[1], r[3])
}

// serpentECB emits serpentEnc32/serpentDec32: n blocks, a multiple of 32, through the
// 33 subkeys at k (serpentBlock.k).
func serpentECB(enc bool) {
	name := "serpent" + encdec(enc) + "32"
	TEXT(name, NOSPLIT, "func(k *uint32, dst, src *byte, n int)")
	if enc {
		Doc(name+" Serpent-encrypts n blocks (a multiple of 32) with the subkeys k",
			"(serpentBlock.k), 32 at a time with AVX-512; dst may equal src.")
	} else {
		Doc(name + " is serpentEnc32 decrypting.")
	}
	Pragma("noescape")
	Load(Param("k"), RAX)
	Load(Param("dst"), RDI)
	Load(Param("src"), RSI)
	Load(Param("n"), RBX)
	Label(name + "_loop")
	CMPQ(RBX, Imm(32))
	JB(LabelRef(name + "_done"))
	for gi, g := range serpentGroups {
		for j := 0; j < 4; j++ {
			VMOVDQU32(m(RSI, 256*gi+64*j), g.x[j])
		}
		transpose(g)
	}
	if enc {
		for r := 0; r < 32; r++ {
			keyMix(r)
			sbox(serpentSbox[r%8])
			if r < 31 {
				lt()
			}
		}
		keyMix(32)
	} else {
		keyMix(32)
		for r := 31; r >= 0; r-- {
			if r < 31 {
				ilt()
			}
			sbox(inverse(serpentSbox[r%8]))
			keyMix(r)
		}
	}
	for gi, g := range serpentGroups {
		transpose(g)
		for j := 0; j < 4; j++ {
			VMOVDQU32(g.x[j], m(RDI, 256*gi+64*j))
		}
	}
	ADDQ(U32(512), RSI)
	ADDQ(U32(512), RDI)
	SUBQ(Imm(32), RBX)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}
