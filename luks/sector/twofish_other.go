//go:build !amd64 || !gc || purego

package sector

// No Twofish assembly on this platform: twofishKey's Go code runs. The stubs are never called
// (haveTwofishAVX2 is false, so no Cipher has a tf); they only keep the tests compiling.
const haveTwofishAVX2 = false

var twofishUseAVX512 = false

func twofishStep() int { return 32 }

func twofishBlocks(k *twofishKey, dst, src *byte, n int, enc bool) { panic("sector: no SIMD Twofish") }

func (c *Cipher) cryptTwofish(dst, src []byte, first uint64, enc bool) {
	panic("sector: no SIMD Twofish")
}
