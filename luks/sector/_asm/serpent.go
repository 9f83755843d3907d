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
	// The state, the S-box temporaries and the broadcast subkey word are key-dependent.
	// VZEROUPPER alone would clear only bits 128 and up of Z0–Z15: X0–X15 and Z16–Z31 keep
	// their contents, and the kernel writes them into every signal frame.
	for _, g := range serpentGroups {
		for _, r := range append(append(g.x[:], g.y[:]...), g.t[:]...) {
			VPXORD(r, r, r)
		}
	}
	VPXORD(serpentKey, serpentKey, serpentKey)
	VZEROUPPER()
	RET()
}

// Serpent with AVX2 for the CPUs without AVX-512 (Zen 2/3, Intel before Ice Lake): the same
// bitslicing, 8 blocks in four YMM registers, but without VPTERNLOGD and VPROLD. An S-box
// output bit j is f = f0 ⊕ (x_v ∧ g), f0 the function with x_v = 0 and g = f0 ⊕ f1 the
// difference to x_v = 1, both over the other three words in algebraic normal form; their four
// products (ab, ac, bc, abc) are computed once for the four outputs, and v is chosen per S-box
// for the fewest instructions. A constant 1 in g becomes VPANDN, one in f0 an XOR with all
// ones. Rotates are shift, shift, or. One group (14 of the 16 registers) per iteration.
type avx2Regs struct {
	x, y [4]VecPhysical
	m    [4]VecPhysical // the products, by slot
	t    VecPhysical    // scratch: the x_v ∧ g term, the shifted word of a rotate
	ones VecPhysical    // all bits set, for the NOTs
	key  VecPhysical    // one subkey word, broadcast
}

var avx2 = &avx2Regs{
	x:    [4]VecPhysical{Y0, Y1, Y2, Y3},
	y:    [4]VecPhysical{Y4, Y5, Y6, Y7},
	m:    [4]VecPhysical{Y8, Y9, Y10, Y11},
	t:    Y12,
	ones: Y13,
	key:  Y14,
}

// anf3 is the algebraic normal form of a 3-input function given by its truth table: bit k of
// the index is input k, coefficient i is that of the product of the inputs in i.
func anf3(f [8]byte) [8]byte {
	for i := 0; i < 3; i++ {
		for x := 0; x < 8; x++ {
			if x&(1<<i) != 0 {
				f[x] ^= f[x^(1<<i)]
			}
		}
	}
	return f
}

// sboxSplit is one output bit's f0 and g (in normal form over the three words other than v).
type sboxSplit struct{ f0, g [8]byte }

// splitSbox splits every output bit of s on word v; others are the three remaining words, in
// order, as inputs 0, 1, 2 of the normal forms.
func splitSbox(s [16]byte, v int) (others [3]int, out [4]sboxSplit) {
	n := 0
	for i := 0; i < 4; i++ {
		if i != v {
			others[n] = i
			n++
		}
	}
	for j := 0; j < 4; j++ {
		var f0, f1 [8]byte
		for i := 0; i < 8; i++ {
			x := 0
			for k := 0; k < 3; k++ {
				x |= (i >> k & 1) << others[k]
			}
			f0[i] = s[x] >> j & 1
			f1[i] = s[x|1<<v] >> j & 1
		}
		var g [8]byte
		for i := range g {
			g[i] = f0[i] ^ f1[i]
		}
		out[j] = sboxSplit{anf3(f0), anf3(g)}
	}
	return others, out
}

// products are the product masks a split needs (two or three inputs), in the order computed.
func products(out [4]sboxSplit) []int {
	need := map[int]bool{}
	for _, o := range out {
		for i := 3; i < 8; i++ {
			if i&(i-1) != 0 && (o.f0[i] == 1 || o.g[i] == 1) {
				need[i] = true
			}
		}
	}
	// abc is built from a pair product: keep one if none is needed for itself.
	if need[7] && !need[3] && !need[5] && !need[6] {
		need[3] = true
	}
	var p []int
	for _, i := range []int{3, 5, 6, 7} {
		if need[i] {
			p = append(p, i)
		}
	}
	return p
}

// terms lists the non-constant monomials of a normal form.
func terms(a [8]byte) (t []int) {
	for i := 1; i < 8; i++ {
		if a[i] == 1 {
			t = append(t, i)
		}
	}
	return t
}

// splitCost is the instruction count of an S-box split on v.
func splitCost(s [16]byte, v int) int {
	_, out := splitSbox(s, v)
	n := len(products(out))
	for _, o := range out {
		tg, t0 := terms(o.g), terms(o.f0)
		k := len(t0)
		if len(tg) > 0 {
			n += len(tg) // XORs of the terms less one, and the AND
			k++
		} else if o.g[0] == 1 {
			k++ // x_v itself
		}
		n += max(k-1, 1) + int(o.f0[0])
	}
	return n
}

