//go:build !amd64 || !gc || purego

package sector

// No bitsliced Serpent on this platform: serpentBlock's portable code is used.
const (
	haveSerpentAVX2 = false
	haveSerpentSIMD = false
)

var serpentUseAVX512 = false // a var, as on amd64: the tests switch it

// The stubs are never called (haveSerpentSIMD is false, so no Cipher has an sp); they only
// keep the callers and the tests compiling.

func serpentStep() int                                 { return 32 }
func serpentEnc8AVX2(k *uint32, dst, src *byte, n int) { panic("sector: no AVX2") }
func serpentDec8AVX2(k *uint32, dst, src *byte, n int) { panic("sector: no AVX2") }

func (c *Cipher) cryptSerpent(dst, src []byte, first uint64, enc bool) {
	panic("sector: no SIMD Serpent")
}

func (c *Cipher) serpentSector(d, x []byte, iv *[16]byte, enc bool) bool { return false }
