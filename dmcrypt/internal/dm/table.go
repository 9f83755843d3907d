package dm

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/cloudluks/cloudluks/luks"
)

// KeyringKey, when set in a CryptTable, makes the table reference a key in the kernel keyring
// (":<size>:<type>:<description>") instead of carrying the key in hex.
type KeyringKey struct {
	Type        string // "logon" (default) or "user"
	Description string // "prefix:rest"; logon keys require the colon
	Size        int    // key size in bytes
}

// CryptTable is a single dm-crypt target:
//
//	<start> <length> crypt <cipher> <key> <iv_offset> <device> <offset> [<#opt> <opt>...]
//
// All sizes are 512-byte sectors. Key holds the raw volume key (written in hex) unless Keyring
// is set. String never shows key material.
type CryptTable struct {
	Start  uint64 // first sector of the mapping (0 for a one-target table)
	Length uint64 // mapping size in sectors
	Cipher string // kernel/cryptsetup spelling, e.g. "aes-xts-plain64", "aes-cbc-essiv:sha256"

	Key     []byte      // raw key; nil with Keyring or for cipher_null
	Keyring *KeyringKey // key by reference

	IVOffset uint64 // added to the sector number for the IV ("skipped" in cryptsetup status)
	Device   string // backing device: a path or "major:minor"
	Offset   uint64 // first sector on Device (LUKS payload offset)

	// Optional features, written in cryptsetup's fixed order.
	AllowDiscards       bool
	SameCPUCrypt        bool
	SubmitFromCryptCPUs bool
	NoReadWorkqueue     bool
	NoWriteWorkqueue    bool
	IVLargeSectors      bool
	SectorSize          uint32 // 0 or 512: default; else 1024…4096, a power of two
}

// KeySize returns the key size in bytes.
func (t *CryptTable) KeySize() int {
	if t.Keyring != nil {
		return t.Keyring.Size
	}
	return len(t.Key)
}

// HasKeyMaterial reports whether Params will contain the key itself (so the load must use
// DM_SECURE_DATA_FLAG and the buffer must be wiped).
func (t *CryptTable) HasKeyMaterial() bool { return t.Keyring == nil && len(t.Key) > 0 }

func (t *CryptTable) options() []string {
	var o []string
	if t.AllowDiscards {
		o = append(o, "allow_discards")
	}
	if t.SameCPUCrypt {
		o = append(o, "same_cpu_crypt")
	}
	if t.SubmitFromCryptCPUs {
		o = append(o, "submit_from_crypt_cpus")
	}
	if t.NoReadWorkqueue {
		o = append(o, "no_read_workqueue")
	}
	if t.NoWriteWorkqueue {
		o = append(o, "no_write_workqueue")
	}
	if t.IVLargeSectors {
		o = append(o, "iv_large_sectors")
	}
	if t.SectorSize != 0 && t.SectorSize != 512 {
		o = append(o, "sector_size:"+strconv.FormatUint(uint64(t.SectorSize), 10))
	}
	return o
}

func (t *CryptTable) validate() error {
	if t.Length == 0 {
		return fmt.Errorf("crypt table: %w: zero length", ErrInvalidParameter)
	}
	if t.Cipher == "" {
		return fmt.Errorf("crypt table: %w: no cipher", ErrInvalidParameter)
	}
	if t.Device == "" {
		return fmt.Errorf("crypt table: %w: no device", ErrInvalidParameter)
	}
	if s := t.SectorSize; s != 0 && (s < 512 || s > 4096 || s&(s-1) != 0) {
		return fmt.Errorf("crypt table: %w: sector size %d", ErrInvalidParameter, s)
	}
	if s := uint64(t.SectorSize); s > 512 && (t.Length%(s/512) != 0 || t.IVOffset%(s/512) != 0) {
		return fmt.Errorf("crypt table: %w: length/iv offset not aligned to sector size %d", ErrInvalidParameter, s)
	}
	if k := t.Keyring; k != nil {
		typ := k.Type
		if typ == "" {
			typ = "logon"
		}
		if typ != "logon" && typ != "user" {
			return fmt.Errorf("crypt table: %w: keyring key type %q", ErrInvalidParameter, typ)
		}
		if k.Size <= 0 || k.Description == "" || !plainArg(k.Description) {
			return fmt.Errorf("crypt table: %w: keyring key reference", ErrInvalidParameter)
		}
		if typ == "logon" && !strings.Contains(k.Description, ":") {
			return fmt.Errorf("crypt table: %w: logon key description needs a \"prefix:\"", ErrInvalidParameter)
		}
	} else if len(t.Key) == 0 && !strings.HasPrefix(t.Cipher, "cipher_null") {
		return fmt.Errorf("crypt table: %w: no key", ErrInvalidParameter)
	}
	return nil
}

