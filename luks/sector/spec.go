package sector

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, matched with errors.Is. Returned errors wrap them with the offending name.
var (
	// ErrUnsupportedCipher: the cipher, chain mode or IV generator is unknown, kernel-only, or
	// the combination is refused by cryptsetup/dm-crypt.
	ErrUnsupportedCipher = errors.New("unsupported cipher specification")
	// ErrUnsupportedHash: a hash name (NewHash, or an ESSIV option) is unknown or refused.
	ErrUnsupportedHash = errors.New("unsupported hash")
	// ErrInvalidKeySize: the key length does not fit the cipher specification.
	ErrInvalidKeySize = errors.New("invalid key size")
)

// SectorSize is the dm-crypt/LUKS1 encryption sector size; IV generators count in these units.
const SectorSize = 512

// maxNameLen mirrors cryptsetup's MAX_CIPHER_LEN (32 with the terminating NUL): sscanf's
// "%31[^-]" and "%31s" silently truncate longer fields, we refuse them instead.
const maxNameLen = 31

// SplitSpec turns a cryptsetup -c cipher specification into the cipher name and cipher mode
// stored in a LUKS1 header, as cryptsetup's crypt_parse_name_and_mode does:
//
//	"aes-xts-plain64" → ("aes", "xts-plain64")
//	"aes"             → ("aes", "cbc-plain")
//	"aes-plain"       → ("aes", "cbc-plain")
//	"null"            → ("cipher_null", "ecb")
//	"aes-ecb"         → ("aes", "ecb")
//
// SplitSpec only splits; whether the result is usable is ParseSpec's business.
func SplitSpec(spec string) (cipherName, cipherMode string, err error) {
	if spec == "" {
		return "", "", fmt.Errorf("%w: empty cipher specification", ErrUnsupportedCipher)
	}
	if strings.ContainsAny(spec, " \t\n\r\v\f\x00") {
		return "", "", fmt.Errorf("%w: %q contains white space or NUL", ErrUnsupportedCipher, spec)
	}
	if spec == "null" || spec == "cipher_null" {
		return "cipher_null", "ecb", nil
	}
	name, mode, hasMode := strings.Cut(spec, "-")
	if name == "" {
		return "", "", fmt.Errorf("%w: %q has no cipher name", ErrUnsupportedCipher, spec)
	}
	if len(name) > maxNameLen {
		return "", "", fmt.Errorf("%w: cipher name in %q longer than %d characters", ErrUnsupportedCipher, spec, maxNameLen)
	}
	if !hasMode || mode == "" {
		return name, "cbc-plain", nil
	}
	if len(mode) > maxNameLen {
		return "", "", fmt.Errorf("%w: cipher mode in %q longer than %d characters", ErrUnsupportedCipher, spec, maxNameLen)
	}
	if mode == "plain" {
		mode = "cbc-plain"
	}
	return name, mode, nil
}

// Spec is a parsed dm-crypt cipher specification: cipher-chain-iv[:ivoption].
// Names are lower case.
type Spec struct {
	Cipher   string // "aes", "twofish", "serpent", "cipher_null"
	Chain    string // "xts", "cbc", "ecb", "lrw"
	IV       string // "", "null", "plain", "plain64", "plain64be", "essiv", "benbi", "eboiv"
	IVOption string // e.g. "sha256" for essiv; kept but ignored for other IV generators (as the kernel does)
}

// blockCiphers lists the supported ciphers with the key lengths (bytes) the kernel accepts.
func validCipherKey(cipherName string, n int) bool {
	switch cipherName {
	case "aes", "twofish":
		return n == 16 || n == 24 || n == 32
	case "serpent":
		// crypto/serpent_generic.c: SERPENT_MIN_KEY_SIZE 0, SERPENT_MAX_KEY_SIZE 32; a
		// zero-length key is not a key we accept.
		return n >= 1 && n <= 32
	case "cipher_null":
		return true
	}
	return false
}

func knownCipher(name string) bool {
	switch name {
	case "aes", "twofish", "serpent", "cipher_null":
		return true
	}
	return false
}

