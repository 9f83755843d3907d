//go:build amd64 && gc && !purego

package sector

import (
	"crypto/subtle"
	"encoding/binary"

	"golang.org/x/sys/cpu"
)

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

// serpentBatch is how many sectors' IVs (and XTS tweaks) one bitsliced Serpent call encrypts
// together: 32 blocks, one step of the AVX-512 assembly, four of the AVX2.
const serpentBatch = 32

// cryptSerpent is crypt for Serpent XTS and CBC decryption with AVX-512 or AVX2: the ESSIV
// IVs and the XTS first tweaks of up to 32 sectors are encrypted in one assembly call when
// there are enough of them to pay for it, instead of one portable block each.
func (c *Cipher) cryptSerpent(dst, src []byte, first uint64, enc bool) {
	var ivs [serpentBatch][16]byte
	for off := 0; off < len(src); {
		n := min((len(src)-off)/SectorSize, serpentBatch)
		s0 := first + uint64(off/SectorSize)
		essiv, _ := c.essiv.(*serpentBlock)
		for j := 0; j < n; j++ {
			if essiv != nil {
				ivs[j] = [16]byte{}
				binary.LittleEndian.PutUint64(ivs[j][:], s0+uint64(j))
			} else {
				c.genIV(&ivs[j], s0+uint64(j))
			}
		}
		if essiv != nil {
			c.serpentBlocks(essiv, &ivs, n)
		}
		if c.spec.Chain == "xts" {
			// The first tweaks T = E_K2(iv): serpentSector then starts from them.
			c.serpentBlocks(c.spTweak, &ivs, n)
		}
		for j := 0; j < n; j++ {
			o := off + j*SectorSize
			c.serpentSectorWith(dst[o:o+SectorSize], src[o:o+SectorSize], &ivs[j], enc, c.spec.Chain == "xts")
		}
		off += n * SectorSize
	}
	clear(ivs[:])
}

// serpentBlocks encrypts b[:n] in place with k: whole assembly steps from three blocks on
// (below that the portable block is cheaper).
func (c *Cipher) serpentBlocks(k *serpentBlock, b *[serpentBatch][16]byte, n int) {
	if n < 3 {
		for j := 0; j < n; j++ {
			k.Encrypt(b[j][:], b[j][:])
		}
		return
	}
	step := serpentStep()
	serpentEnc(&k.k[0][0], &b[0][0], &b[0][0], (n+step-1)/step*step)
}

// serpentSector runs one 512-byte sector (32 blocks) through the bitsliced Serpent for XTS,
// ECB and CBC decryption, and reports whether it did; CBC encryption is serial and LRW keeps
// the portable code.
func (c *Cipher) serpentSector(d, x []byte, iv *[16]byte, enc bool) bool {
	return c.serpentSectorWith(d, x, iv, enc, false)
}

// serpentSectorWith is serpentSector; with tweaked, iv already is the XTS tweak E_K2(iv).
func (c *Cipher) serpentSectorWith(d, x []byte, iv *[16]byte, enc, tweaked bool) bool {
	k := &c.sp.k[0][0]
	crypt := serpentDec
	if enc {
		crypt = serpentEnc
	}
	switch {
	case c.spec.Chain == "ecb":
		crypt(k, &d[0], &x[0], SectorSize/16)
	case c.spec.Chain == "xts":
		var tw [SectorSize]byte
		t := *iv
		if !tweaked {
			c.spTweak.Encrypt(t[:], iv[:])
		}
		xtsTweaksFrom(tw[:], &t)
		subtle.XORBytes(d, x, tw[:])
		crypt(k, &d[0], &d[0], SectorSize/16)
		subtle.XORBytes(d, d, tw[:])
		clear(tw[:])
	case c.spec.Chain == "cbc" && !enc:
		// buf = D(C_j) ⊕ C_{j−1} is finished before d is written, so d may be x.
		var buf [SectorSize]byte
		crypt(k, &buf[0], &x[0], SectorSize/16)
		subtle.XORBytes(buf[16:], buf[16:], x[:SectorSize-16])
		subtle.XORBytes(buf[:16], buf[:16], iv[:])
		copy(d, buf[:])
		clear(buf[:])
	default:
		return false
	}
	return true
}
