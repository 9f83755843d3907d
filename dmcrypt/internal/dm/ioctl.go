package dm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// The layouts below follow include/uapi/linux/dm-ioctl.h. They are encoded by hand into byte
// buffers (native byte order) rather than through unsafe struct casts, so the encoding is
// testable on any platform and a buffer that carries key material is one []byte that can be
// zeroed afterwards.

const (
	ioctlHeaderSize = 312 // sizeof(struct dm_ioctl)
	targetSpecSize  = 40  // sizeof(struct dm_target_spec)
	nameLen         = 128 // DM_NAME_LEN (including the NUL)
	uuidLen         = 129 // DM_UUID_LEN (including the NUL)

	// Offsets inside struct dm_ioctl.
	offDataSize    = 12
	offDataStart   = 16
	offTargetCount = 20
	offOpenCount   = 24
	offFlags       = 28
	offEventNr     = 32
	offDev         = 40
	offName        = 48
	offUUID        = 176
)

// Ioctl command numbers: _IOWR(DM_IOCTL=0xfd, nr, struct dm_ioctl).
const (
	cmdVersion     = 0
	cmdRemoveAll   = 1
	cmdListDevices = 2
	cmdDevCreate   = 3
	cmdDevRemove   = 4
	cmdDevRename   = 5
	cmdDevSuspend  = 6
	cmdDevStatus   = 7
	cmdDevWait     = 8
	cmdTableLoad   = 9
	cmdTableClear  = 10
	cmdTableDeps   = 11
	cmdTableStatus = 12
	cmdTargetMsg   = 14
)

// ioctlNumber returns the request number of device-mapper command nr.
func ioctlNumber(nr uint) uint {
	const iowr = 3 << 30
	return iowr | ioctlHeaderSize<<16 | 0xfd<<8 | nr
}

// Flags of struct dm_ioctl.
const (
	flagReadOnly             = 1 << 0
	flagSuspend              = 1 << 1
	flagPersistentDev        = 1 << 3
	flagStatusTable          = 1 << 4
	flagActivePresent        = 1 << 5
	flagInactivePresent      = 1 << 6
	flagBufferFull           = 1 << 8
	flagSkipLockfs           = 1 << 10
	flagNoFlush              = 1 << 11
	flagQueryInactiveTable   = 1 << 12
	flagUeventGenerated      = 1 << 13
	flagUUID                 = 1 << 14
	flagSecureData           = 1 << 15
	flagDataOut              = 1 << 16
	flagDeferredRemove       = 1 << 17
	flagInternalSuspend      = 1 << 18
	nameListFlagHasUUID      = 1
	nameListFlagDoesntHaveID = 2
)

// ioctlHeader is struct dm_ioctl in Go form.
type ioctlHeader struct {
	Version     [3]uint32
	DataSize    uint32
	DataStart   uint32
	TargetCount uint32
	OpenCount   int32
	Flags       uint32
	EventNr     uint32
	Dev         uint64
	Name        string
	UUID        string
}

// put writes h into b[:ioctlHeaderSize]. Name and UUID must already be validated; they are
// cut to fit (the kernel reserves the last byte for NUL).
func (h *ioctlHeader) put(b []byte) {
	_ = b[ioctlHeaderSize-1]
	clear(b[:ioctlHeaderSize])
	ne := binary.NativeEndian
	for i, v := range h.Version {
		ne.PutUint32(b[4*i:], v)
	}
	ne.PutUint32(b[offDataSize:], h.DataSize)
	ne.PutUint32(b[offDataStart:], h.DataStart)
	ne.PutUint32(b[offTargetCount:], h.TargetCount)
	ne.PutUint32(b[offOpenCount:], uint32(h.OpenCount))
	ne.PutUint32(b[offFlags:], h.Flags)
	ne.PutUint32(b[offEventNr:], h.EventNr)
	ne.PutUint64(b[offDev:], h.Dev)
	copy(b[offName:offName+nameLen-1], h.Name)
	copy(b[offUUID:offUUID+uuidLen-1], h.UUID)
}

// parseHeader decodes struct dm_ioctl from the start of b.
func parseHeader(b []byte) (ioctlHeader, error) {
	var h ioctlHeader
	if len(b) < ioctlHeaderSize {
		return h, fmt.Errorf("%w: header of %d bytes", ErrProtocol, len(b))
	}
	ne := binary.NativeEndian
	for i := range h.Version {
		h.Version[i] = ne.Uint32(b[4*i:])
	}
	h.DataSize = ne.Uint32(b[offDataSize:])
	h.DataStart = ne.Uint32(b[offDataStart:])
	h.TargetCount = ne.Uint32(b[offTargetCount:])
	h.OpenCount = int32(ne.Uint32(b[offOpenCount:]))
	h.Flags = ne.Uint32(b[offFlags:])
	h.EventNr = ne.Uint32(b[offEventNr:])
	h.Dev = ne.Uint64(b[offDev:])
	h.Name = cString(b[offName : offName+nameLen])
	h.UUID = cString(b[offUUID : offUUID+uuidLen])
	return h, nil
}

