//go:build !amd64 || !gc || purego

package sector

// No bitsliced Serpent on this platform: serpentBlock's portable code is used.
const (
	haveSerpentAVX2 = false
	haveSerpentSIMD = false
)

var serpentUseAVX512 = false // a var, as on amd64: the tests switch it

func serpentEnc(k *uint32, dst, src *byte, n int)      { panic("sector: no AVX2") }
func serpentDec(k *uint32, dst, src *byte, n int)      { panic("sector: no AVX2") }
func serpentStep() int                                 { return 32 }
func serpentEnc8AVX2(k *uint32, dst, src *byte, n int) { panic("sector: no AVX2") }
func serpentDec8AVX2(k *uint32, dst, src *byte, n int) { panic("sector: no AVX2") }
