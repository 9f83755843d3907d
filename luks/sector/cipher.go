package sector

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// Cipher encrypts and decrypts runs of consecutive 512-byte sectors with one cipher
// specification and key. It holds no mutable state after New and is safe for concurrent use.
type Cipher struct {
	spec Spec
	key  []byte

	block cipher.Block // data cipher (K1 for xts; the cipher key for lrw); nil for cipher_null
	tweak cipher.Block // xts: K2
	lrw   *lrwKey      // lrw: tweak multiplication tables
	essiv cipher.Block // essiv: the IV cipher keyed with H(key)
	// AES-NI round keys (nil = portable code): data key, XTS tweak key, ESSIV salt key.
	ni, niTweak, niEssiv *aesSchedule
	vaes                 bool // use the AVX-512 VAES variants for XTS, LRW and ECB
	// Serpent with AVX-512 or AVX2 (nil = portable): the data cipher's and the XTS tweak
	// cipher's subkeys, the same objects as block and tweak, held by concrete type so that
	// calls on them keep their buffers on the stack.
	sp, spTweak *serpentBlock
	tf          *twofishKeys // Twofish with AVX2/AVX-512 (nil = portable)
}

// Implementations, best last, each level adding to the one before; tests run each one
// available. implSIMD is the bitsliced Serpent and the SIMD Twofish (AVX2, AVX-512) with the
// portable AES: a machine, or a VM, may offer AVX2 and hide AES-NI.
const (
	implPortable = iota
	implSIMD
	implAESNI
	implVAES
)

// bestImpl is the fastest implementation this machine supports. The Serpent and Twofish SIMD
// code is used from implSIMD on, whatever the AES level: each checks its own CPU flags.
func bestImpl() int {
	switch {
	case haveVAES:
		return implVAES
	case haveAESNI:
		return implAESNI
	case haveSerpentSIMD || haveTwofishAVX2:
		return implSIMD
	}
	return implPortable
}

// New parses cipherName/cipherMode (LUKS1 header fields) and keys a Cipher. The key is copied.
func New(cipherName, cipherMode string, key []byte) (*Cipher, error) {
	s, err := ParseSpec(cipherName, cipherMode)
	if err != nil {
		return nil, err
	}
	return NewFromSpec(s, key)
}

// NewFromSpec keys a Cipher for an already parsed Spec. The key is copied.
func NewFromSpec(s Spec, key []byte) (*Cipher, error) {
	return newCipher(s, key, bestImpl())
}