// cString returns the bytes of b up to the first NUL (all of b when there is none).
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Target is one line of a device-mapper table: Length 512-byte sectors starting at Start,
// served by the target Type with the given parameter string. Params may hold key material
// (a crypt target with a hex key); callers zero it when done.
type Target struct {
	Start  uint64
	Length uint64
	Type   string
	Params []byte
}

// targetsSize returns the number of bytes marshalTargets needs.
func targetsSize(ts []Target) int {
	n := 0
	for _, t := range ts {
		n += specLen(len(t.Params))
	}
	return n
}

// specLen is the size of one spec plus its NUL-terminated parameters, padded to 8 bytes
// (newer kernels reject misaligned "next" offsets).
func specLen(params int) int {
	return (targetSpecSize + params + 1 + 7) &^ 7
}

// putTargets encodes ts as consecutive struct dm_target_spec records (with "next" relative to
// the current spec, as DM_TABLE_LOAD expects) into b, which must be targetsSize(ts) long.
func putTargets(b []byte, ts []Target) error {
	ne := binary.NativeEndian
	off := 0
	for i, t := range ts {
		if len(t.Type) == 0 || len(t.Type) > 15 {
			return fmt.Errorf("target %d: %w: target type %q", i, ErrInvalidParameter, t.Type)
		}
		if bytes.IndexByte(t.Params, 0) >= 0 || bytes.IndexByte([]byte(t.Type), 0) >= 0 {
			return fmt.Errorf("target %d: %w: NUL byte in table", i, ErrInvalidParameter)
		}
		n := specLen(len(t.Params))
		s := b[off : off+n]
		clear(s)
		ne.PutUint64(s[0:], t.Start)
		ne.PutUint64(s[8:], t.Length)
		ne.PutUint32(s[16:], 0) // status
		ne.PutUint32(s[20:], uint32(n))
		copy(s[24:40], t.Type)
		copy(s[40:], t.Params)
		off += n
	}
	return nil
}

// parseTargets decodes the target specs DM_TABLE_STATUS returns in data (the bytes from
// data_start to data_size). There, "next" is relative to the start of data, not to the current
// spec. The returned Params alias data.
func parseTargets(data []byte, count uint32) ([]Target, error) {
	ne := binary.NativeEndian
	var ts []Target
	off := 0
	for i := uint32(0); i < count; i++ {
		if off < 0 || off+targetSpecSize > len(data) {
			return nil, fmt.Errorf("%w: target %d outside the buffer", ErrProtocol, i)
		}
		s := data[off:]
		t := Target{
			Start:  ne.Uint64(s[0:]),
			Length: ne.Uint64(s[8:]),
			Type:   cString(s[24:40]),
		}
		p := s[targetSpecSize:]
		end := bytes.IndexByte(p, 0)
		if end < 0 {
			return nil, fmt.Errorf("%w: target %d parameters not terminated", ErrProtocol, i)
		}
		t.Params = p[:end:end]
		ts = append(ts, t)
		next := int(ne.Uint32(s[20:]))
		if i+1 < count && next <= off {
			return nil, fmt.Errorf("%w: target %d: next offset %d goes backwards", ErrProtocol, i, next)
		}
		off = next
	}
	return ts, nil
}

// targetMessage encodes struct dm_target_msg {u64 sector; char message[]} for DM_TARGET_MSG.
// Messages starting with '@' are for the device itself, not a target (sector is then unused).
func targetMessage(sector uint64, msg string) ([]byte, error) {
	if msg == "" || strings.IndexByte(msg, 0) >= 0 {
		return nil, fmt.Errorf("%w: target message %q", ErrInvalidParameter, msg)
	}
	b := make([]byte, 8+len(msg)+1)
	binary.NativeEndian.PutUint64(b, sector)
	copy(b[8:], msg)
	return b, nil
}

// DeviceInfo describes one device-mapper device, as DM_DEV_STATUS or DM_LIST_DEVICES report it.
type DeviceInfo struct {
	Name        string
	UUID        string
	Major       uint32
	Minor       uint32
	OpenCount   int32
	TargetCount uint32
	EventNr     uint32
	// Flags straight from the kernel (read-only, suspended, table presence, deferred remove).
	ReadOnly        bool
	Suspended       bool
	ActivePresent   bool
	InactivePresent bool
	DeferredRemove  bool
}

// decodeDev splits a huge_encode_dev value (the kernel's dev_t encoding in dm_ioctl.dev and
// dm_name_list.dev) into major and minor, as glibc's gnu_dev_major/minor do.
func decodeDev(dev uint64) (major, minor uint32) {
	major = uint32((dev & 0x00000000000fff00) >> 8)
	major |= uint32((dev & 0xfffff00000000000) >> 32)
	minor = uint32(dev & 0x00000000000000ff)
	minor |= uint32((dev & 0x00000ffffff00000) >> 12)
	return major, minor
}

