package sector

import "fmt"

// CryptLarge encrypts (enc) or decrypts src into dst in sectors of sectorSize bytes (512 …
// 4096, a power of two: LUKS2's sector_size) the way dm-crypt does without
// iv_large_sectors: each sector is one unit of the chain mode (one XTS or CBC run over all
// its bytes) with one IV, and the IV counts 512-byte sectors, so sector k of the run uses IV
// sector firstIV + k·sectorSize/512. src must be a whole number of sectors; dst as for
// Encrypt. The 512-byte case is Encrypt/Decrypt itself.
//
// The AES-NI paths are tuned for 512-byte units; large sectors take the portable code of
// the chain modes, which handles any multiple of the block size.
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
	if c.block == nil {
		return fmt.Errorf("%w: cipher used after Wipe", ErrUnsupportedCipher)
	}
	step := uint64(sectorSize / SectorSize)
	var iv [16]byte
	for off, s := 0, firstIV; off < len(src); off, s = off+sectorSize, s+step {
		if c.spec.Chain != "ecb" {
			c.genIV(&iv, s)
		}
		c.cryptSector(dst[off:off+sectorSize], src[off:off+sectorSize], &iv, enc)
	}
	return nil
}
