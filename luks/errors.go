package luks

import (
	"errors"

	"github.com/cloudluks/cloudluks/luks/sector"
)

// Sentinel errors. Every error returned by this package wraps at most a few of these and
// names the object involved ("keyslot 3: ..."); match them with errors.Is.
var (
	// ErrNotLUKS: no LUKS magic, or the device is too short or unreadable as a header.
	ErrNotLUKS = errors.New("not a valid LUKS device")
	// ErrUnsupportedVersion: the magic matches but the version is not 1 (LUKS2 shares the magic).
	ErrUnsupportedVersion = errors.New("unsupported LUKS version")
	// ErrCorruptHeader: header fields that cryptsetup would also refuse (key size 0, MK
	// iterations 0, a payload offset inside the key material, ...).
	ErrCorruptHeader = errors.New("corrupt LUKS header")
	// ErrCorruptKeyslot: cryptsetup's "LUKS keyslot %u is invalid." and key-material problems.
	ErrCorruptKeyslot = errors.New("LUKS keyslot is invalid")
	// ErrUnsupportedCipher is the sector package's sentinel: cipher name/mode unknown here.
	ErrUnsupportedCipher = sector.ErrUnsupportedCipher
	// ErrUnsupportedHash is the sector package's sentinel: the hash spec is unknown here
	// or its digest is shorter than 20 bytes (md5).
	ErrUnsupportedHash = sector.ErrUnsupportedHash
	// ErrWrongPassphrase carries cryptsetup's wording.
	//lint:ignore ST1005 cryptsetup's exact message, which users and scripts match
	ErrWrongPassphrase = errors.New("No key available with this passphrase.")
	// ErrNoFreeKeyslot: all eight key slots are in use.
	ErrNoFreeKeyslot = errors.New("all key slots full")
	// ErrKeyslotInactive: the requested slot is not enabled, or no slot is.
	ErrKeyslotInactive = errors.New("keyslot is not active")
	// ErrLastKeyslot: removing this slot would leave the volume without any passphrase.
	ErrLastKeyslot = errors.New("refusing to remove the last active keyslot")
	// ErrDeviceTooSmall: the header device is shorter than the key material the header declares.
	ErrDeviceTooSmall = errors.New("device is too small")
	// ErrWorkLimit: the PBKDF2 work a header asks for (iterations times output blocks)
	// exceeds the caller's work limit (UnlockOptions.MaxIterations).
	ErrWorkLimit = errors.New("PBKDF2 work exceeds the work limit")
	// ErrOutOfMemory: an argon2 keyslot needs more memory than the process can get
	// (MemAvailable, RLIMIT_AS, cgroup memory.max); cryptsetup's "Not enough available
	// memory to open a keyslot." (exit code 3). Checked before deriving: a failed Go
	// allocation would end the process instead of returning.
	//lint:ignore ST1005 cryptsetup's exact message
	ErrOutOfMemory = errors.New("Not enough available memory to open a keyslot.")
	// ErrUnsupportedKDF: KDF parameters valid for cryptsetup that this package cannot
	// compute: argon2 parallelism above 255 (golang.org/x/crypto/argon2 takes a uint8;
	// cryptsetup never writes more than 4 lanes, but accepts up to 2^24-1).
	ErrUnsupportedKDF = errors.New("unsupported key derivation parameters")
	// ErrInvalidParameter: a caller-supplied option is out of range.
	ErrInvalidParameter = errors.New("invalid parameter")
)

// More sentinels beyond the shared contract.
var (
	// ErrInvalidKeySize is the sector package's sentinel: the key size does not suit the cipher.
	ErrInvalidKeySize = sector.ErrInvalidKeySize
	// ErrVolumeKeyMismatch: a volume key given by the caller does not match the header's MK digest
	// (cryptsetup: "Volume key does not match the volume.").
	ErrVolumeKeyMismatch = errors.New("volume key does not match the volume")
	// ErrClosed: the Volume was closed.
	ErrClosed = errors.New("luks: volume closed")

	// Key-file reads (ReadKey, ReadKeyFile) that cryptsetup words differently; each also
	// wraps ErrInvalidParameter.

	// ErrKeyFileOffset: --keyfile-offset lies beyond the end of the key file or pipe.
	ErrKeyFileOffset = errors.New("cannot seek to requested keyfile offset")
	// ErrKeyFileTooLarge: a key file read without a size holds more than MaxKeyFileSize.
	ErrKeyFileTooLarge = errors.New("maximum keyfile size exceeded")
	// ErrKeyFileShort: the source ended before the requested --keyfile-size bytes.
	ErrKeyFileShort = errors.New("cannot read requested amount of data")
	// ErrNothingToRead: a stream (stdin, a device) gave no key bytes at all.
	ErrNothingToRead = errors.New("nothing to read on input")
)
