// Package sector implements the sector encryption of Linux dm-crypt as LUKS1 uses it:
// cipher-specification parsing, the IV generators and the block-chaining modes, over
// 512-byte sectors. It knows nothing of LUKS headers; the luks package uses it to decrypt
// key-slot material and to read and write payload data.
//
// # What it implements
//
// The byte-level behaviour of dm-crypt (drivers/md/dm-crypt.c and the kernel crypto templates
// crypto/xts.c, crypto/lrw.c, crypto/essiv.c) as reproduced in userspace by cryptsetup
// (lib/crypto_backend/crypto_storage.c), so that data written here is read by the kernel and
// the other way round:
//
//   - XTS: IEEE Std 1619-2007, key = K1 (data) ‖ K2 (tweak), tweak input taken from the IV
//     generator (so xts-essiv, xts-benbi and xts-plain64be work, not only plain64).
//   - CBC and ECB: NIST SP 800-38A. ECB ignores any IV generator, as dm-crypt does.
//   - LRW: IEEE P1619 draft / kernel crypto/lrw.c, key = cipher key ‖ 16-byte tweak key,
//     tweak = K2 ⊗ I in GF(2^128), I = the IV read as a big-endian block index.
//   - Ciphers: AES (crypto/aes), Twofish (written here from the specification, checked
//     against golang.org/x/crypto/twofish and the paper's vectors), Serpent (written here,
//     kernel byte order, checked with NESSIE and the authors' submission vectors) and
//     cipher_null (identity, ECB only).
//   - Hashes for ESSIV and, through NewHash, for the luks package's PBKDF2 and AF: sha1,
//     sha224, sha256, sha384, sha512 (standard library), ripemd160 and whirlpool (written
//     here, ISO/IEC 10118-3, with state marshaling so that crypto/hmac precomputes the padded
//     keys), the kernel's truncations wp256/wp384 (wp512 = whirlpool), sha3-256 and
//     blake2b-512. Names are case-insensitive; md5 is refused as cryptsetup refuses it.
//
// # Cipher specifications
//
// A cryptsetup -c argument such as "aes-xts-plain64" is split by SplitSpec into the two LUKS1
// header fields, cipher name "aes" and cipher mode "xts-plain64", following cryptsetup's
// crypt_parse_name_and_mode ("aes" and "aes-plain" mean "aes-cbc-plain"; "null" means
// "cipher_null-ecb"). ParseSpec checks the header fields against the dm-crypt grammar
//
//	cipher-chainmode-ivmode[:ivopts]
//
// and refuses, with an error wrapping ErrUnsupportedCipher or ErrUnsupportedHash, what
// cryptsetup or dm-crypt refuse and what only the kernel implements: a chain mode other than
// ecb without an IV generator ("IV mechanism required"), ESSIV hashes whose digest is not a
// valid key for the cipher (essiv:sha1 with AES), the kernel-only lmk, tcw, random and
// elephant generators, multi-key "cipher:N" and "capi:" specifications. Options after ':' on
// IV generators that take none ("xts-plain64:sha256", found in old headers) are ignored, as
// the kernel ignores them.
//
// # IV generators
//
// For sector s (counted in 512-byte units from the start of the payload, or of the key
// material), with the rest of the 16-byte IV zero:
//
//	null       all zero
//	plain      LE32(s mod 2^32)
//	plain64    LE64(s)
//	plain64be  BE64(s) in the last 8 bytes
//	essiv:H    E_salt(LE64(s)), salt = H(whole key), same block cipher keyed with the salt
//	benbi      BE64(s·32 + 1) in the last 8 bytes (one-based 16-byte block count)
//	eboiv      the chain mode applied to one zero block with IV LE64(s·512)
//	           (for CBC: E_K(LE64(s·512)))
//
// # Supported matrix
//
//	cipher       key bytes (ecb/cbc)   xts        lrw        modes              IV generators
//	aes          16, 24, 32            32, 48, 64 32, 40, 48 xts cbc ecb lrw    all seven
//	twofish      16, 24, 32            32, 48, 64 32, 40, 48 xts cbc ecb lrw    all seven
//	serpent      1…32                  2…64 even  17…48      xts cbc ecb lrw    all seven
//	cipher_null  any (ignored)         —          —          ecb                —
//
// ESSIV hashes must produce a valid key for the cipher: for AES and Twofish that means
// 16, 24 or 32 bytes (sha256, wp256, sha3-256; not sha1, sha224, sha512), Serpent takes any
// digest up to 32 bytes (also sha1, ripemd160, sha224).
//
// # Limits
//
// The sector size is fixed at 512 bytes, the only size LUKS1 knows (SectorSize). Buffers
// passed to Encrypt and Decrypt must be whole sectors; a wrong length or overlapping buffers
// are programmer errors and panic. A Cipher holds no mutable state and is safe for
// concurrent use. Wipe zeroes the key copy and the key schedules the package owns, which are
// all of them except crypto/aes's: AES without AES-NI keeps a schedule this package cannot
// reach.
//
// # Speed
//
// On amd64 with AES-NI, AES in every mode runs through assembly: eight blocks in parallel for
// XTS, LRW, ECB and CBC decryption (32 with AVX-512 VAES for XTS, LRW and ECB), a tight serial
// loop for CBC encryption, and no allocation per call. With VAES, aes-xts-plain64 (both ways)
// and aes-cbc-plain64/essiv decryption are one assembly call per Encrypt or Decrypt: the IVs,
// the ESSIV encryptions and the XTS tweaks are computed in registers in the same pass as the
// data; without VAES but with AVX, aes-xts-plain64 is one call too, eight blocks at a time
// with the tweaks in XMM registers. The assembly is generated by the avo program in _asm
// (`go generate ./luks/sector`).
// Serpent runs bitsliced for XTS, ECB and CBC decryption of whole sectors: with AVX-512 32
// blocks per step (VPTERNLOGD S-boxes), with AVX2 alone (Zen 2/3, Intel before Ice Lake) 8
// blocks per step (S-boxes of AND, XOR and ANDN, rotates of two shifts). Twofish serves the
// same modes with AVX-512, 32 blocks per step (VPERMT2B S-box lookups and GF2P8AFFINEQB for
// the MDS matrix; needs VBMI and GFNI), or with AVX2, 16 blocks per step (VPGATHERDD from the
// key's full tables), in twofish_amd64.s, generated with `_asm -twofish`; CBC encryption and
// LRW of both run the portable code. Both check their own CPU flags, not AES-NI's: a CPU or
// VM without AES-NI still runs them.
// Elsewhere, or when built with the purego tag, the portable Go code runs; it is also the
// reference the assembly is tested against, sector by sector, on random data.
//
// A run of consecutive sectors is a batch: pass it to one Encrypt or Decrypt call (as the
// luks package's Volume does) rather than one call per sector, and the per-call cost is paid
// once for the whole run (BenchmarkBatch measures the difference).
package sector
