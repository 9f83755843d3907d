// Package luks implements LUKS1, the Linux Unified Key Setup on-disk format version 1
// (LUKS On-Disk Format Specification 1.2.3, docs/on-disk-format.pdf in the cryptsetup
// repository), so that images it writes and images cryptsetup 2.6 writes are
// interchangeable byte for byte where the format leaves no freedom. It needs no cgo, no
// cryptsetup binary, no root and no device-mapper; the sector ciphers live in luks/sector.
//
// LUKS2 (docs/on-disk-format-luks2.pdf, cryptsetup lib/luks2 at v2.6.1) is read beside it;
// see the LUKS2 section below.
//
// # Format
//
// Format writes a new header and one key slot to a header device (an image file, a block
// device, or a detached header file):
//
//	h, vk, err := luks.Format(ctx, f, passphrase, luks.FormatOptions{
//		Cipher: "aes-xts-plain64", KeySize: 512, Hash: "sha256",
//	})
//
// The zero FormatOptions reproduce `cryptsetup luksFormat --type luks1` 2.6: aes-xts-plain64
// with a 512-bit key, sha256, 2 s PBKDF2 calibration, slot 0, payload aligned to 1 MiB.
// Key-material offsets and the payload offset follow cryptsetup's layout exactly (slot 0 at
// sector 8, slots 4 KiB-aligned, payload rounded up to AlignPayload sectors); Detached
// puts the payload at AlignPayload itself (0 allowed). PBKDF2 iterations are calibrated as
// cryptsetup 2.x does: the slot gets the count for IterTime (at least 1000), the MK digest
// the count for 125 ms (at least 1000); ForceIterations N gives the slot exactly N (N ≥ 1000)
// and the MK digest 1000. Writes follow cryptsetup's order: zero the header area, fill every
// slot's key-material area with random bytes, write the header, then the slot's key
// material, then the header enabling it. Every parameter is checked and every key
// computed before the first write, so a refused Format leaves the device untouched.
//
// # Unlock
//
// Unlock tries a passphrase on one slot or on every enabled slot in order and returns the
// header, the volume key and the slot, in Format's order:
//
//	h, vk, slot, err := luks.Unlock(ctx, f, passphrase, luks.UnlockOptions{})
//	defer vk.Wipe()
//
// Slot selection: the Keyslot fields of UnlockOptions, AddKeyOptions and FormatOptions are
// *int, and nil is cryptsetup's default without -S: Unlock tries every enabled slot, AddKey
// takes the lowest free slot, ChangeKey tries every slot for the old passphrase and writes
// the new one to the first free slot before destroying the old (crash-safe), and Format
// uses slot 0. Slot(n) is cryptsetup's -S n: that slot only (ChangeKey then rewrites it in
// place). So the zero value of every options struct does the safe, usual thing.
//
// ReadKeyFile and ReadKey read key files with cryptsetup's --keyfile-offset and
// --keyfile-size rules (a whole key file is the passphrase, newlines included, up to
// 8192 KiB). The MK digest is compared in constant time. Headers with cipher_null open
// only with an empty passphrase, as in cryptsetup, so a header swapped to cipher_null
// cannot be opened by whatever the user types.
//
// # Key slots
//
// AddKey and AddKeyByVolumeKey fill the lowest free slot (or a given one); RemoveKey destroys
// the slot a passphrase opens and refuses the last enabled slot unless forced; ChangeKey
// writes the new passphrase to the first free slot before destroying the old one (the slot
// number changes, as in cryptsetup LUKS1), falling back to an in-place rewrite when no slot
// is free or a slot is named; KillSlot destroys a slot without a passphrase. A destroyed
// slot's key material is overwritten with cryptsetup's pattern set (random, 27 Gutmann
// patterns, random, 0xFF, random) before the header disables it; nothing outside the slot's
// own area is touched, so data in the gap before the payload (LUKSMeta) survives.
//
// # Dump
//
// Header.Dump and DumpVolumeKey print exactly what `cryptsetup luksDump` and
// `cryptsetup luksDump --dump-volume-key` 2.6 print, including the irregular label widths
// and trailing spaces. Headers naming a cipher this package cannot run still load and dump,
// as with cryptsetup; only unlocking them fails (ErrUnsupportedCipher).
//
// # Backup
//
// BackupHeader writes cryptsetup's luksHeaderBackup file (header and all key material,
// rounded up to 4 KiB, created exclusively with mode 0400); the files are byte-identical to
// cryptsetup's. RestoreHeader writes one back and refuses a backup whose payload offset or
// key size differ from a header already on the device. SetUUID and IsLUKS complete the set.
//
// # Userspace volume
//
// NewVolume presents the decrypted payload as an io.ReaderAt and io.WriterAt, for every
// cipher spec luks/sector supports, so images can be read and written without root or
// device-mapper. Unaligned access is handled by read-modify-write of the partial sectors;
// reads past the end return io.EOF like os.File; the payload never grows.
//
// # Errors
//
// Errors wrap a few sentinels (ErrNotLUKS, ErrUnsupportedVersion, ErrCorruptHeader,
// ErrCorruptKeyslot, ErrUnsupportedCipher, ErrUnsupportedHash, ErrWrongPassphrase,
// ErrNoFreeKeyslot, ErrKeyslotInactive, ErrLastKeyslot, ErrDeviceTooSmall, ErrWorkLimit,
// ErrInvalidParameter, ...) for errors.Is, and name the object involved ("keyslot 3: LUKS
// keyslot is invalid: stripes 44944, want 4000"). ReadHeader validates exactly what
// cryptsetup validates on load: magic and version, a known hash with a digest of at least
// 20 bytes, for every slot (enabled or not) 4000 stripes, key material after the header and
// before the payload, no overlapping key material, and a device large enough for the key
// material when its size is known.
//
// # LUKS2
//
// ReadHeader2 loads a LUKS2 header exactly as cryptsetup 2.6.1's loader does: both binary
// headers (magic, version 2, recorded offset, metadata size 16 KiB … 4 MiB, checksum with
// the algorithm the header names), the JSON area (one object from the first byte, then
// only white space and NULs, at least one NUL), the JSON validation of keyslots, tokens,
// segments, digests and config (ids in numbered form, 64-bit numbers as decimal strings,
// keyslot areas inside the keyslots area and not overlapping, segments aligned, not
// overlapping and covered by a digest, config.json_size matching the area, requirements
// well formed), and cryptsetup's repair of leftover KDF parameters. The valid copy with the
// higher sequence ID wins; Header2.PrimaryErr and SecondaryErr say what is wrong with the
// other one (cryptsetup rewrites it on its next write access; this reader never writes).
// Unknown keyslot, token and segment types load, as in cryptsetup; Token2.Raw and
// Keyslot2.Raw keep them whole.
//
// Unlock2 opens a LUKS2 keyslot with a passphrase: pbkdf2 with any hash, argon2i and
// argon2id (golang.org/x/crypto/argon2), AF "luks1", key material decrypted in 512-byte
// sectors, pbkdf2 digest; slots of priority "prefer" first, then "normal", in the order the
// header lists them; "ignore" slots only when named. Argon2 costs are checked before the
// call (the library panics on zero time or lanes and allocates the whole memory cost at
// once): memory above UnlockOptions.MaxArgon2Memory (default 4 GiB, cryptsetup's own
// ceiling) or memory×passes above MaxArgon2Work is refused with ErrWorkLimit, and memory
// beyond what the process can get (the least of MemAvailable, the room under RLIMIT_AS and
// under cgroup v2 memory.max) with ErrOutOfMemory, cryptsetup's "Not enough available memory
// to open a keyslot." (gocryptsetup exits 3), where the Go runtime would abort the process.
// Argon2 parallelism above 255 lanes, which libargon2 and so cryptsetup 2.6.1 accept on
// unlock (up to 2^24-1, memory at least 8 KiB per lane) but golang.org/x/crypto/argon2
// cannot compute (it takes a uint8), goes to an RFC 9106 implementation in this package
// under the same limits, checked before it allocates; cryptsetup itself never writes more
// than 4 lanes.
//
// The JSON area is read with json-c's grammar (luks/internal/jsonc: comments, single
// quotes, trailing commas, NaN, duplicate keys, nesting limit 32, strings as raw bytes) and
// its size checked as json-c writes it back, as cryptsetup does. Digests and keyslots are
// walked in the text's order, as json-c keeps it. Known differences from cryptsetup, all on
// headers no cryptsetup writes: a pbkdf2 digest whose length is neither 20 bytes nor the
// hash's size (md4 and md5 digests, or a 32-byte digest with sha3-512) is refused as
// corrupt, where cryptsetup 2.6.1's PBKDF2_digest_verify reports success without comparing
// anything (any passphrase opens such a volume there). Tokens of systemd's plugins
// (systemd-tpm2, -fido2, -pkcs11) dump with the lines systemd 252's plugins add; where that
// pair crashes on a malformed token (a non-string fido2-credential, fido2-salt, fido2-rp,
// pkcs11-uri or pkcs11-key), the dump here leaves the plugin lines out, and the fido2
// plugin's messages on stderr are not reproduced.
//
// One API for both versions: Load returns a Metadata (*Header or *Header2), UnlockAny
// unlocks either, IsLUKS accepts either (IsLUKSVersion one), and Metadata.DataSegment
// gives the version-neutral description of the payload (cipher, key size, offset, size,
// sector size, IV tweak, persistent flags) that mappings and the userspace volume are
// built from. Header, ReadHeader and Unlock stay what they were, the LUKS1 types and
// verbs, so existing callers are unchanged; Unlock on a LUKS2 device still fails with
// ErrUnsupportedVersion and callers that want both use UnlockAny.
//
// # Security notes
//
// The volume key and passphrases are []byte, wiped after use where this package owns them
// (best effort in a garbage-collected language); VolumeKey redacts itself in fmt output and
// no error carries secret bytes. Nothing here talks to a network: the key never leaves the
// machine unless the caller sends it. A hostile header can demand 2^32-1 PBKDF2
// iterations, and a large key multiplies them (PBKDF2 repeats its loop for every hash-sized
// block of output: a 4000-byte cipher_null key with sha1 is 200 blocks). Unlock counts the
// work as iterations times blocks and refuses, before deriving anything, a slot or MK
// digest above UnlockOptions.MaxIterations (DefaultMaxIterations when 0) with ErrWorkLimit, and every PBKDF2 loop watches its context, so a cancelled
// context stops it within milliseconds. Readers accept MK digest counts below 1000 (cryptsetup
// 1.0 wrote 10) but refuse 0. Key sizes are bounded (16 MiB of key material per slot, as
// cryptsetup's LUKS_MAX_KEYSLOT_SIZE) before any allocation, and header backup and restore
// stream in 1 MiB chunks, so a hostile header claiming terabytes of metadata costs no more
// memory than a real one. Volume is safe for concurrent ReadAt and for concurrent WriteAt
// on disjoint byte ranges, as io.ReaderAt and io.WriterAt require.
//
// # Compatibility with cryptsetup
//
// The tests run real cryptsetup 2.6.1 both ways over a matrix of cipher specs, key sizes,
// hashes, slot layouts, payload alignments and detached headers: images cryptsetup makes are
// unlocked, dumped and key-managed here and then accepted by cryptsetup; images made here
// are opened, dumped and key-managed by cryptsetup. Specs cryptsetup's OpenSSL backend
// cannot run in user space (serpent, twofish, LRW, xts-essiv:wp256) are verified against
// the kernel's dm-crypt by the dmcrypt package's VM tests.
//
// # Plain dm-crypt
//
// PlainKey derives the key `cryptsetup open --type plain` 2.6.1 makes from a passphrase
// (lib/crypt_plain.c), and NewPlainVolume reads and writes a plain device in user space with
// the same PlainParams a dm-crypt mapping takes (512-byte encryption sectors).
package luks
