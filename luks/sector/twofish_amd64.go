//go:build amd64 && gc && !purego

package sector

import (
	"crypto/subtle"
	"encoding/binary"

	"golang.org/x/sys/cpu"
)

// haveTwofishAVX2 reports whether the eight-lane Twofish (twofishEncAVX2, VPGATHERDD on YMM)
// may be used.
var haveTwofishAVX2 = cpu.X86.HasAVX2

// twofishUseAVX512 selects the sixteen-lane code (VPERMT2B S-box lookups, GF2P8AFFINEQB for
// the MDS matrix); tests clear it to run the AVX2 code on an AVX-512 machine.
var twofishUseAVX512 = haveTwofishAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW &&
	cpu.X86.HasAVX512VBMI && cpu.X86.HasAVX512GFNI

// The SIMD code is used only where it gives the published answer on this CPU. Emulators
// are the reason: qemu 7.2's TCG (Debian 12's, which the dm-crypt VM tests run on)
// computes the AVX2 code's VPGATHERDDs wrongly, so a guest on it would write data no other
// implementation reads. One 32-block known-answer test per kernel at start-up costs a few
// microseconds; a CPU that fails it runs the portable code.
func init() {
	if haveTwofishAVX2 && !twofishKnownAnswer(twofishEncAVX2, twofishDecAVX2) {
		haveTwofishAVX2, twofishUseAVX512 = false, false
	}
	if twofishUseAVX512 && !twofishKnownAnswer(twofishEncAVX512, twofishDecAVX512) {
		twofishUseAVX512 = false
	}
}

// twofishKnownAnswer runs the Twofish paper's first 128-bit vector (zero key, zero block)
// through enc and dec, 32 blocks at once.
func twofishKnownAnswer(enc, dec func(k *uint32, dst, src *byte, n int)) bool {
	want := [16]byte{0x9f, 0x58, 0x9f, 0x5c, 0xf6, 0x12, 0x2c, 0x32, 0xb6, 0xbf, 0xec, 0x2f, 0x2a, 0xe8, 0xc3, 0x5a}
	k, err := newTwofishKey(make([]byte, 16))
	if err != nil {
		return false
	}
	defer k.wipe()
	var b [32 * 16]byte
	enc(&k.s[0][0], &b[0], &b[0], 32)
	for i := 0; i < len(b); i += 16 {
		if [16]byte(b[i:i+16]) != want {
			return false
		}
	}
	dec(&k.s[0][0], &b[0], &b[0], 32)
	return b == [32 * 16]byte{}
}

// twofishStep is how many blocks one step of the selected SIMD code takes.
func twofishStep() int {
	if twofishUseAVX512 {
		return 32
	}
	return 16
}

// twofishBlocks runs n blocks (a multiple of 32) through the best SIMD code.
func twofishBlocks(k *twofishKey, dst, src *byte, n int, enc bool) {
	switch {
	case twofishUseAVX512 && enc:
		twofishEncAVX512(&k.s[0][0], dst, src, n)
	case twofishUseAVX512:
		twofishDecAVX512(&k.s[0][0], dst, src, n)
	case enc:
		twofishEncAVX2(&k.s[0][0], dst, src, n)
	default:
		twofishDecAVX2(&k.s[0][0], dst, src, n)
	}
}

// twofishBatch is how many sectors' IVs (and XTS tweaks) one SIMD call encrypts together.
const twofishBatch = 32

// cryptTwofish is crypt for Twofish XTS, ECB and CBC decryption with SIMD: whole sectors of
// 32 blocks per call, and the ESSIV IVs and the XTS first tweaks of up to 32 sectors in one
// call instead of one block each.
func (c *Cipher) cryptTwofish(dst, src []byte, first uint64, enc bool) {
	var ivs [twofishBatch][16]byte
	var buf [SectorSize]byte
	t := c.tf
	for off := 0; off < len(src); {
		n := min((len(src)-off)/SectorSize, twofishBatch)
		s0 := first + uint64(off/SectorSize)
		if c.spec.Chain != "ecb" {
			for j := 0; j < n; j++ {
				if t.essiv != nil {
					ivs[j] = [16]byte{}
					binary.LittleEndian.PutUint64(ivs[j][:], s0+uint64(j))
				} else {
					c.genIV(&ivs[j], s0+uint64(j))
				}
			}
			if t.essiv != nil {
				twofishEncryptIVs(t.essiv, &ivs, n)
			}
			if c.spec.Chain == "xts" {
				twofishEncryptIVs(t.tweak, &ivs, n)
			}
		}
		for j := 0; j < n; j++ {
			o := off + j*SectorSize
			d, x := dst[o:o+SectorSize], src[o:o+SectorSize]
			switch c.spec.Chain {
			case "ecb":
				twofishBlocks(t.data, &d[0], &x[0], SectorSize/16, enc)
			case "xts":
				xtsTweaksFrom(buf[:], &ivs[j])
				subtle.XORBytes(d, x, buf[:])
				twofishBlocks(t.data, &d[0], &d[0], SectorSize/16, enc)
				subtle.XORBytes(d, d, buf[:])
			default: // cbc decryption
				// buf = D(C_j) ⊕ C_{j−1} is finished before d is written, so d may be x.
				twofishBlocks(t.data, &buf[0], &x[0], SectorSize/16, false)
				subtle.XORBytes(buf[16:], buf[16:], x[:SectorSize-16])
				subtle.XORBytes(buf[:16], buf[:16], ivs[j][:])
				copy(d, buf[:])
			}
		}
		off += n * SectorSize
	}
	clear(ivs[:])
	clear(buf[:])
}

// twofishEncryptIVs encrypts b[:n] in place with k: one SIMD step from three blocks on
// (below that the table code is cheaper than a 32-block step).
func twofishEncryptIVs(k *twofishKey, b *[twofishBatch][16]byte, n int) {
	if n < 3 {
		for j := 0; j < n; j++ {
			k.Encrypt(b[j][:], b[j][:])
		}
		return
	}
	twofishBlocks(k, &b[0][0], &b[0][0], twofishBatch, true)
}
