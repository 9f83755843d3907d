//go:build amd64 && gc && !purego

package sector

import "golang.org/x/sys/cpu"

// haveTwofishAVX2 reports whether the eight-lane Twofish (twofishEncAVX2, VPGATHERDD on YMM)
// may be used.
var haveTwofishAVX2 = cpu.X86.HasAVX2

// twofishUseAVX512 selects the sixteen-lane code (VPERMT2B S-box lookups, GF2P8AFFINEQB for
// the MDS matrix); tests clear it to run the AVX2 code on an AVX-512 machine.
var twofishUseAVX512 = haveTwofishAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW &&
	cpu.X86.HasAVX512VBMI && cpu.X86.HasAVX512GFNI