// sboxAVX2 applies s: output bit j into y[j], then x and y swap.
func sboxAVX2(s [16]byte) {
	r := avx2
	best := 0
	for v := 1; v < 4; v++ {
		if splitCost(s, v) < splitCost(s, best) {
			best = v
		}
	}
	others, out := splitSbox(s, best)
	sig := map[int]VecPhysical{}
	for k := 0; k < 3; k++ {
		sig[1<<k] = r.x[others[k]]
	}
	for slot, p := range products(out) {
		dst := r.m[slot]
		switch {
		case p != 7:
			lo := p & -p
			VPAND(sig[p^lo], sig[lo], dst)
		case sig[3] != nil:
			VPAND(sig[3], sig[4], dst)
		case sig[5] != nil:
			VPAND(sig[5], sig[2], dst)
		default:
			VPAND(sig[6], sig[1], dst)
		}
		sig[p] = dst
	}
	xv := r.x[best]
	for j, o := range out {
		var parts []VecPhysical
		for _, i := range terms(o.f0) {
			parts = append(parts, sig[i])
		}
		// The NOT before the x_v ∧ g term, which is the last to be ready.
		if o.f0[0] == 1 {
			parts = append(parts, r.ones)
		}
		switch tg := terms(o.g); {
		case len(tg) > 0:
			acc := sig[tg[0]]
			for _, i := range tg[1:] {
				VPXOR(sig[i], acc, r.t)
				acc = r.t
			}
			if o.g[0] == 1 {
				VPANDN(xv, acc, r.t) // ¬g′ ∧ x_v
			} else {
				VPAND(xv, acc, r.t)
			}
			parts = append(parts, r.t)
		case o.g[0] == 1:
			parts = append(parts, xv)
		}
		y := r.y[j]
		if len(parts) == 1 {
			VMOVDQA(parts[0], y)
		} else {
			VPXOR(parts[1], parts[0], y)
			for _, p := range parts[2:] {
				VPXOR(p, y, y)
			}
		}
	}
	r.x, r.y = r.y, r.x
}

// rolAVX2 rotates x left by n bits through t.
func rolAVX2(x VecPhysical, n int) {
	n &= 31
	VPSLLD(Imm(uint64(n)), x, avx2.t)
	VPSRLD(Imm(uint64(32-n)), x, x)
	VPOR(avx2.t, x, x)
}

// ltAVX2 is serpentLT.
func ltAVX2() {
	x, t := &avx2.x, avx2.t
	rolAVX2(x[0], 13)
	rolAVX2(x[2], 3)
	VPXOR(x[0], x[1], x[1])
	VPXOR(x[2], x[1], x[1])
	VPSLLD(Imm(3), x[0], t)
	VPXOR(x[2], x[3], x[3])
	VPXOR(t, x[3], x[3])
	rolAVX2(x[1], 1)
	rolAVX2(x[3], 7)
	VPXOR(x[1], x[0], x[0])
	VPXOR(x[3], x[0], x[0])
	VPSLLD(Imm(7), x[1], t)
	VPXOR(x[3], x[2], x[2])
	VPXOR(t, x[2], x[2])
	rolAVX2(x[0], 5)
	rolAVX2(x[2], 22)
}

// iltAVX2 is serpentILT.
func iltAVX2() {
	x, t := &avx2.x, avx2.t
	rolAVX2(x[2], -22)
	rolAVX2(x[0], -5)
	VPSLLD(Imm(7), x[1], t)
	VPXOR(x[3], x[2], x[2])
	VPXOR(t, x[2], x[2])
	VPXOR(x[1], x[0], x[0])
	VPXOR(x[3], x[0], x[0])
	rolAVX2(x[3], -7)
	rolAVX2(x[1], -1)
	VPSLLD(Imm(3), x[0], t)
	VPXOR(x[2], x[3], x[3])
	VPXOR(t, x[3], x[3])
	VPXOR(x[0], x[1], x[1])
	VPXOR(x[2], x[1], x[1])
	rolAVX2(x[2], -3)
	rolAVX2(x[0], -13)
}

// keyMixAVX2 XORs subkey r (four words at AX+16r) into the state.
func keyMixAVX2(r int) {
	for j := 0; j < 4; j++ {
		VPBROADCASTD(m(RAX, 16*r+4*j), avx2.key)
		VPXOR(avx2.key, avx2.x[j], avx2.x[j])
	}
}

// serpentECBAVX2 emits serpentEnc8AVX2/serpentDec8AVX2: n blocks, a multiple of 8.
func serpentECBAVX2(enc bool) {
	name := "serpent" + encdec(enc) + "8AVX2"
	TEXT(name, NOSPLIT, "func(k *uint32, dst, src *byte, n int)")
	if enc {
		Doc(name+" Serpent-encrypts n blocks (a multiple of 8) with the subkeys k",
			"(serpentBlock.k), 8 at a time with AVX2; dst may equal src.")
	} else {
		Doc(name + " is serpentEnc8AVX2 decrypting.")
	}
	Pragma("noescape")
	Load(Param("k"), RAX)
	Load(Param("dst"), RDI)
	Load(Param("src"), RSI)
	Load(Param("n"), RBX)
	VPCMPEQD(avx2.ones, avx2.ones, avx2.ones)
	Label(name + "_loop")
	CMPQ(RBX, Imm(8))
	JB(LabelRef(name + "_done"))
	g := &serpentGroup{x: avx2.x, y: avx2.y}
	for j := 0; j < 4; j++ {
		VMOVDQU(m(RSI, 32*j), g.x[j])
	}
	transpose(g)
	if enc {
		for r := 0; r < 32; r++ {
			keyMixAVX2(r)
			sboxAVX2(serpentSbox[r%8])
			if r < 31 {
				ltAVX2()
			}
		}
		keyMixAVX2(32)
	} else {
		keyMixAVX2(32)
		for r := 31; r >= 0; r-- {
			if r < 31 {
				iltAVX2()
			}
			sboxAVX2(inverse(serpentSbox[r%8]))
			keyMixAVX2(r)
		}
	}
	// 32 S-boxes swap x and y an even number of times: the state is back in x.
	g = &serpentGroup{x: avx2.x, y: avx2.y}
	transpose(g)
	for j := 0; j < 4; j++ {
		VMOVDQU(g.x[j], m(RDI, 32*j))
	}
	ADDQ(Imm(128), RSI)
	ADDQ(Imm(128), RDI)
	SUBQ(Imm(8), RBX)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	// The state and the subkey words are key-dependent: clear every YMM register.
	VZEROALL()
	RET()
}