// plainArg reports whether s reaches the kernel as one table argument without escaping: no
// byte dm_split_args splits on or treats as an escape, no NUL.
func plainArg(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == 0 || isDMSpace(c) {
			return false
		}
	}
	return true
}

// Params returns the crypt target's parameter string. With a hex key the result contains the
// key: wipe it (clear(p)) when done.
func (t *CryptTable) Params() ([]byte, error) {
	return t.params(true)
}

func (t *CryptTable) params(withKey bool) ([]byte, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	// Sized once for the worst case (escaping doubles at most; options and numbers fit in 256
	// bytes) so append never reallocates and strands a copy of the hex key.
	n := 2*len(t.Cipher) + 2*len(t.Key) + 2*len(t.Device) + 256
	if t.Keyring != nil {
		n += len(t.Keyring.Description) + len(t.Keyring.Type) + 32
	}
	p := make([]byte, 0, n)
	var err error
	if p, err = appendEscaped(p, t.Cipher); err != nil {
		return nil, err
	}
	p = append(p, ' ')
	switch {
	case t.Keyring != nil:
		typ := t.Keyring.Type
		if typ == "" {
			typ = "logon"
		}
		p = append(p, ':')
		p = strconv.AppendInt(p, int64(t.Keyring.Size), 10)
		p = append(p, ':')
		p = append(p, typ...)
		p = append(p, ':')
		p = append(p, t.Keyring.Description...)
	case len(t.Key) == 0:
		p = append(p, '-')
	case withKey:
		p = hex.AppendEncode(p, t.Key)
	default:
		p = append(p, "<redacted>"...)
	}
	p = append(p, ' ')
	p = strconv.AppendUint(p, t.IVOffset, 10)
	p = append(p, ' ')
	if p, err = appendEscaped(p, t.Device); err != nil {
		clear(p)
		return nil, err
	}
	p = append(p, ' ')
	p = strconv.AppendUint(p, t.Offset, 10)
	if opts := t.options(); len(opts) > 0 {
		p = append(p, ' ')
		p = strconv.AppendInt(p, int64(len(opts)), 10)
		for _, o := range opts {
			p = append(p, ' ')
			p = append(p, o...)
		}
	}
	return p, nil
}

// Target returns the table as a device-mapper Target. Its Params hold the key (see Params).
func (t *CryptTable) Target() (Target, error) {
	p, err := t.Params()
	if err != nil {
		return Target{}, err
	}
	return Target{Start: t.Start, Length: t.Length, Type: "crypt", Params: p}, nil
}

// String returns the table line with the key replaced by "<redacted>" (keyring references
// are shown: they name a key, they are not one). String, GoString and Format have value
// receivers so that a copy of the table, or a struct holding one by value, redacts too.
func (t CryptTable) String() string {
	p, err := t.params(false)
	if err != nil {
		return fmt.Sprintf("%d %d crypt <invalid: %v>", t.Start, t.Length, err)
	}
	return fmt.Sprintf("%d %d crypt %s", t.Start, t.Length, p)
}

// GoString redacts like String, so %#v cannot leak the key either.
func (t CryptTable) GoString() string { return "dm.CryptTable{" + t.String() + "}" }

// Format implements fmt.Formatter so every verb (%v, %+v, %s, %q, %x…) prints the redacted form.
func (t CryptTable) Format(f fmt.State, verb rune) {
	s := t.String()
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	_, _ = f.Write([]byte(s))
}

// Wipe zeroes the key.
func (t *CryptTable) Wipe() {
	clear(t.Key)
	t.Key = nil
}

