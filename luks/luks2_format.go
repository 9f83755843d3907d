package luks

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/luks/internal/jsonc"
	"github.com/cloudluks/cloudluks/luks/sector"
)

// PBKDF names for LUKS2 key slots.
const (
	KDFPBKDF2   = "pbkdf2"
	KDFArgon2i  = "argon2i"
	KDFArgon2id = "argon2id"
)

// cryptsetup 2.6.1's LUKS2 defaults and limits (lib/utils_pbkdf.c, lib/crypto_backend/
// pbkdf_check.c crypt_pbkdf_get_limits, configure.ac).
const (
	luks2DefaultIterTime = 2 * time.Second
	argon2DefaultMemory  = 1 << 20 // KiB
	argon2DefaultThreads = 4
	argon2MinIterations  = 4
	argon2MinMemory      = 32       // KiB
	argon2MinBenchMemory = 64 << 10 // KiB
	argon2MaxMemory      = 4 << 20  // KiB
	argon2MaxThreads     = 4
	pbkdf2MinIterations  = 1000
	luks2DigestIterTime  = 125 * time.Millisecond // LUKS_MKD_ITERATIONS_MS
	luks2SaltSize        = 32                     // LUKS_SALTSIZE
	luks2Stripes         = 4000
	luks2DefaultAlign    = 1 << 20 // DEFAULT_DISK_ALIGNMENT
	luks2HdrOffsetMax    = 4 << 20 // LUKS2_HDR_OFFSET_MAX
)

// ErrLUKS2Option: a LUKS2 format option cryptsetup refuses. The error is an *OptionError
// carrying cryptsetup's message.
var ErrLUKS2Option = errors.New("invalid LUKS2 format option")

// OptionError is a refused LUKS2 format option. Msg is cryptsetup's wording; PBKDF marks
// the PBKDF parameters, after which cryptsetup adds "Failed to set pbkdf parameters.".
type OptionError struct {
	Msg   string
	PBKDF bool
}

func (e *OptionError) Error() string { return ErrLUKS2Option.Error() + ": " + e.Msg }

// Is makes errors.Is(err, ErrLUKS2Option) match.
func (e *OptionError) Is(target error) bool { return target == ErrLUKS2Option }

// ValidLUKS2Sizes reports whether --luks2-metadata-size and --luks2-keyslots-size (bytes,
// 0 = default) are sizes LUKS2 allows (crypt_set_metadata_size), so a program can refuse
// them before it touches anything.
func ValidLUKS2Sizes(metadata, keyslots uint64) bool {
	return (metadata == 0 || validLUKS2MetadataSize(metadata)) && keyslots%4096 == 0 && keyslots <= luks2MaxKeyslotsSize
}

// LUKS2FormatOptions are the `luksFormat --type luks2` parameters. The zero value formats
// as cryptsetup 2.6.1 does with no options: aes-xts-plain64 with a 512-bit key, argon2id
// calibrated to 2 s with up to 1 GiB (at most half the RAM) and min(4, CPUs) threads, a
// pbkdf2-sha256 key digest, 16 KiB metadata, a 16 MiB header with the data 1 MiB aligned,
// the encryption sector size the device suggests, the key in slot 0.
type LUKS2FormatOptions struct {
	Cipher  string // cryptsetup -c; default "aes-xts-plain64"
	KeySize int    // bits; 0 → 512 for xts, else 256
	Hash    string // PBKDF2 / AF / digest hash; default "sha256"

	PBKDF           string        // "argon2id" (default), "argon2i", "pbkdf2"
	IterTime        time.Duration // default 2 s
	ForceIterations uint32        // --pbkdf-force-iterations (skips the benchmark)
	Memory          uint32        // --pbkdf-memory, KiB; 0 → 1 GiB; ignored by pbkdf2, as cryptsetup ignores it
	Parallel        uint32        // --pbkdf-parallel; 0 → 4, capped at the CPUs; ignored by pbkdf2

	SectorSize   int    // --sector-size; 0 = what the data device suggests
	Label        string // --label; cut to 47 bytes as cryptsetup cuts it
	Subsystem    string // --subsystem; cut to 47 bytes
	MetadataSize uint64 // --luks2-metadata-size in bytes; 0 → 16 KiB
	KeyslotsSize uint64 // --luks2-keyslots-size in bytes; 0 → fill to the data offset
	AlignPayload uint32 // --align-payload in 512-byte sectors; 0 → device topology (1 MiB)
	Offset       uint64 // --offset in 512-byte sectors; 0 → aligned after the keyslots

	// KeyslotCipher and KeyslotKeySize (bytes) are --keyslot-cipher and
	// --keyslot-key-size/8: the key slot area's encryption instead of the segment's; both
	// or neither.
	KeyslotCipher  string
	KeyslotKeySize int

	UUID      string    // "" = random
	VolumeKey []byte    // nil = random
	Keyslot   *int      // slot of the first key, 0..31; nil → 0
	Detached  bool      // the header device holds only the header (--header)
	Data      *os.File  // the data device when Detached (sector size and size checks); may be nil
	Rand      io.Reader // nil = getrandom(2) (luks/internal/secretrand); pins UUID, keys and salts in tests
}

