package sector

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"

	"golang.org/x/crypto/blake2b"
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
	}
	return hashInfo{}, false
}

func hashSize(name string) (int, bool) {
	h, ok := lookupHash(strings.ToLower(name))
	return h.size, ok
}

// NewHash resolves a LUKS/cryptsetup hash name case-insensitively: sha1, sha224, sha256,
// sha384, sha512, ripemd160, whirlpool (= wp512), wp256, wp384, sha3-256, blake2b-512.
// md5 and unknown names wrap ErrUnsupportedHash.
func NewHash(name string) (func() hash.Hash, error) {
	h, ok := lookupHash(strings.ToLower(name))
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedHash, name)
	}
	return h.new, nil
}
