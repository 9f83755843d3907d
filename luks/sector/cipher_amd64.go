//go:build amd64 && gc && !purego

package sector

import (
	"encoding/binary"
)

// The AES-NI and VAES modes: built where the assembly is, so that the portable builds have
// no code that only calls the panicking stubs of aesni_other.go.

// batchSectors is how many sectors' tweaks are computed before one assembly call.
const batchSectors = 8

// encryptBlock encrypts one block with the assembly.
func (k *aesSchedule) encryptBlock(dst, src *[16]byte) {
	var zero [16]byte
	aesniXEXEnc(k.rounds, &k.enc[0], &dst[0], &src[0], &zero[0], 1)
}

// ivsAESNI fills ivs[:n] for sectors first… first+n−1; ESSIV IVs of the batch are encrypted
// in one parallel call instead of n serial ones.
func (c *Cipher) ivsAESNI(ivs *[batchSectors][16]byte, first uint64, n int) {
	if c.spec.IV != "essiv" {
		for j := 0; j < n; j++ {
			c.ivAESNI(&ivs[j], first+uint64(j))
		}
		return
	}
	for j := 0; j < n; j++ {
		ivs[j] = [16]byte{}
		binary.LittleEndian.PutUint64(ivs[j][:], first+uint64(j))
	}
	var zero [batchSectors][16]byte
	k := c.niEssiv
	aesniXEXEnc(k.rounds, &k.enc[0], &ivs[0][0], &ivs[0][0], &zero[0][0], n)
}

// ivAESNI is genIV for the AES-NI path. It makes no interface calls, so its buffers stay on
// the stack and the fast path does not allocate.
func (c *Cipher) ivAESNI(iv *[16]byte, s uint64) {
	if simpleIV(iv, c.spec.IV, s) {
		return
	}
	k := c.ni
	switch c.spec.IV {
	case "essiv":
		binary.LittleEndian.PutUint64(iv[:], s)
		c.niEssiv.encryptBlock(iv, iv)
	case "eboiv":
		// The chain mode applied to one zero block with IV LE64(s·512), as in genIV.
		var buf, zero, t [16]byte
		binary.LittleEndian.PutUint64(buf[:], s*SectorSize)
		switch c.spec.Chain {
		case "cbc":
			aesniCBCEnc(k.rounds, &k.enc[0], &iv[0], &zero[0], &buf[0], 1)
		case "xts":
			c.niTweak.encryptBlock(&t, &buf)
			aesniXEXEnc(k.rounds, &k.enc[0], &iv[0], &zero[0], &t[0], 1)
		case "lrw":
			c.lrw.tweaks(t[:], &buf)
			aesniXEXEnc(k.rounds, &k.enc[0], &iv[0], &zero[0], &t[0], 1)
		}
		clear(t[:])
	default:
		panic("sector: unknown IV generator " + c.spec.IV)
	}
}

// xexAESNI runs XTS, LRW or ECB over dst/src in batches of len(tw) bytes; tw is scratch.
func (c *Cipher) xexAESNI(dst, src []byte, first uint64, enc bool, tw []byte) {
	k := c.ni
	var ivs, ts [batchSectors][16]byte
	for off := 0; off < len(src); {
		n := min(len(src)-off, len(tw))
		nsec := n / SectorSize
		if c.spec.Chain != "ecb" {
			c.ivsAESNI(&ivs, first+uint64(off/SectorSize), nsec)
			if c.spec.Chain == "xts" {
				// All first tweaks T = E_K2(iv) of the batch in one parallel call.
				var zero [batchSectors][16]byte
				kt := c.niTweak
				aesniXEXEnc(kt.rounds, &kt.enc[0], &ts[0][0], &ivs[0][0], &zero[0][0], nsec)
				for j := 0; j < nsec; j++ {
					xtsTweaksFrom(tw[j*SectorSize:(j+1)*SectorSize], &ts[j])
				}
			} else {
				for j := 0; j < nsec; j++ {
					c.lrw.tweaks(tw[j*SectorSize:(j+1)*SectorSize], &ivs[j])
				}
			}
		}
		switch {
		case c.vaes && enc:
			vaesXEXEnc(k.rounds, &k.enc[0], &dst[off], &src[off], &tw[0], n/16)
		case c.vaes:
			vaesXEXDec(k.rounds, &k.dec[0], &dst[off], &src[off], &tw[0], n/16)
		case enc:
			aesniXEXEnc(k.rounds, &k.enc[0], &dst[off], &src[off], &tw[0], n/16)
		default:
			aesniXEXDec(k.rounds, &k.dec[0], &dst[off], &src[off], &tw[0], n/16)
		}
		off += n
	}
	if c.spec.Chain != "ecb" {
		clear(tw)
		clear(ts[:])
	}
}