// newCipher lets tests choose a slower implementation than the machine's best.
func newCipher(s Spec, key []byte, impl int) (*Cipher, error) {
	// Copying the key (into c.key, into a schedule) moves it through vector registers.
	defer wipeRegisters()
	// Re-validate: s may have been built by hand.
	parsed, err := ParseSpec(s.Cipher, s.Mode())
	if err != nil {
		return nil, err
	}
	s = parsed
	if err := s.CheckKeySize(len(key)); err != nil {
		return nil, err
	}
	c := &Cipher{spec: s, key: append([]byte(nil), key...)}
	// At once, not only on return: the fewer instructions the key spends in a register, the
	// smaller the chance that a signal copies it out.
	wipeRegisters()
	if s.Cipher == "cipher_null" {
		return c, nil
	}
	k := c.key
	// With AES-NI the package's own schedules (wiped by Wipe) are the only ones built: a
	// crypto/aes block made "just in case" would keep a copy of the key schedule — whose
	// first round key is the key itself — where Wipe cannot reach it.
	useAESNI := impl >= implAESNI && s.Cipher == "aes"
	dataKey := k
	switch s.Chain {
	case "xts":
		dataKey = k[:len(k)/2]
		if !useAESNI {
			if c.block, err = newBlock(s.Cipher, k[:len(k)/2]); err != nil {
				return nil, err
			}
			if c.tweak, err = newBlock(s.Cipher, k[len(k)/2:]); err != nil {
				return nil, err
			}
		}
	case "lrw":
		ck := len(k) - lrwTweakKeySize
		dataKey = k[:ck]
		if !useAESNI {
			if c.block, err = newBlock(s.Cipher, k[:ck]); err != nil {
				return nil, err
			}
		}
		c.lrw = newLRWKey(k[ck:])
	default:
		if !useAESNI {
			if c.block, err = newBlock(s.Cipher, k); err != nil {
				return nil, err
			}
		}
	}
	if s.Cipher == "serpent" && impl >= implSIMD && haveSerpentSIMD {
		c.sp = c.block.(*serpentBlock)
		if c.tweak != nil {
			c.spTweak = c.tweak.(*serpentBlock)
		}
	}
	if s.Cipher == "twofish" && impl >= implSIMD && haveTwofishAVX2 && s.Chain != "lrw" {
		// The SIMD code runs on the same schedules as the portable one (twofishKey).
		c.tf = &twofishKeys{data: c.block.(*twofishKey)}
		if c.tweak != nil {
			c.tf.tweak = c.tweak.(*twofishKey)
		}
	}
	if useAESNI {
		c.vaes = impl >= implVAES
		if c.ni, err = newAESSchedule(dataKey); err != nil {
			return nil, err
		}
		if s.Chain == "xts" {
			if c.niTweak, err = newAESSchedule(k[len(k)/2:]); err != nil {
				return nil, err
			}
		}
	}
	if s.Chain != "ecb" && s.IV == "essiv" {
		hi, _ := lookupHash(s.IVOption)
		salt := essivSalt(hi, k)
		if useAESNI {
			c.niEssiv, err = newAESSchedule(salt)
		} else {
			c.essiv, err = newBlock(s.Cipher, salt)
		}
		if err == nil && c.tf != nil {
			c.tf.essiv = c.essiv.(*twofishKey)
		}
		clear(salt)
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// essivSalt returns H(key), the ESSIV cipher's key. The hash leaves copies of the key and
// of the salt behind: in its own partial-block buffer, and on the stack, where Sum copies
// the whole digest state (whose buffer holds a short key) and returns the sum by value.
// The first is overwritten through the hash, the second by burnStack; the stack is grown
// first, while it holds no secret, because growing it copies it and frees the old one
// uncleared.
func essivSalt(hi hashInfo, key []byte) []byte {
	burnStack()
	salt := hashKey(hi, key)
	burnStack()
	return salt
}

//go:noinline
func hashKey(hi hashInfo, key []byte) []byte {
	h := hi.new()
	h.Write(key)
	salt := h.Sum(nil)
	// hash.Hash cannot be wiped: after Reset, BlockSize-1 zero bytes overwrite the key in
	// the digest's buffer, for every hash that buffers a partial block (crypto/* and this
	// package's own).
	h.Reset()
	h.Write(make([]byte, h.BlockSize()-1))
	return salt
}

// burnStackBytes is more than the frames of hashKey and the hash functions below it take.
const burnStackBytes = 8 << 10

// burnStack overwrites the burnStackBytes of stack below its caller's frame: the dead frames
// of the functions the caller has just called.
//
//go:noinline
func burnStack() {
	var b [burnStackBytes]byte
	clearNoinline(b[:])
}

// clearNoinline keeps the compiler from dropping burnStack's array as unused.
//
//go:noinline
func clearNoinline(b []byte) { clear(b) }

// newAESSchedule is expandAESKey for a key whose size is checked here, with newBlock's error
// for a size AES does not have (an ESSIV salt from a 20-byte hash, say).
func newAESSchedule(key []byte) (*aesSchedule, error) {
	switch len(key) {
	case 16, 24, 32:
		return expandAESKey(key), nil
	}
	return nil, fmt.Errorf("%w: aes: %d-byte key: crypto/aes: invalid key size %d", ErrInvalidKeySize, len(key), len(key))
}

// newBlock returns the raw block cipher. All supported ciphers have 16-byte blocks.
func newBlock(name string, key []byte) (cipher.Block, error) {
	var b cipher.Block
	var err error
	switch name {
	case "aes":
		b, err = aes.NewCipher(key)
	case "twofish":
		// The package's own schedule, not x/crypto/twofish's: Wipe can clear its
		// key-dependent tables. Its error already names the cipher and the size.
		tk, err := newTwofishKey(key)
		if err != nil {
			return nil, err
		}
		return tk, nil
	case "serpent":
		b, err = newSerpent(key)
	default:
		return nil, fmt.Errorf("%w: cipher %q", ErrUnsupportedCipher, name)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %d-byte key: %v", ErrInvalidKeySize, name, len(key), err)
	}
	return b, nil
}

// String names the specification only: a Cipher never prints its key. String, GoString and
// Format have value receivers so that a dereferenced Cipher, or one held by value in
// another struct, redacts too.
func (c Cipher) String() string { return "sector.Cipher(" + c.spec.String() + ")" }

// GoString keeps %#v from dumping the key material.
func (c Cipher) GoString() string { return c.String() }

// Format prints String for every verb (%v, %+v, %x, %s, %q...).
func (c Cipher) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// Spec returns the parsed (lower-case) cipher specification.
func (c *Cipher) Spec() Spec { return c.spec }

// Wipe zeroes the copy of the key and every key schedule the Cipher built (best effort: the
// crypto/aes schedules of the portable AES path are not reachable). The Cipher must not be
// used afterwards.
func (c *Cipher) Wipe() {
	clear(c.key)
	if w, ok := c.block.(interface{ wipe() }); ok {
		w.wipe()
	}
	if w, ok := c.tweak.(interface{ wipe() }); ok {
		w.wipe()
	}
	if w, ok := c.essiv.(interface{ wipe() }); ok {
		w.wipe()
	}
	if c.lrw != nil {
		c.lrw.wipe()
	}
	for _, k := range []*aesSchedule{c.ni, c.niTweak, c.niEssiv} {
		if k != nil {
			k.wipe()
		}
	}
	c.block, c.tweak, c.essiv, c.lrw = nil, nil, nil, nil
	c.sp, c.spTweak = nil, nil
	if c.tf != nil {
		c.tf.wipe()
		c.tf = nil
	}
	c.ni, c.niTweak, c.niEssiv = nil, nil, nil
	wipeRegisters()
}

// Encrypt encrypts src into dst; src[i*512:] is sector firstSector+i. len(src) must be a
// multiple of SectorSize and dst at least as long; dst and src may be identical but must not
// otherwise overlap. Violations panic (programmer misuse).
func (c *Cipher) Encrypt(dst, src []byte, firstSector uint64) { c.crypt(dst, src, firstSector, true) }

// Decrypt is the inverse of Encrypt, with the same buffer rules.
func (c *Cipher) Decrypt(dst, src []byte, firstSector uint64) { c.crypt(dst, src, firstSector, false) }

func (c *Cipher) crypt(dst, src []byte, first uint64, enc bool) {
	if len(src)%SectorSize != 0 {
		panic("sector: input not a multiple of the sector size")
	}
	if len(dst) < len(src) {
		panic("sector: output smaller than input")
	}
	dst = dst[:len(src)]
	if inexactOverlap(dst, src) {
		panic("sector: invalid buffer overlap")
	}
	if c.spec.Cipher == "cipher_null" || len(src) == 0 {
		copy(dst, src)
		return
	}
	if c.block == nil && c.ni == nil {
		panic("sector: Cipher used after Wipe")
	}
	if c.ni != nil {
		c.cryptAESNI(dst, src, first, enc)
		return
	}
	if c.sp != nil && (c.spec.Chain == "xts" || c.spec.Chain == "cbc" && !enc) {
		c.cryptSerpent(dst, src, first, enc)
		return
	}
	if c.tf != nil && (c.spec.Chain != "cbc" || !enc) {
		c.cryptTwofish(dst, src, first, enc)
		return
	}
	var iv [16]byte
	for off := 0; off < len(src); off += SectorSize {
		s := first + uint64(off/SectorSize)
		d, x := dst[off:off+SectorSize], src[off:off+SectorSize]
		if c.spec.Chain != "ecb" {
			c.genIV(&iv, s)
		}
		c.cryptSector(d, x, &iv, enc)
	}
}

// cryptSector applies the chain mode to one sector (any multiple of 16 bytes) with IV iv.
func (c *Cipher) cryptSector(d, x []byte, iv *[16]byte, enc bool) {
	if c.sp != nil && len(x) == SectorSize && c.serpentSector(d, x, iv, enc) {
		return
	}
	switch c.spec.Chain {
	case "ecb":
		ecb(c.block, d, x, enc)
	case "cbc":
		cbc(c.block, d, x, iv, enc)
	case "xts":
		xts(c.block, c.tweak, d, x, iv, enc)
	case "lrw":
		lrw(c.block, c.lrw, d, x, iv, enc)
	}
}

// simpleIV fills iv for the generators that need no cipher and reports whether it did.
func simpleIV(iv *[16]byte, name string, s uint64) bool {
	*iv = [16]byte{}
	switch name {
	case "null":
	case "plain":
		binary.LittleEndian.PutUint32(iv[:], uint32(s))
	case "plain64":
		binary.LittleEndian.PutUint64(iv[:], s)
	case "plain64be":
		binary.BigEndian.PutUint64(iv[8:], s)
	case "benbi":
		// Big-endian count of cipher blocks, one-based: 512/16 = 2^5 blocks per sector.
		binary.BigEndian.PutUint64(iv[8:], s<<5+1)
	default:
		return false
	}
	return true
}

// genIV fills iv for sector s as dm-crypt's IV generators do (drivers/md/dm-crypt.c,
// cryptsetup lib/crypto_backend/crypto_storage.c).
func (c *Cipher) genIV(iv *[16]byte, s uint64) {
	if simpleIV(iv, c.spec.IV, s) {
		return
	}
	switch c.spec.IV {
	case "essiv":
		binary.LittleEndian.PutUint64(iv[:], s)
		c.essiv.Encrypt(iv[:], iv[:])
	case "eboiv":
		// dm-crypt encrypts one zero block with the data transform, using the byte offset
		// as IV; for cbc that is E_K(LE64(s*512)).
		var buf [16]byte
		binary.LittleEndian.PutUint64(buf[:], s*SectorSize)
		var zero [16]byte
		c.cryptSector(iv[:], zero[:], &buf, true)
	default:
		panic("sector: unknown IV generator " + c.spec.IV)
	}
}

func ecb(b cipher.Block, d, x []byte, enc bool) {
	for i := 0; i < len(x); i += 16 {
		if enc {
			b.Encrypt(d[i:i+16], x[i:i+16])
		} else {
			b.Decrypt(d[i:i+16], x[i:i+16])
		}
	}
}

// cbc chains one sector. Decryption walks backwards so that d and x may be the same slice
// without keeping a copy of each ciphertext block.
func cbc(b cipher.Block, d, x []byte, iv *[16]byte, enc bool) {
	if enc {
		prev := iv[:]
		for i := 0; i < len(x); i += 16 {
			subtle.XORBytes(d[i:i+16], x[i:i+16], prev)
			b.Encrypt(d[i:i+16], d[i:i+16])
			prev = d[i : i+16]
		}
		return
	}
	var buf [16]byte
	for i := len(x) - 16; i >= 0; i -= 16 {
		b.Decrypt(buf[:], x[i:i+16])
		if i == 0 {
			subtle.XORBytes(d[:16], buf[:], iv[:])
		} else {
			subtle.XORBytes(d[i:i+16], buf[:], x[i-16:i])
		}
	}
}

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