// ParseCryptTarget decodes a crypt target as the kernel reports it (DM_TABLE_STATUS with the
// table flag). A hex key is decoded into Key (a fresh slice: call Wipe when done); a keyring
// reference fills Keyring. Unknown optional arguments are an error so callers never misreport
// a table they do not understand.
func ParseCryptTarget(t Target) (*CryptTable, error) {
	if t.Type != "crypt" {
		return nil, fmt.Errorf("%w: target type %q is not crypt", ErrInvalidParameter, t.Type)
	}
	args := splitArgs(t.Params)
	defer func() {
		for _, a := range args {
			clear(a)
		}
	}()
	if len(args) < 5 {
		return nil, fmt.Errorf("%w: crypt target has %d arguments", ErrInvalidParameter, len(args))
	}
	ct := &CryptTable{Start: t.Start, Length: t.Length, Cipher: string(args[0]), Device: string(args[3])}
	key := args[1]
	switch {
	case len(key) > 0 && key[0] == ':':
		f := strings.SplitN(string(key[1:]), ":", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("%w: malformed keyring key reference", ErrInvalidParameter)
		}
		size, err := strconv.Atoi(f[0])
		if err != nil || size <= 0 {
			return nil, fmt.Errorf("%w: malformed keyring key size", ErrInvalidParameter)
		}
		ct.Keyring = &KeyringKey{Type: f[1], Description: f[2], Size: size}
	case len(key) == 1 && key[0] == '-':
		// cipher_null: no key
	default:
		if len(key)%2 != 0 {
			return nil, fmt.Errorf("%w: malformed hex key", ErrInvalidParameter)
		}
		k := make([]byte, len(key)/2)
		if _, err := hex.Decode(k, key); err != nil {
			clear(k)
			return nil, fmt.Errorf("%w: malformed hex key", ErrInvalidParameter)
		}
		ct.Key = k
	}
	var err error
	if ct.IVOffset, err = strconv.ParseUint(string(args[2]), 10, 64); err != nil {
		ct.Wipe()
		return nil, fmt.Errorf("%w: iv offset %q", ErrInvalidParameter, args[2])
	}
	if ct.Offset, err = strconv.ParseUint(string(args[4]), 10, 64); err != nil {
		ct.Wipe()
		return nil, fmt.Errorf("%w: offset %q", ErrInvalidParameter, args[4])
	}
	if len(args) == 5 {
		return ct, nil
	}
	n, err := strconv.Atoi(string(args[5]))
	if err != nil || n < 0 || n != len(args)-6 {
		ct.Wipe()
		return nil, fmt.Errorf("%w: optional argument count %q", ErrInvalidParameter, args[5])
	}
	for _, a := range args[6:] {
		switch s := string(a); {
		case s == "allow_discards":
			ct.AllowDiscards = true
		case s == "same_cpu_crypt":
			ct.SameCPUCrypt = true
		case s == "submit_from_crypt_cpus":
			ct.SubmitFromCryptCPUs = true
		case s == "no_read_workqueue":
			ct.NoReadWorkqueue = true
		case s == "no_write_workqueue":
			ct.NoWriteWorkqueue = true
		case s == "iv_large_sectors":
			ct.IVLargeSectors = true
		case strings.HasPrefix(s, "sector_size:"):
			v, err := strconv.ParseUint(s[len("sector_size:"):], 10, 32)
			if err != nil {
				ct.Wipe()
				return nil, fmt.Errorf("%w: %q", ErrInvalidParameter, s)
			}
			ct.SectorSize = uint32(v)
		default:
			ct.Wipe()
			return nil, fmt.Errorf("%w: unknown crypt option %q", ErrInvalidParameter, s)
		}
	}
	return ct, nil
}

// CryptTableFromHeader returns the table cryptsetup loads for a LUKS1 volume: cipher from the
// header, the volume key (borrowed, not copied: do not Wipe the table, wipe vk), IV offset 0,
// payload from PayloadOffset to the end of a device of deviceSectors sectors.
func CryptTableFromHeader(h *luks.Header, vk *luks.VolumeKey, device string, deviceSectors uint64) (*CryptTable, error) {
	if h == nil || vk == nil {
		return nil, fmt.Errorf("%w: nil header or volume key", ErrInvalidParameter)
	}
	if vk.Len() != int(h.KeyBytes) {
		return nil, fmt.Errorf("%w: volume key of %d bytes, header says %d", ErrInvalidParameter, vk.Len(), h.KeyBytes)
	}
	offset := uint64(h.PayloadOffset)
	if deviceSectors <= offset {
		return nil, fmt.Errorf("device %s: %w (%d sectors, payload starts at %d)", device, luks.ErrDeviceTooSmall, deviceSectors, offset)
	}
	return &CryptTable{
		Length: deviceSectors - offset,
		Cipher: h.CipherSpec(),
		Key:    vk.Bytes(),
		Device: device,
		Offset: offset,
	}, nil
}