// Format prints the options with VolumeKey redacted.
func (o LUKS2FormatOptions) Format(f fmt.State, verb rune) {
	c := o
	c.VolumeKey = nil
	type plain LUKS2FormatOptions
	fmt.Fprintf(f, fmt.FormatString(f, verb), plain(c))
	if o.VolumeKey != nil {
		fmt.Fprintf(f, " (volume key: %v)", redactedKey{true, len(o.VolumeKey)})
	}
}

// LUKS2Info describes a header FormatLUKS2 wrote.
type LUKS2Info struct {
	UUID         string
	Keyslot      int
	MetadataSize uint64 // bytes of each header copy
	KeyslotsSize uint64
	DataOffset   uint64 // bytes
	SectorSize   int
	PBKDF        string
	Iterations   uint32 // argon2 time cost or PBKDF2 iterations
	Memory       uint32 // KiB (argon2)
	Parallel     uint32 // (argon2)
	// Warnings are the lines cryptsetup prints on stdout while formatting (a very small
	// keyslots area, a keyslots size adjusted to the data offset).
	Warnings []string
}

// luks2KDF is a resolved key-slot KDF.
type luks2KDF struct {
	typ      string
	hash     string
	iter     uint32
	memory   uint32
	parallel uint32
	forced   bool
	target   time.Duration
}

func optErr(format string, a ...any) error {
	return &OptionError{Msg: fmt.Sprintf(format, a...)}
}

func pbkdfErr(format string, a ...any) error {
	return &OptionError{Msg: fmt.Sprintf(format, a...), PBKDF: true}
}

// resolveKDF applies verify_pbkdf_params and init_pbkdf_type: limits first, then the caps
// on threads (4, the online CPUs) and memory (half of the RAM).
func (o LUKS2FormatOptions) resolveKDF(hashName string) (luks2KDF, error) {
	k := luks2KDF{typ: strings.ToLower(o.PBKDF), hash: hashName, target: o.IterTime, forced: o.ForceIterations != 0}
	if k.typ == "" {
		k.typ = KDFArgon2id
	}
	if k.target == 0 {
		k.target = luks2DefaultIterTime
	}
	if k.target < 0 || (!k.forced && k.target < time.Millisecond) {
		return k, pbkdfErr("Requested PBKDF target time cannot be zero.")
	}
	switch k.typ {
	case KDFPBKDF2:
		if k.forced && o.ForceIterations < pbkdf2MinIterations {
			return k, pbkdfErr("Forced iteration count is too low for pbkdf2 (minimum is %d).", pbkdf2MinIterations)
		}
		k.iter = o.ForceIterations
		return k, nil
	case KDFArgon2i, KDFArgon2id:
	default:
		return k, pbkdfErr("Unknown PBKDF type %s.", o.PBKDF)
	}
	k.memory, k.parallel = o.Memory, o.Parallel
	if k.memory == 0 {
		k.memory = argon2DefaultMemory
	}
	if k.parallel == 0 {
		k.parallel = argon2DefaultThreads
	}
	if k.forced {
		if o.ForceIterations < argon2MinIterations {
			return k, pbkdfErr("Forced iteration count is too low for %s (minimum is %d).", k.typ, argon2MinIterations)
		}
		if k.memory < argon2MinMemory {
			return k, pbkdfErr("Forced memory cost is too low for %s (minimum is %d kilobytes).", k.typ, argon2MinMemory)
		}
		k.iter = o.ForceIterations
	}
	if k.memory > argon2MaxMemory {
		return k, pbkdfErr("Requested maximum PBKDF memory cost is too high (maximum is %d kilobytes).", argon2MaxMemory)
	}
	k.parallel = min(k.parallel, argon2MaxThreads, uint32(max(1, runtime.NumCPU())))
	k.memory = min(k.memory, adjustedPhysMemoryKiB())
	return k, nil
}

