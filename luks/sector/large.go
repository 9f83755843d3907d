package sector

import "fmt"

// CryptLarge encrypts (enc) or decrypts src into dst in sectors of sectorSize bytes (512 …
// 4096, a power of two: LUKS2's sector_size) the way dm-crypt does without
// iv_large_sectors: each sector is one unit of the chain mode (one XTS or CBC run over all
// its bytes) with one IV, and the IV counts 512-byte sectors, so sector k of the run uses IV
// sector firstIV + k·sectorSize/512. src must be a whole number of sectors; dst as for
// Encrypt. The 512-byte case is Encrypt/Decrypt itself.
//
// With AES-NI each large sector is one call of the assembly (its tweaks or IV computed in
// Go); otherwise the portable chain modes run over the whole sector.
func (c *Cipher) CryptLarge(dst, src []byte, sectorSize int, firstIV uint64, enc bool) error {
	if sectorSize < SectorSize || sectorSize > 4096 || sectorSize&(sectorSize-1) != 0 {
		return fmt.Errorf("%w: sector size %d", ErrUnsupportedCipher, sectorSize)
	}
	if len(src)%sectorSize != 0 || len(dst) < len(src) {
		return fmt.Errorf("%w: buffer of %d bytes for %d-byte sectors", ErrUnsupportedCipher, len(src), sectorSize)
	}
	if sectorSize == SectorSize {
		c.crypt(dst, src, firstIV, enc)
		return nil
	}
	if c.spec.IV == "eboiv" {
		return fmt.Errorf("%w: eboiv with %d-byte sectors", ErrUnsupportedCipher, sectorSize)
	}
	dst = dst[:len(src)]
	if inexactOverlap(dst, src) {
		return fmt.Errorf("%w: overlapping buffers", ErrUnsupportedCipher)
	}
	if c.spec.Cipher == "cipher_null" {
		copy(dst, src)
		return nil
	}
	step := uint64(sectorSize / SectorSize)
	if c.ni != nil {
		c.cryptLargeAESNI(dst, src, sectorSize, firstIV, step, enc)
		return nil
	}
	if c.block == nil {
		return fmt.Errorf("%w: cipher used after Wipe", ErrUnsupportedCipher)
	}
	var iv [16]byte
	for off, s := 0, firstIV; off < len(src); off, s = off+sectorSize, s+step {
		if c.spec.Chain != "ecb" {
			c.genIV(&iv, s)
		}
		c.cryptSector(dst[off:off+sectorSize], src[off:off+sectorSize], &iv, enc)
	}
	return nil
}

// cryptLargeAESNI is CryptLarge with the AES-NI assembly (c.ni set): one XEX run (XTS, LRW,
// ECB) or CBC run per sector of sectorSize bytes.
func (c *Cipher) cryptLargeAESNI(dst, src []byte, sectorSize int, firstIV, step uint64, enc bool) {
	k := c.ni
	var tw [4096]byte
	defer clear(tw[:])
	var iv, t [16]byte
	defer clear(t[:])
	n := sectorSize / 16
	for off, s := 0, firstIV; off < len(src); off, s = off+sectorSize, s+step {
		d, x := &dst[off], &src[off]
		if c.spec.Chain != "ecb" {
			c.ivAESNI(&iv, s)
		}
		switch c.spec.Chain {
		case "cbc":
			if enc {
				aesniCBCEnc(k.rounds, &k.enc[0], d, x, &iv[0], n)
			} else {
				aesniCBCDec(k.rounds, &k.dec[0], d, x, &iv[0], n)
			}
			continue
		case "xts":
			c.niTweak.encryptBlock(&t, &iv)
			xtsTweaksFrom(tw[:sectorSize], &t)
		case "lrw":
			c.lrw.tweaks(tw[:sectorSize], &iv)
		}
		if enc {
			aesniXEXEnc(k.rounds, &k.enc[0], d, x, &tw[0], n)
		} else {
			aesniXEXDec(k.rounds, &k.dec[0], d, x, &tw[0], n)
		}
	}
}
