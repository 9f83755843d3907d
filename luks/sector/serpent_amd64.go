//go:build amd64 && gc && !purego

package sector

import "golang.org/x/sys/cpu"

// haveSerpentAVX2 reports whether the bitsliced AVX2 Serpent (serpentEnc8AVX2) may be used:
// the path of the CPUs without AVX-512 (Zen 2/3, Intel before Ice Lake).
var haveSerpentAVX2 = cpu.X86.HasAVX2

// haveSerpentSIMD reports whether one of the two bitsliced Serpents may be used.
var haveSerpentSIMD = haveSerpentAVX512 || haveSerpentAVX2

// serpentUseAVX512 selects the AVX-512 Serpent over the AVX2 one. It is read on every call,
// not at New, so that the tests and benchmarks run both on a machine with AVX-512.
var serpentUseAVX512 = haveSerpentAVX512

// serpentEnc Serpent-encrypts n blocks, a multiple of serpentStep(), with the bitsliced code
// this machine runs; dst may equal src.
func serpentEnc(k *uint32, dst, src *byte, n int) {
	if serpentUseAVX512 {
		serpentEnc32(k, dst, src, n)
	} else {
		serpentEnc8AVX2(k, dst, src, n)
	}
}

// serpentDec is serpentEnc decrypting.
func serpentDec(k *uint32, dst, src *byte, n int) {
	if serpentUseAVX512 {
		serpentDec32(k, dst, src, n)
	} else {
		serpentDec8AVX2(k, dst, src, n)
	}
}

// serpentStep is how many blocks serpentEnc and serpentDec take at a time.
func serpentStep() int {
	if serpentUseAVX512 {
		return 32
	}
	return 8
}