// adjustedPhysMemoryKiB is half the RAM, or the 1 GiB default when the figure is bogus
// (below 128 MiB or above 4 TiB), as adjusted_phys_memory has it.
func adjustedPhysMemoryKiB() uint32 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return argon2DefaultMemory
	}
	kib := uint64(si.Totalram) * uint64(si.Unit) / 1024
	if kib < 128<<10 || kib > 1<<32-1 {
		return argon2DefaultMemory
	}
	return uint32(kib / 2)
}

// benchmarkArgon2 is crypt_argon2_check: grow from the minimum costs until a run takes
// 250 ms, then move memory first (up to the limit) and time next towards the target, until
// a run lands within 95–110 % of it. Times are wall-clock, as cryptsetup measures argon2.
func benchmarkArgon2(ctx context.Context, typ string, keyLen int, maxMem, parallel uint32, target time.Duration) (t, m uint32, err error) {
	const benchMin, benchMinFast = 250, 10
	targetMS := target.Milliseconds()
	minMem := min(uint32(argon2MinBenchMemory), maxMem)
	minMem = max(minMem, parallel*8)
	if maxMem < minMem {
		return 0, 0, fmt.Errorf("%w: argon2 memory %d KiB", ErrInvalidParameter, maxMem)
	}
	measure := func(t, m uint32, samples int, atLeast int64) (int64, error) {
		best := int64(-1)
		for i := 0; i < samples; i++ {
			start := time.Now()
			k, err := argon2Key(ctx, typ, []byte("foobarfo"), []byte("0123456789abcdef0123456789abcdef"), int64(t), int64(m), int64(parallel), keyLen, argon2MaxMemory, math.MaxUint64)
			if err != nil {
				return 0, err
			}
			clear(k)
			ms := time.Since(start).Milliseconds()
			if best < 0 || ms < best {
				best = ms
			}
			if ms < atLeast {
				break
			}
		}
		return best, nil
	}
	t, m = argon2MinIterations, minMem
	ms, err := measure(t, m, 3, benchMin)
	for err == nil && ms < benchMin {
		if m == maxMem {
			if ms < benchMinFast {
				t *= 16
			} else if n := uint32(int64(t) * benchMin / max(ms, 1)); n == t {
				break
			} else {
				t = n
			}
		} else {
			if ms < benchMinFast {
				m *= 16
			} else if n := uint32(int64(m) * benchMin / max(ms, 1)); n == m {
				break
			} else {
				m = n
			}
			m = min(m, maxMem)
		}
		ms, err = measure(t, m, 3, benchMin)
	}
	if err != nil {
		return 0, 0, err
	}
	atLeast, atMost := targetMS*95/100, targetMS*110/100
	for {
		final := nextArgon2(&t, &m, argon2MinIterations, minMem, maxMem, ms, targetMS)
		if final {
			return t, m, nil
		}
		if ms, err = measure(t, m, 1, atLeast); err != nil {
			return 0, 0, err
		}
		if ms >= atLeast && ms <= atMost {
			return t, m, nil
		}
	}
}

// nextArgon2 is next_argon2_params; it reports whether the search is over.
func nextArgon2(t, m *uint32, minT, minM, maxM uint32, ms, target int64) bool {
	oldT, oldM := *t, *m
	ms = max(ms, 1)
	if ms > target {
		nt := uint32(uint64(*t) * uint64(target) / uint64(ms))
		if nt < minT {
			nm := uint32(uint64(*t) * uint64(*m) * uint64(target) / (uint64(minT) * uint64(ms)))
			*t, *m = minT, nm
			if *m < minM {
				*m = minM
				return true
			}
		} else {
			*t = nt
		}
	} else {
		nm := uint64(*m) * uint64(target) / uint64(ms)
		switch {
		case nm > uint64(maxM):
			*t = uint32(uint64(*t) * uint64(*m) * uint64(target) / (uint64(maxM) * uint64(ms)))
			*m = maxM
			if *t <= minT {
				*t = minT
				return true
			}
		case nm < uint64(minM):
			*m = minM
			return true
		default:
			*m = uint32(nm)
		}
	}
	return oldT == *t && oldM == *m
}

