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
