//go:build !amd64 || !gc || purego

package sector

// No assembly on this platform: the portable code paths are used.
const haveAESNI = false

func aesniXEXEnc(nr int, rk *byte, dst, src, tw *byte, n int) { panic("sector: no AES-NI") }
func aesniXEXDec(nr int, rk *byte, dst, src, tw *byte, n int) { panic("sector: no AES-NI") }
func aesniCBCEnc(nr int, rk *byte, dst, src, iv *byte, n int) { panic("sector: no AES-NI") }
func aesniCBCDec(nr int, rk *byte, dst, src, iv *byte, n int) { panic("sector: no AES-NI") }

const haveVAES = false

func vaesXEXEnc(nr int, rk *byte, dst, src, tw *byte, n int)  { panic("sector: no VAES") }
func vaesXEXDec(nr int, rk *byte, dst, src, tw *byte, n int)  { panic("sector: no VAES") }
func vaesXTSEnc(nr int, rk *byte, dst, src, tw4 *byte, n int) { panic("sector: no VAES") }
func vaesXTSDec(nr int, rk *byte, dst, src, tw4 *byte, n int) { panic("sector: no VAES") }

func aesniCBCEnc8(nr int, rk *byte, dst, src, ivs *byte) { panic("sector: no AES-NI") }

func vaesXTSPlain64Enc(nr int, rk, rkt *byte, dst, src *byte, sector uint64, nsec int) {
	panic("sector: no VAES")
}
func vaesXTSPlain64Dec(nr int, rk, rkt *byte, dst, src *byte, sector uint64, nsec int) {
	panic("sector: no VAES")
}
func vaesCBCDecSectors(nr int, rk *byte, ivnr int, rkiv *byte, dst, src *byte, sector uint64, nsec int) {
	panic("sector: no VAES")
}

const haveSerpentAVX512 = false

func serpentEnc32(k *uint32, dst, src *byte, n int) { panic("sector: no AVX-512") }
func serpentDec32(k *uint32, dst, src *byte, n int) { panic("sector: no AVX-512") }

var haveAESNIAVX = false // a var, as on amd64: BenchmarkAESNI switches it

func aesniXTSPlain64Enc(nr int, rk, rkt *byte, dst, src *byte, sector uint64, nsec int) {
	panic("sector: no AES-NI")
}
func aesniXTSPlain64Dec(nr int, rk, rkt *byte, dst, src *byte, sector uint64, nsec int) {
	panic("sector: no AES-NI")
}

// wipeRegisters has no portable form: the key bytes Go code moved through vector registers
// stay there until overwritten.
func wipeRegisters() {}
