package sector

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/blake2s"
	//lint:ignore SA1019 cryptsetup (OpenSSL legacy provider) accepts md4 in LUKS2 headers; reading them needs it
	"golang.org/x/crypto/md4"
)

type hashInfo struct {
	size int
	new  func() hash.Hash
}

func newBlake2b512() hash.Hash {
	h, err := blake2b.New512(nil)
	if err != nil {
		panic(err) // unreachable: nil key is always valid
	}
	return h
}

func newSHA3_256() hash.Hash { return sha3.New256() }

// lookupHash resolves a lower-case hash name.
func lookupHash(name string) (hashInfo, bool) {
	switch name {
	case "sha1":
		return hashInfo{sha1.Size, sha1.New}, true
	case "sha224":
		return hashInfo{sha256.Size224, sha256.New224}, true
	case "sha256":
		return hashInfo{sha256.Size, sha256.New}, true
	case "sha384":
		return hashInfo{sha512.Size384, sha512.New384}, true
	case "sha512":
		return hashInfo{sha512.Size, sha512.New}, true
	case "ripemd160":
		return hashInfo{rmdSize, newRIPEMD160}, true
	case "whirlpool", "wp512":
		return hashInfo{64, newWhirlpool}, true
	case "wp384":
		return hashInfo{48, newWP384}, true
	case "wp256":
		return hashInfo{32, newWP256}, true
	case "sha3-256":
		return hashInfo{32, newSHA3_256}, true
	case "blake2b-512":
		return hashInfo{blake2b.Size, newBlake2b512}, true
	case "sm3":
		return hashInfo{sm3Size, newSM3}, true
	}
	return hashInfo{}, false
}

func hashSize(name string) (int, bool) {
	h, ok := lookupHash(strings.ToLower(name))
	return h.size, ok
}

// NewHash resolves a LUKS/cryptsetup hash name case-insensitively: sha1, sha224, sha256,
// sha384, sha512, ripemd160, whirlpool (= wp512), wp256, wp384, sha3-256, blake2b-512, sm3.
// md5 and unknown names wrap ErrUnsupportedHash.
func NewHash(name string) (func() hash.Hash, error) {
	h, ok := lookupHash(strings.ToLower(name))
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedHash, name)
	}
	return h.new, nil
}

// luks2Hashes is what cryptsetup 2.6 finds through OpenSSL 3's EVP_MD_fetch with the default
// and legacy providers loaded (Debian's build): OpenSSL's names and aliases, matched without
// regard to case, plus cryptsetup's own blake2b-512/blake2s-256 spellings. Extendable-output
// digests (SHAKE), KECCAK-KMAC and NULL are left out: LUKS2 cannot use them as plain digests.
var luks2Hashes = func() map[string]hashInfo {
	m := map[string]hashInfo{}
	add := func(h hashInfo, names ...string) {
		for _, n := range names {
			m[strings.ToLower(n)] = h
		}
	}
	add(hashInfo{md5.Size, md5.New}, "MD5", "SSL3-MD5", "1.2.840.113549.2.5")
	add(hashInfo{md4.Size, md4.New}, "MD4", "1.2.840.113549.2.4")
	add(hashInfo{md5.Size + sha1.Size, newMD5SHA1}, "MD5-SHA1")
	add(hashInfo{sha1.Size, sha1.New}, "SHA1", "SHA-1", "SSL3-SHA1", "1.3.14.3.2.26")
	add(hashInfo{sha256.Size224, sha256.New224}, "SHA224", "SHA-224", "SHA2-224", "2.16.840.1.101.3.4.2.4")
	add(hashInfo{sha256.Size, sha256.New}, "SHA256", "SHA-256", "SHA2-256", "2.16.840.1.101.3.4.2.1")
	add(hashInfo{sha512.Size384, sha512.New384}, "SHA384", "SHA-384", "SHA2-384", "2.16.840.1.101.3.4.2.2")
	add(hashInfo{sha512.Size, sha512.New}, "SHA512", "SHA-512", "SHA2-512", "2.16.840.1.101.3.4.2.3")
	add(hashInfo{sha512.Size224, sha512.New512_224}, "SHA512-224", "SHA-512/224", "SHA2-512/224", "2.16.840.1.101.3.4.2.5")
	add(hashInfo{sha512.Size256, sha512.New512_256}, "SHA512-256", "SHA-512/256", "SHA2-512/256", "2.16.840.1.101.3.4.2.6")
	add(hashInfo{28, func() hash.Hash { return sha3.New224() }}, "SHA3-224", "2.16.840.1.101.3.4.2.7")
	add(hashInfo{32, newSHA3_256}, "SHA3-256", "2.16.840.1.101.3.4.2.8")
	add(hashInfo{48, func() hash.Hash { return sha3.New384() }}, "SHA3-384", "2.16.840.1.101.3.4.2.9")
	add(hashInfo{64, func() hash.Hash { return sha3.New512() }}, "SHA3-512", "2.16.840.1.101.3.4.2.10")
	add(hashInfo{blake2b.Size, newBlake2b512}, "BLAKE2B-512", "BLAKE2b512", "1.3.6.1.4.1.1722.12.2.1.16")
	add(hashInfo{blake2s.Size, newBlake2s256}, "BLAKE2S-256", "BLAKE2s256", "1.3.6.1.4.1.1722.12.2.2.8")
	add(hashInfo{rmdSize, newRIPEMD160}, "RIPEMD160", "RIPEMD-160", "RIPEMD", "RMD160", "1.3.36.3.2.1")
	add(hashInfo{64, newWhirlpool}, "whirlpool", "1.0.10118.3.0.55")
	add(hashInfo{sm3Size, newSM3}, "SM3", "1.2.156.10197.1.401")
	return m
}()

func newBlake2s256() hash.Hash {
	h, err := blake2s.New256(nil)
	if err != nil {
		panic(err) // unreachable: nil key is always valid
	}
	return h
}

// md5sha1 is OpenSSL's MD5-SHA1: both digests of the same input, concatenated.
type md5sha1 struct{ m, s hash.Hash }

func newMD5SHA1() hash.Hash { return &md5sha1{md5.New(), sha1.New()} }

func (h *md5sha1) Write(p []byte) (int, error) { h.m.Write(p); return h.s.Write(p) }
func (h *md5sha1) Sum(b []byte) []byte         { return h.s.Sum(h.m.Sum(b)) }
func (h *md5sha1) Reset()                      { h.m.Reset(); h.s.Reset() }
func (h *md5sha1) Size() int                   { return md5.Size + sha1.Size }
func (h *md5sha1) BlockSize() int              { return 64 }

// NewHashLUKS2 resolves a hash name of a LUKS2 header (binary-header checksum, digest, AF
// and PBKDF2 hashes) the way cryptsetup 2.6 with OpenSSL 3 does: OpenSSL's digest names and
// aliases in any case (sha3-512, SHA2-512/256, blake2b512, ripemd-160, md5, whirlpool, ...)
// and cryptsetup's blake2b-512 and blake2s-256. Kernel-style names OpenSSL does not know
// (wp256, wp384, wp512) are refused, as cryptsetup refuses them in LUKS2. sm3 (GB/T
// 32905-2016) is implemented here, as OpenSSL's default provider has it.
func NewHashLUKS2(name string) (func() hash.Hash, error) {
	n := strings.ToLower(name)
	if h, ok := luks2Hashes[n]; ok {
		return h.new, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedHash, name)
}
