package luks

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/cloudluks/cloudluks/luks/sector"
)

// Plain dm-crypt has no header: the cipher, key size, offsets and the way a passphrase turns
// into the key are parameters the user must repeat at every open. These are cryptsetup
// 2.6.1's defaults for `open --type plain` (2.7 changed them to aes-xts-plain64 / sha256, so
// anything this project writes down names every parameter explicitly).
const (
	PlainDefaultCipher  = "aes-cbc-essiv:sha256"
	PlainDefaultHash    = "ripemd160"
	PlainDefaultKeySize = 32 // bytes (256 bits)

	// PlainMaxKeySize is cryptsetup's limit for a plain volume key ("Invalid key size.").
	PlainMaxKeySize = 1024
	// plainMaxHashName is PLAIN_HASH_LEN_MAX in lib/crypt_plain.c.
	plainMaxHashName = 256
)

// ErrShortPlainPassphrase: with a "plain:N" hash the passphrase must have at least N bytes
// (cryptsetup: "Too short plain passphrase.", reported as a key processing error).
var ErrShortPlainPassphrase = errors.New("too short plain passphrase")

// PlainParams are the parameters of a plain dm-crypt volume (cryptsetup open --type plain).
// The zero value means cryptsetup 2.6.1's defaults; WithDefaults fills them in.
type PlainParams struct {
	// Cipher is the dm-crypt cipher specification (--cipher); "" = PlainDefaultCipher.
	Cipher string
	// KeySize is the volume key size in bytes (--key-size/8); 0 = PlainDefaultKeySize.
	KeySize int
	// Hash turns a passphrase into the key (--hash); "" = PlainDefaultHash. See PlainKey.
	// A key file is never hashed (cryptsetup's rule), so Hash does not apply to raw keys.
	Hash string
	// Offset is where the encrypted data starts on the device, in 512-byte sectors (--offset).
	Offset uint64
	// Skip is added to the sector number for the IV, in 512-byte sectors (--skip).
	Skip uint64
	// Size is the mapping size in 512-byte sectors (--size); 0 = the rest of the device.
	Size uint64
	// SectorSize is the encryption sector size in bytes (--sector-size); 0 = 512.
	SectorSize uint32
	// IVLargeSectors counts IV sectors in SectorSize units instead of 512-byte units
	// (--iv-large-sectors; meaningful only with SectorSize > 512).
	IVLargeSectors bool
}

// WithDefaults returns p with the empty Cipher, Hash, KeySize and SectorSize set to
// cryptsetup 2.6.1's defaults.
func (p PlainParams) WithDefaults() PlainParams {
	if p.Cipher == "" {
		p.Cipher = PlainDefaultCipher
	}
	if p.Hash == "" {
		p.Hash = PlainDefaultHash
	}
	if p.KeySize == 0 {
		p.KeySize = PlainDefaultKeySize
	}
	if p.SectorSize == 0 {
		p.SectorSize = SectorSize
	}
	return p
}

// Spec checks the cipher, key size and sector size of p (after WithDefaults) the way
// cryptsetup's crypt_format for plain does, and returns the parsed cipher. Errors wrap
// ErrUnsupportedCipher, ErrInvalidKeySize or ErrInvalidParameter.
func (p PlainParams) Spec() (sector.Spec, error) {
	p = p.WithDefaults()
	name, mode, err := sector.SplitSpec(p.Cipher)
	if err != nil {
		return sector.Spec{}, err
	}
	spec, err := sector.ParseSpec(name, mode)
	if err != nil {
		return sector.Spec{}, err
	}
	if p.KeySize < 0 || p.KeySize > PlainMaxKeySize {
		return sector.Spec{}, fmt.Errorf("%w: key size %d bytes (at most %d)", ErrInvalidParameter, p.KeySize, PlainMaxKeySize)
	}
	if err := spec.CheckKeySize(p.KeySize); err != nil {
		return sector.Spec{}, err
	}
	if s := p.SectorSize; s < SectorSize || s > 4096 || s&(s-1) != 0 {
		return sector.Spec{}, fmt.Errorf("%w: unsupported encryption sector size %d", ErrInvalidParameter, s)
	}
	if unit := uint64(p.SectorSize / SectorSize); unit > 1 && (p.Size%unit != 0 || p.Skip%unit != 0) {
		return sector.Spec{}, fmt.Errorf("%w: size and skip must be multiples of the %d-byte sector size", ErrInvalidParameter, p.SectorSize)
	}
	if len(p.Hash) >= plainMaxHashName {
		return sector.Spec{}, fmt.Errorf("%w: hash name of %d bytes", ErrInvalidParameter, len(p.Hash))
	}
	return spec, nil
}