// ParseSpec validates a LUKS1 header's cipher name and mode (dm-crypt's
// cipher-chainmode-ivmode[:ivopts] grammar) and refuses what cryptsetup and dm-crypt refuse or
// what only the kernel implements. Errors wrap ErrUnsupportedCipher or ErrUnsupportedHash.
func ParseSpec(cipherName, cipherMode string) (Spec, error) {
	full := cipherName + "-" + cipherMode
	bad := func(format string, a ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("%w: %q: %s", ErrUnsupportedCipher, full, fmt.Sprintf(format, a...))
	}
	name := strings.ToLower(cipherName)
	if name == "" {
		return bad("empty cipher name")
	}
	if strings.HasPrefix(name, "capi:") {
		return bad("kernel crypto API (capi:) specifications are not supported")
	}
	if strings.Contains(name, ":") {
		return bad("multi-key (cipher:keycount) specifications are kernel-only (loop-AES)")
	}
	if name == "null" {
		name = "cipher_null"
	}
	if !knownCipher(name) {
		return bad("unknown cipher %q (supported: aes, twofish, serpent, cipher_null)", cipherName)
	}
	mode := strings.ToLower(cipherMode)
	chain, ivFull, hasIV := strings.Cut(mode, "-")
	ivName, ivOpt, _ := strings.Cut(ivFull, ":")
	s := Spec{Cipher: name, Chain: chain, IV: ivName, IVOption: ivOpt}
	if hasIV && ivName == "" {
		return bad("empty IV generator")
	}
	switch chain {
	case "ecb":
		// dm-crypt warns "Selected cipher does not support IVs" and ignores any IV mode
		// for ECB; cryptsetup's repair/reader path does the same. Keep it for String().
		return s, nil
	case "cbc", "xts", "lrw":
	case "":
		return bad("empty chain mode")
	default:
		return bad("unknown chain mode %q (supported: xts, cbc, ecb, lrw)", chain)
	}
	if name == "cipher_null" {
		return bad("cipher_null works only in ecb mode")
	}
	if !hasIV {
		return bad("IV mechanism required for %s mode", chain)
	}
	switch ivName {
	case "null", "plain", "plain64", "plain64be", "benbi", "eboiv":
		// Options after ':' are ignored by dm-crypt for these generators
		// (seen in the wild: "xts-plain64:sha256").
		return s, nil
	case "essiv":
		if ivOpt == "" {
			return bad("essiv needs a hash (essiv:HASH)")
		}
		size, ok := hashSize(ivOpt)
		if !ok {
			return Spec{}, fmt.Errorf("%w: %q: essiv hash %q: %w", ErrUnsupportedCipher, full, ivOpt, ErrUnsupportedHash)
		}
		if !validCipherKey(name, size) {
			return bad("essiv:%s gives a %d-byte salt, not a valid %s key size", ivOpt, size, name)
		}
		return s, nil
	case "lmk", "tcw", "random", "elephant":
		return bad("IV generator %q is implemented only by the Linux kernel", ivName)
	}
	return bad("unknown IV generator %q", ivName)
}

// String returns the kernel/cryptsetup spelling, e.g. "aes-xts-plain64" or "aes-cbc-essiv:sha256".
func (s Spec) String() string {
	if m := s.Mode(); m != "" {
		return s.Cipher + "-" + m
	}
	return s.Cipher
}

// Mode returns the LUKS1 header cipher mode field, e.g. "xts-plain64".
func (s Spec) Mode() string {
	m := s.Chain
	if s.IV != "" {
		m += "-" + s.IV
	}
	if s.IVOption != "" {
		m += ":" + s.IVOption
	}
	return m
}

// CheckKeySize reports whether a key of keyBytes bytes fits s: xts takes two cipher keys
// (K1‖K2), lrw a cipher key followed by a 16-byte tweak key. Errors wrap ErrInvalidKeySize.
func (s Spec) CheckKeySize(keyBytes int) error {
	if s.Cipher == "cipher_null" {
		if keyBytes < 0 {
			return fmt.Errorf("%w: %d bytes for %s", ErrInvalidKeySize, keyBytes, s)
		}
		return nil
	}
	ok := false
	switch s.Chain {
	case "xts":
		ok = keyBytes%2 == 0 && validCipherKey(s.Cipher, keyBytes/2)
	case "lrw":
		ok = validCipherKey(s.Cipher, keyBytes-lrwTweakKeySize)
	default:
		ok = validCipherKey(s.Cipher, keyBytes)
	}
	if !ok {
		return fmt.Errorf("%w: %d bits for %s", ErrInvalidKeySize, keyBytes*8, s)
	}
	return nil
}