// DetectSectorSize is device_optimal_encryption_sector_size: for a regular file the file
// system's block size (at most a page), for a block device its logical block size, or
// its physical one when that is larger and a multiple of it; 4096 at most, 512 when
// unknown.
func DetectSectorSize(f *os.File) int {
	if f == nil {
		return SectorSize
	}
	st, err := f.Stat()
	if err != nil {
		return SectorSize
	}
	page := os.Getpagesize()
	var bs int
	if st.Mode().IsRegular() {
		bs = page
		var sv unix.Statfs_t
		if unix.Fstatfs(int(f.Fd()), &sv) == nil && sv.Bsize > 0 && int(sv.Bsize) <= page {
			bs = int(sv.Bsize)
		}
	} else {
		if n, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET); err == nil {
			bs = n
		} else {
			bs = page
		}
	}
	if bs <= 0 {
		return SectorSize
	}
	if bs >= 4096 {
		if bs%4096 != 0 {
			return SectorSize
		}
		return 4096
	}
	phys := 0
	if !st.Mode().IsRegular() {
		phys, _ = unix.IoctlGetInt(int(f.Fd()), unix.BLKPBSZGET)
	}
	if bs >= phys || phys <= SectorSize || phys > 4096 || phys%bs != 0 {
		return bs
	}
	return phys
}

// topologyAlignment is device_topology_alignment for a block device (minimum and optimal
// I/O size, alignment offset); a file or an unknown device gets 1 MiB and no offset.
func topologyAlignment(f *os.File) (align, offset uint64) {
	align = luks2DefaultAlign
	if f == nil {
		return align, 0
	}
	if st, err := f.Stat(); err != nil || st.Mode().IsRegular() {
		return align, 0
	}
	minIO, err := unix.IoctlGetUint32(int(f.Fd()), unix.BLKIOMIN)
	if err != nil {
		return align, 0
	}
	optIO, err := unix.IoctlGetUint32(int(f.Fd()), unix.BLKIOOPT)
	if err != nil {
		optIO = minIO
	}
	if off, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKALIGNOFF); err == nil && off > 0 {
		offset = uint64(off)
	}
	tmp := uint64(minIO)
	if tmp < uint64(optIO) && tmp != 0 && uint64(optIO)%tmp == 0 && optIO%4096 == 0 {
		tmp = uint64(optIO)
	}
	if tmp != 0 && luks2DefaultAlign%tmp != 0 {
		align = tmp
	}
	return align, offset
}

// luks2Plan is everything FormatLUKS2 writes, computed before the first write.
type luks2Plan struct {
	meta        *luks2Metadata
	vk          *VolumeKey
	slot        int
	kdf         luks2KDF
	areaOffset  uint64
	areaMat     []byte // encrypted key material for the slot's area
	dataOffset  uint64
	keyslotSize uint64
	sectorSize  int
	keyslot     *jsonc.Value // the keyslot object, added for the second write
	warnings    []string
}

func b64Value(b []byte) *jsonc.Value { return jsonc.NewString(base64.StdEncoding.EncodeToString(b)) }

func u64s(n uint64) *jsonc.Value { return jsonc.NewString(fmt.Sprint(n)) }

