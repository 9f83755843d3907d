package sector

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
)

// xts implements IEEE 1619 XTS with a caller-supplied 16-byte tweak input iv (dm-crypt feeds
// the IV generator's output, so xts-essiv and xts-benbi work). No ciphertext stealing:
// sectors are whole blocks.
func xts(k1, k2 cipher.Block, d, x []byte, iv *[16]byte, enc bool) {
	var t, buf [16]byte
	k2.Encrypt(t[:], iv[:])
	for i := 0; i < len(x); i += 16 {
		subtle.XORBytes(buf[:], x[i:i+16], t[:])
		if enc {
			k1.Encrypt(buf[:], buf[:])
		} else {
			k1.Decrypt(buf[:], buf[:])
		}
		subtle.XORBytes(d[i:i+16], buf[:], t[:])
		mulAlpha(&t)
	}
}

// mulAlpha multiplies the tweak by x in GF(2^128) with XTS's little-endian convention
// (polynomial x^128 + x^7 + x^2 + x + 1).
func mulAlpha(t *[16]byte) {
	lo := binary.LittleEndian.Uint64(t[:8])
	hi := binary.LittleEndian.Uint64(t[8:])
	carry := hi >> 63
	hi = hi<<1 | lo>>63
	lo = lo<<1 ^ (0x87 & -carry)
	binary.LittleEndian.PutUint64(t[:8], lo)
	binary.LittleEndian.PutUint64(t[8:], hi)
}

// xtsTweaksFrom writes the tweaks T·α^j of one run of blocks into tw, given T = E_K2(iv).
func xtsTweaksFrom(tw []byte, t *[16]byte) {
	lo := binary.LittleEndian.Uint64(t[:8])
	hi := binary.LittleEndian.Uint64(t[8:])
	clear(t[:])
	for j := 0; j < len(tw); j += 16 {
		binary.LittleEndian.PutUint64(tw[j:j+8], lo)
		binary.LittleEndian.PutUint64(tw[j+8:j+16], hi)
		carry := hi >> 63
		hi = hi<<1 | lo>>63
		lo = lo<<1 ^ (0x87 & -carry)
	}
}