// encodeDev is the inverse of decodeDev (gnu_dev_makedev).
func encodeDev(major, minor uint32) uint64 {
	d := (uint64(major) & 0x00000fff) << 8
	d |= (uint64(major) & 0xfffff000) << 32
	d |= (uint64(minor) & 0x000000ff) << 0
	d |= (uint64(minor) & 0xffffff00) << 12
	return d
}

// parseNameList decodes the struct dm_name_list records DM_LIST_DEVICES returns in data. Each
// record is {u64 dev; u32 next; char name[]}, followed (kernels >= 5.13) after 8-byte alignment
// by {u32 event_nr; u32 flags; char uuid[]} where flags says whether a uuid follows. next is
// relative to the current record; 0 ends the list. An empty list is no data at all or a
// single record with dev 0.
func parseNameList(data []byte) ([]DeviceInfo, error) {
	ne := binary.NativeEndian
	var out []DeviceInfo
	if len(data) < 12 {
		// No devices: the kernel reports data_size == data_start (or just a zero dev).
		if len(data) < 8 || ne.Uint64(data) == 0 {
			return nil, nil
		}
	}
	off := 0
	for {
		if off+12 > len(data) {
			return nil, fmt.Errorf("%w: name list record at %d outside the buffer", ErrProtocol, off)
		}
		r := data[off:]
		dev := ne.Uint64(r[0:])
		next := ne.Uint32(r[8:])
		if dev == 0 && next == 0 && len(out) == 0 {
			return nil, nil
		}
		end := bytes.IndexByte(r[12:], 0)
		if end < 0 {
			return nil, fmt.Errorf("%w: name at %d not terminated", ErrProtocol, off)
		}
		var di DeviceInfo
		di.Name = string(r[12 : 12+end])
		di.Major, di.Minor = decodeDev(dev)
		limit := len(r)
		if next != 0 {
			limit = int(min(uint64(next), uint64(len(r))))
		}
		// The extension sits at the next 8-byte boundary after the name, relative to the buffer
		// start; data begins at data_start (312, a multiple of 8), so relative to data works too.
		ext := (off + 12 + end + 1 + 7) &^ 7
		if ext+8 <= off+limit {
			di.EventNr = ne.Uint32(data[ext:])
			flags := ne.Uint32(data[ext+4:])
			if flags&nameListFlagHasUUID != 0 {
				u := data[ext+8 : off+limit]
				ue := bytes.IndexByte(u, 0)
				if ue < 0 {
					return nil, fmt.Errorf("%w: uuid at %d not terminated", ErrProtocol, off)
				}
				di.UUID = string(u[:ue])
			}
		}
		out = append(out, di)
		if next == 0 {
			return out, nil
		}
		if int(next) < 12 || off+int(next) > len(data) {
			return nil, fmt.Errorf("%w: name list next offset %d invalid", ErrProtocol, next)
		}
		off += int(next)
	}
}

// String returns the table line "start length type params" without key material: a crypt
// target's key argument reads "<redacted>" (a keyring reference or "-" is shown, it is not a
// key), and the parameters of target types not known to be keyless (dm-integrity, for one,
// carries journal keys) are replaced by their length.
func (t Target) String() string {
	s := strconv.FormatUint(t.Start, 10) + " " + strconv.FormatUint(t.Length, 10) + " " + t.Type
	if len(t.Params) == 0 {
		return s
	}
	switch t.Type {
	case "crypt":
		p := t.Params
		start, end := argSpan(p, 1)
		if start < end && p[start] != ':' && !(end-start == 1 && p[start] == '-') {
			return s + " " + string(p[:start]) + "<redacted>" + string(p[end:])
		}
		return s + " " + string(p)
	case "linear", "striped", "zero", "error", "mirror", "snapshot", "snapshot-origin",
		"thin", "thin-pool", "cache", "raid", "multipath", "delay", "flakey", "verity":
		return s + " " + string(t.Params)
	}
	return s + " <" + strconv.Itoa(len(t.Params)) + " bytes redacted>"
}

// GoString redacts like String, so %#v cannot show a key either.
func (t Target) GoString() string { return "dm.Target{" + t.String() + "}" }

// Format makes every verb (%v, %s, %q, %x…) print the redacted String.
func (t Target) Format(f fmt.State, verb rune) {
	s := t.String()
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	_, _ = f.Write([]byte(s))
}

// argSpan returns the byte range of argument n (0-based) of a parameter string as the kernel's
// dm_split_args separates it (white space splits, a backslash escapes the next byte), or
// start == end when there are not that many arguments.
func argSpan(p []byte, n int) (start, end int) {
	i := 0
	for k := 0; ; k++ {
		for i < len(p) && isDMSpace(p[i]) {
			i++
		}
		if i == len(p) {
			return len(p), len(p)
		}
		start = i
		for i < len(p) && !isDMSpace(p[i]) {
			if p[i] == '\\' && i+1 < len(p) {
				i++
			}
			i++
		}
		if k == n {
			return start, i
		}
	}
}