// planLUKS2 checks every option, in cryptsetup's order where it decides which message
// wins, and computes layout, keys and key material.
func planLUKS2(ctx context.Context, hdr ReadWriterAt, pass []byte, o LUKS2FormatOptions) (*luks2Plan, error) {
	rnd := randOr(o.Rand)
	fp, err := FormatOptions{Cipher: o.Cipher, KeySize: o.KeySize, Hash: o.Hash, VolumeKey: o.VolumeKey}.Check()
	if err != nil {
		return nil, err
	}
	keyBytes := fp.KeySize / 8
	cipherNull := fp.CipherName == "cipher_null" || fp.CipherName == "null"
	if cipherNull && len(pass) > 0 {
		return nil, fmt.Errorf("%w: cipher_null headers accept only an empty passphrase", ErrInvalidParameter)
	}
	metaSize := o.MetadataSize
	if !ValidLUKS2Sizes(metaSize, o.KeyslotsSize) {
		return nil, optErr("Unsupported LUKS2 metadata size options.")
	}
	if metaSize == 0 {
		metaSize = luks2DefaultMetadataSize
	}
	slot := 0
	if o.Keyslot != nil {
		slot = *o.Keyslot
		if slot < 0 || slot >= luks2KeyslotsMax {
			return nil, optErr("Key slot %d is invalid, please select between 0 and %d.", slot, luks2KeyslotsMax-1)
		}
	}
	kdf, err := o.resolveKDF(fp.Hash)
	if err != nil {
		return nil, err
	}
	// Offsets and alignment (_crypt_format_luks2, LUKS2_generate_hdr).
	dataDev := o.Data
	if !o.Detached {
		dataDev, _ = hdr.(*os.File)
	}
	var dataOffset, reqAlign, alignOff uint64
	dataOffset = o.Offset * SectorSize
	if o.Offset%8 != 0 {
		return nil, optErr("Data offset is not multiple of 4096 bytes.")
	}
	if o.Offset != 0 && o.AlignPayload != 0 && o.Offset%uint64(o.AlignPayload) != 0 {
		return nil, optErr("Requested data alignment is not compatible with data offset.")
	}
	switch {
	case o.Detached:
		if dataOffset == 0 {
			dataOffset = uint64(o.AlignPayload) * SectorSize
		}
		reqAlign = uint64(o.AlignPayload) * SectorSize
	case o.AlignPayload != 0:
		reqAlign = uint64(o.AlignPayload) * SectorSize
	default:
		reqAlign, alignOff = topologyAlignment(dataDev)
	}
	sectorSize := o.SectorSize
	auto := sectorSize == 0
	if auto {
		sectorSize = DetectSectorSize(dataDev)
	}
	if sectorSize < SectorSize || sectorSize > 4096 || sectorSize&(sectorSize-1) != 0 {
		return nil, optErr("Unsupported encryption sector size.")
	}
	var dataSize int64
	haveDataSize := false
	if dataDev != nil {
		dataSize, haveDataSize = deviceSize(dataDev)
	}
	if auto {
		if dataOffset != 0 && dataOffset%uint64(sectorSize) != 0 {
			sectorSize = SectorSize
		} else if haveDataSize && (uint64(dataSize)-reqAlign-alignOff)%uint64(sectorSize) != 0 {
			sectorSize = SectorSize
		}
	}
	minOff := 2 * metaSize
	if dataOffset != 0 && dataOffset < minOff {
		return nil, optErr("Requested data offset is too small.")
	}
	ks := o.KeyslotsSize
	if ks == 0 && dataOffset != 0 {
		ks = dataOffset - minOff
	}
	ks -= ks % 4096
	ks = min(ks, luks2MaxKeyslotsSize)
	if ks == 0 {
		ks = luks2DefaultHdrAreasSize - minOff
	}
	if dataOffset != 0 && ks+minOff > dataOffset {
		ks = dataOffset - minOff
	}
	if dataOffset == 0 && reqAlign != 0 {
		dataOffset = roundUp(minOff+ks, reqAlign) + alignOff
	}
	var warnings []string
	if ks < luks2HdrOffsetMax-2*luks2DefaultMetadataSize {
		warnings = append(warnings, fmt.Sprintf("WARNING: keyslots area (%d bytes) is very small, available LUKS2 keyslot count is very limited.", ks))
	}
	if o.KeyslotsSize != 0 && o.KeyslotsSize != ks {
		warnings = append(warnings, fmt.Sprintf("WARNING: LUKS2 keyslots area size changed to %d bytes.", ks))
	}
	if sectorSize > SectorSize && haveDataSize {
		if (uint64(dataSize)-dataOffset)%uint64(sectorSize) != 0 {
			return nil, optErr("Device size is not aligned to requested sector size.")
		}
	}
	// A block device (not a growable file) must hold the header and keyslots area.
	if f, ok := hdr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
			if n, ok := deviceSize(f); ok && uint64(n) < minOff+ks {
				return nil, fmt.Errorf("%w: %s needs %d bytes for the LUKS2 header", ErrDeviceTooSmall, f.Name(), minOff+ks)
			}
		}
	}
	// The keyslot's area: first gap after both header copies (LUKS2_find_area_gap).
	areaLen := roundUp(uint64(keyBytes)*luks2Stripes, 4096)
	areaOff := minOff
	if areaOff+areaLen > minOff+ks {
		return nil, optErr("No space for new keyslot.")
	}
	uuid := o.UUID
	if uuid == "" {
		if uuid, err = randomUUID(rnd); err != nil {
			return nil, err
		}
	} else if uuid, err = canonicalUUID(uuid); err != nil {
		return nil, optErr("Wrong LUKS UUID format provided.")
	}
	// Keyslot encryption: the segment's cipher unless it cannot protect a key slot.
	segCipher := fp.CipherName
	if fp.CipherMode != "" {
		segCipher += "-" + fp.CipherMode
	}
	slotCipher, slotKeyBytes, err := keyslotEncryption(segCipher, keyBytes, o.KeyslotCipher, o.KeyslotKeySize)
	if err != nil {
		return nil, err
	}
	newHash, err := sector.NewHashLUKS2(fp.Hash)
	if err != nil {
		return nil, err
	}

	// Calibrations (no randomness consumed yet, so pinned streams stay in step).
	digestIter := uint32(pbkdf2MinIterations)
	if !kdf.forced {
		switch kdf.typ {
		case KDFPBKDF2:
			if kdf.iter, err = benchmarkPBKDF2(ctx, newHash, slotKeyBytes, kdf.target); err != nil {
				return nil, err
			}
			kdf.iter = max(kdf.iter, pbkdf2MinIterations)
		default:
			if kdf.iter, kdf.memory, err = benchmarkArgon2(ctx, kdf.typ, slotKeyBytes, kdf.memory, kdf.parallel, kdf.target); err != nil {
				return nil, err
			}
		}
		if digestIter, err = benchmarkPBKDF2(ctx, newHash, keyBytes, luks2DigestIterTime); err != nil {
			return nil, err
		}
		digestIter = max(digestIter, pbkdf2MinIterations)
	}

	// Randomness in cryptsetup's order: volume key, header salts, digest salt, keyslot salt.
	var vk *VolumeKey
	if o.VolumeKey != nil {
		vk = NewVolumeKey(o.VolumeKey)
	} else {
		vk = &VolumeKey{b: make([]byte, keyBytes)}
		if _, err := io.ReadFull(rnd, vk.b); err != nil {
			return nil, fmt.Errorf("generating volume key: %w", err)
		}
	}
	fail := func(err error) (*luks2Plan, error) { vk.Wipe(); return nil, err }
	m := &luks2Metadata{hdrSize: metaSize, seqid: 1, label: o.Label, subsystem: o.Subsystem, csumAlg: "sha256", uuid: uuid}
	if _, err := io.ReadFull(rnd, m.salt1[:]); err != nil {
		return fail(err)
	}
	if _, err := io.ReadFull(rnd, m.salt2[:]); err != nil {
		return fail(err)
	}
	digestSalt := make([]byte, luks2SaltSize)
	if _, err := io.ReadFull(rnd, digestSalt); err != nil {
		return fail(err)
	}
	d, err := pbkdf2Key(ctx, newHash, vk.b, digestSalt, digestIter, newHash().Size())
	if err != nil {
		return fail(err)
	}
	digest := jsonc.NewObject().
		Set("type", jsonc.NewString("pbkdf2")).
		Set("keyslots", jsonc.NewArray()).
		Set("segments", jsonc.NewArray(jsonc.NewString("0"))).
		Set("hash", jsonc.NewString(fp.Hash)).
		Set("iterations", jsonc.NewInt(int64(digestIter))).
		Set("salt", b64Value(digestSalt)).
		Set("digest", b64Value(d))
	clear(d)
	segment := jsonc.NewObject().
		Set("type", jsonc.NewString("crypt")).
		Set("offset", u64s(dataOffset)).
		Set("size", jsonc.NewString("dynamic")).
		Set("iv_tweak", jsonc.NewString("0")).
		Set("encryption", jsonc.NewString(segCipher)).
		Set("sector_size", jsonc.NewInt(int64(sectorSize)))
	m.json = jsonc.NewObject().
		Set("keyslots", jsonc.NewObject()).
		Set("tokens", jsonc.NewObject()).
		Set("segments", jsonc.NewObject().Set("0", segment)).
		Set("digests", jsonc.NewObject().Set("0", digest)).
		Set("config", jsonc.NewObject().
			Set("json_size", u64s(metaSize-l2BinLen)).
			Set("keyslots_size", u64s(ks)))

	// The key slot (luks2_keyslot_alloc, luks2_keyslot_update_json, luks2_keyslot_set_key).
	keyslot, mat, err := sealLUKS2Keyslot(ctx, kdf, fp.Hash, slotCipher, slotKeyBytes, areaOff, areaLen, vk.b, pass, rnd)
	if err != nil {
		return fail(fmt.Errorf("keyslot %d: %w", slot, err))
	}
	return &luks2Plan{meta: m, vk: vk, slot: slot, kdf: kdf, areaOffset: areaOff, areaMat: mat,
		dataOffset: dataOffset, keyslotSize: ks, sectorSize: sectorSize, keyslot: keyslot, warnings: warnings}, nil
}