// xtsVAES is XTS with the VAES assembly, which derives all tweaks of a sector from the first
// four in registers: Go only computes T = E_K2(iv) (for a whole batch in one call) and T·α^1..3.
func (c *Cipher) xtsVAES(dst, src []byte, first uint64, enc bool) {
	k, kt := c.ni, c.niTweak
	var ivs, ts, zero [batchSectors][16]byte
	var tw4 [batchSectors * 64]byte
	for off := 0; off < len(src); {
		nsec := min((len(src)-off)/SectorSize, batchSectors)
		c.ivsAESNI(&ivs, first+uint64(off/SectorSize), nsec)
		aesniXEXEnc(kt.rounds, &kt.enc[0], &ts[0][0], &ivs[0][0], &zero[0][0], nsec)
		for j := 0; j < nsec; j++ {
			xtsTweaksFrom(tw4[j*64:(j+1)*64], &ts[j])
		}
		if enc {
			vaesXTSEnc(k.rounds, &k.enc[0], &dst[off], &src[off], &tw4[0], nsec)
		} else {
			vaesXTSDec(k.rounds, &k.dec[0], &dst[off], &src[off], &tw4[0], nsec)
		}
		off += nsec * SectorSize
	}
	clear(tw4[:])
	clear(ts[:])
}

// cryptAESNI is crypt for AES with AES-NI: tweaks of up to batchSectors sectors are computed
// in Go, then the assembly runs eight blocks in parallel (XTS, LRW, ECB, CBC decryption);
// CBC encryption is serial by construction but avoids per-block call overhead.
func (c *Cipher) cryptAESNI(dst, src []byte, first uint64, enc bool) {
	k := c.ni
	if c.vaes && c.cryptVAESFused(dst, src, first, enc) {
		return
	}
	if !c.vaes && haveAESNIAVX && c.spec.Chain == "xts" && c.spec.IV == "plain64" {
		// The AES-NI counterpart of the fused VAES XTS: one call, tweaks in registers.
		kt, nsec := c.niTweak, len(src)/SectorSize
		if enc {
			aesniXTSPlain64Enc(k.rounds, &k.enc[0], &kt.enc[0], &dst[0], &src[0], first, nsec)
		} else {
			aesniXTSPlain64Dec(k.rounds, &k.dec[0], &kt.enc[0], &dst[0], &src[0], first, nsec)
		}
		return
	}
	switch c.spec.Chain {
	case "xts", "lrw", "ecb":
		if c.vaes && c.spec.Chain == "xts" {
			c.xtsVAES(dst, src, first, enc)
			break
		}
		// Go zeroes stack arrays on entry: a single sector (the common I/O unit of the
		// luks package's key slots and small reads) gets a small tweak buffer.
		if len(src) == SectorSize {
			var tw [SectorSize]byte
			c.xexAESNI(dst, src, first, enc, tw[:])
		} else {
			var tw [batchSectors * SectorSize]byte
			c.xexAESNI(dst, src, first, enc, tw[:])
		}
	case "cbc":
		var ivs [batchSectors][16]byte
		for off := 0; off < len(src); {
			nsec := min((len(src)-off)/SectorSize, batchSectors)
			c.ivsAESNI(&ivs, first+uint64(off/SectorSize), nsec)
			if enc && nsec == batchSectors {
				aesniCBCEnc8(k.rounds, &k.enc[0], &dst[off], &src[off], &ivs[0][0])
			} else {
				for j := 0; j < nsec; j++ {
					o := off + j*SectorSize
					if enc {
						aesniCBCEnc(k.rounds, &k.enc[0], &dst[o], &src[o], &ivs[j][0], SectorSize/16)
					} else {
						aesniCBCDec(k.rounds, &k.dec[0], &dst[o], &src[o], &ivs[j][0], SectorSize/16)
					}
				}
			}
			off += nsec * SectorSize
		}
		clear(ivs[:])
	}
}

// cryptVAESFused runs the specs dm-crypt volumes mostly use — aes-xts-plain64 both ways and
// aes-cbc-plain64/essiv decryption — as one assembly call for the whole buffer: IVs, tweaks
// and data in the same pass, nothing computed in Go or spilled to memory, so the per-call
// cost is paid once per batch however many sectors it holds. It reports whether it did.
func (c *Cipher) cryptVAESFused(dst, src []byte, first uint64, enc bool) bool {
	k, nsec := c.ni, len(src)/SectorSize
	switch {
	case c.spec.Chain == "xts" && c.spec.IV == "plain64":
		kt := c.niTweak
		if enc {
			vaesXTSPlain64Enc(k.rounds, &k.enc[0], &kt.enc[0], &dst[0], &src[0], first, nsec)
		} else {
			vaesXTSPlain64Dec(k.rounds, &k.dec[0], &kt.enc[0], &dst[0], &src[0], first, nsec)
		}
		return true
	case c.spec.Chain == "cbc" && !enc && c.spec.IV == "plain64":
		vaesCBCDecSectors(k.rounds, &k.dec[0], 0, nil, &dst[0], &src[0], first, nsec)
		return true
	case c.spec.Chain == "cbc" && !enc && c.spec.IV == "essiv":
		ke := c.niEssiv
		vaesCBCDecSectors(k.rounds, &k.dec[0], ke.rounds, &ke.enc[0], &dst[0], &src[0], first, nsec)
		return true
	}
	return false
}
