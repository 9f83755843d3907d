//go:build !amd64 || !gc || purego

package sector

// No Twofish assembly on this platform: x/crypto/twofish runs.
const haveTwofishAVX2 = false

var twofishUseAVX512 = false

func twofishEncAVX2(k *uint32, dst, src *byte, n int)   { panic("sector: no AVX2") }
func twofishDecAVX2(k *uint32, dst, src *byte, n int)   { panic("sector: no AVX2") }
func twofishEncAVX512(k *uint32, dst, src *byte, n int) { panic("sector: no AVX-512") }
func twofishDecAVX512(k *uint32, dst, src *byte, n int) { panic("sector: no AVX-512") }