// FormatLUKS2 writes a new LUKS2 header with passphrase in one key slot, as `cryptsetup
// luksFormat --type luks2` 2.6.1 does (_crypt_format_luks2, then
// crypt_keyslot_add_by_volume_key): every option is checked and every key derived before
// the first write; then the area before the data is zeroed (only the first 4 KiB for a
// detached header), the keyslots area filled with random bytes, both header copies
// written without any key slot (sequence id 2), the slot's key material stored, and both
// copies written again with the slot (sequence id 3). The data area is not touched.
func FormatLUKS2(ctx context.Context, hdr ReadWriterAt, passphrase []byte, opts LUKS2FormatOptions) (*LUKS2Info, *VolumeKey, error) {
	p, err := planLUKS2(ctx, hdr, passphrase, opts)
	if err != nil {
		return nil, nil, err
	}
	defer clear(p.areaMat)
	fail := func(err error) (*LUKS2Info, *VolumeKey, error) { p.vk.Wipe(); return nil, nil, err }
	rnd := randOr(opts.Rand)
	m := p.meta
	wipeLen := p.dataOffset
	if opts.Detached {
		wipeLen = 4096
	}
	const block = 1 << 20
	zero := make([]byte, min(wipeLen, block))
	for off := uint64(0); off < wipeLen; off += block {
		if err := writeFull(hdr, zero[:min(block, wipeLen-off)], int64(off)); err != nil {
			return fail(fmt.Errorf("wiping LUKS2 header area: %w", err))
		}
	}
	if err := wipeRandom(hdr, int64(2*m.hdrSize), int(p.keyslotSize), rnd); err != nil {
		return fail(fmt.Errorf("wiping LUKS2 keyslots area: %w", err))
	}
	if err := syncDevice(hdr); err != nil {
		return fail(err)
	}
	if err := writeLUKS2(hdr, m); err != nil {
		return fail(err)
	}
	if err := writeFull(hdr, p.areaMat, int64(p.areaOffset)); err != nil {
		return fail(fmt.Errorf("keyslot %d: writing key material: %w", p.slot, err))
	}
	if err := syncDevice(hdr); err != nil {
		return fail(err)
	}
	m.json.Get("keyslots").Set(fmt.Sprint(p.slot), p.keyslot)
	d := m.json.Get("digests").Get("0")
	d.Set("keyslots", jsonc.NewArray(jsonc.NewString(fmt.Sprint(p.slot))))
	if err := writeLUKS2(hdr, m); err != nil {
		return fail(err)
	}
	return &LUKS2Info{UUID: m.uuid, Keyslot: p.slot, MetadataSize: m.hdrSize, KeyslotsSize: p.keyslotSize,
		DataOffset: p.dataOffset, SectorSize: p.sectorSize, PBKDF: p.kdf.typ, Iterations: p.kdf.iter,
		Memory: p.kdf.memory, Parallel: p.kdf.parallel, Warnings: p.warnings}, p.vk, nil
}