// PlainKey derives a plain dm-crypt volume key of keySize bytes from passphrase as
// `cryptsetup open --type plain --hash HASH` 2.6.1 does (lib/crypt_plain.c, and
// action_open_plain in src/cryptsetup.c, which turns "plain" into "no hash"):
//
//   - "plain": the passphrase itself, cut to keySize bytes or padded with zero bytes.
//   - "NAME" (ripemd160, sha256, sha512…): the digest of the passphrase; when keySize is
//     longer than the digest, the digest of "A" + passphrase follows, then of "AA" +
//     passphrase, and so on (hashalot's scheme), each cut to what is still missing.
//   - "NAME:N" (N ≤ keySize): only the first N bytes are derived that way and the rest of
//     the key is zero; "plain:N" copies N bytes and refuses a shorter passphrase
//     (ErrShortPlainPassphrase).
//
// An unknown hash wraps ErrUnsupportedHash ("Hash algorithm %s not supported."), a
// malformed or too long N ErrInvalidParameter. The caller owns passphrase; the key is
// returned in a VolumeKey (Wipe it).
func PlainKey(hash string, passphrase []byte, keySize int) (*VolumeKey, error) {
	if keySize <= 0 || keySize > PlainMaxKeySize {
		return nil, fmt.Errorf("%w: key size %d bytes", ErrInvalidParameter, keySize)
	}
	if hash == "" || len(hash) >= plainMaxHashName {
		return nil, fmt.Errorf("%w: hash %q", ErrInvalidParameter, hash)
	}
	key := make([]byte, keySize)
	if hash == "plain" {
		copy(key, passphrase)
		return &VolumeKey{b: key}, nil
	}
	name, lenSpec, hasLen := strings.Cut(hash, ":")
	n := keySize
	if hasLen {
		v, ok := scanSize(lenSpec)
		if !ok {
			return nil, fmt.Errorf("%w: hash length in %q is not a number", ErrInvalidParameter, hash)
		}
		if v > uint64(keySize) {
			return nil, fmt.Errorf("%w: hash length %d is longer than the %d-byte key", ErrInvalidParameter, v, keySize)
		}
		n = int(v)
	}
	if name == "plain" {
		if len(passphrase) < n {
			return nil, fmt.Errorf("%w: %w (%d bytes, need %d)", ErrInvalidParameter, ErrShortPlainPassphrase, len(passphrase), n)
		}
		copy(key, passphrase[:n])
		return &VolumeKey{b: key}, nil
	}
	newHash, err := sector.NewHash(name)
	if err != nil {
		return nil, fmt.Errorf("hash algorithm %s not supported: %w", name, err)
	}
	h := newHash()
	var sum []byte
	for round, done := 0, 0; done < n; round++ {
		h.Reset()
		for range round {
			h.Write([]byte{'A'})
		}
		h.Write(passphrase)
		sum = h.Sum(sum[:0])
		done += copy(key[done:n], sum)
	}
	clear(sum)
	// The digest keeps the passphrase's last partial block in its buffer (found there by
	// TestNoSecretLeftInMemoryEveryPath); a hash.Hash cannot be wiped, but after Reset
	// BlockSize-1 zero bytes overwrite that buffer.
	h.Reset()
	h.Write(make([]byte, h.BlockSize()-1))
	return &VolumeKey{b: key}, nil
}

// scanSize reads a number the way sscanf("%zd") does: optional leading white space and
// sign, then decimal digits; anything after them is ignored. A negative value, which C
// stores into a size_t as a huge one, is reported as too large by the caller's comparison,
// so it is refused here as not fitting.
func scanSize(s string) (uint64, bool) {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var v uint64
	digits := 0
	for ; digits < len(s) && s[digits] >= '0' && s[digits] <= '9'; digits++ {
		if v > (1<<63)/10 {
			return ^uint64(0), true // overflow: larger than any key
		}
		v = v*10 + uint64(s[digits]-'0')
	}
	if digits == 0 {
		return 0, false
	}
	if neg && v != 0 {
		return ^uint64(0), true
	}
	return v, true
}

// NewPlainVolume opens data as a plain dm-crypt volume in user space: the same bytes a
// mapping with the same parameters shows (byte 0 is device sector p.Offset, encrypted as IV
// sector p.Skip). key is the volume key of p.KeySize bytes, from PlainKey or a key file
// read raw; the Volume keeps its own copy (Close wipes it). Without p.Size the volume runs
// to the end of data, whose size must then be knowable. Encryption sectors larger than 512
// bytes are not supported here (ErrInvalidParameter).
func NewPlainVolume(data ReadWriterAt, p PlainParams, key *VolumeKey) (*Volume, error) {
	p = p.WithDefaults()
	spec, err := p.Spec()
	if err != nil {
		return nil, err
	}
	if p.SectorSize != SectorSize {
		return nil, fmt.Errorf("%w: userspace plain volumes use 512-byte sectors, not %d", ErrInvalidParameter, p.SectorSize)
	}
	if key == nil {
		return nil, fmt.Errorf("%w: no key", ErrInvalidParameter)
	}
	if key.Len() != p.KeySize {
		return nil, fmt.Errorf("%w: key of %d bytes, key size is %d", ErrInvalidParameter, key.Len(), p.KeySize)
	}
	if p.Offset > math.MaxInt64/SectorSize || p.Size > math.MaxInt64/SectorSize {
		return nil, fmt.Errorf("%w: offset or size out of range", ErrInvalidParameter)
	}
	off := int64(p.Offset) * SectorSize
	size := int64(p.Size) * SectorSize
	if devSize, known := deviceSize(data); known {
		if off >= devSize {
			return nil, fmt.Errorf("%w: requested offset is beyond the device's %d bytes", ErrDeviceTooSmall, devSize)
		}
		if size == 0 {
			size = (devSize - off) / SectorSize * SectorSize
		} else if devSize-off < size {
			return nil, fmt.Errorf("%w: %d bytes requested from offset %d, device has %d", ErrDeviceTooSmall, size, off, devSize)
		}
	} else if size == 0 {
		return nil, fmt.Errorf("%w: cannot determine the size of the data device", ErrInvalidParameter)
	}
	c, err := sector.NewFromSpec(spec, key.b)
	if err != nil {
		return nil, err
	}
	return &Volume{data: data, c: c, off: off, size: size, ss: SectorSize, tweak: p.Skip}, nil
}
