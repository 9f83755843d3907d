package dm

import (
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIoctlNumbers(t *testing.T) {
	// _IOWR(0xfd, nr, 312) from include/uapi/linux/dm-ioctl.h.
	for _, tc := range []struct {
		nr   uint
		want uint
	}{
		{cmdVersion, 0xc138fd00},
		{cmdListDevices, 0xc138fd02},
		{cmdDevCreate, 0xc138fd03},
		{cmdDevRemove, 0xc138fd04},
		{cmdDevSuspend, 0xc138fd06},
		{cmdDevStatus, 0xc138fd07},
		{cmdTableLoad, 0xc138fd09},
		{cmdTableStatus, 0xc138fd0c},
	} {
		assert.Equal(t, tc.want, ioctlNumber(tc.nr), "command %d", tc.nr)
	}
}

func TestHeaderLayout(t *testing.T) {
	h := ioctlHeader{
		Version:     [3]uint32{4, 0, 0},
		DataSize:    0x1000,
		DataStart:   312,
		TargetCount: 1,
		OpenCount:   -1,
		Flags:       flagSecureData | flagReadOnly,
		EventNr:     0x11223344,
		Dev:         encodeDev(254, 1),
		Name:        "data",
		UUID:        "CRYPT-LUKS1-0e6c6e564e8e455495d78dc6342abbd7-data",
	}
	b := make([]byte, ioctlHeaderSize)
	h.put(b)
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 { // little-endian hosts: golden bytes
		assert.Equal(t, "040000000000000000000000"+"00100000"+"38010000"+"01000000"+"ffffffff"+"01800000"+"44332211"+"00000000",
			hex.EncodeToString(b[:40]))
		assert.Equal(t, "01fe000000000000", hex.EncodeToString(b[40:48]), "dev 254:1 = huge_encode_dev 65025")
	}
	assert.Equal(t, "data\x00", string(b[48:53]))
	assert.Equal(t, h.UUID+"\x00", string(b[176:176+len(h.UUID)+1]))
	assert.Equal(t, make([]byte, 7), b[305:312], "padding stays zero")

	got, err := parseHeader(b)
	require.NoError(t, err)
	assert.Equal(t, h, got)

	_, err = parseHeader(b[:311])
	require.ErrorIs(t, err, ErrProtocol)
}

func TestHeaderNameTruncated(t *testing.T) {
	long := make([]byte, 200)
	for i := range long {
		long[i] = 'a'
	}
	b := make([]byte, ioctlHeaderSize)
	(&ioctlHeader{Name: string(long), UUID: string(long)}).put(b)
	assert.Equal(t, byte(0), b[offName+nameLen-1], "name keeps its NUL")
	assert.Equal(t, byte(0), b[offUUID+uuidLen-1], "uuid keeps its NUL")
	h, err := parseHeader(b)
	require.NoError(t, err)
	assert.Len(t, h.Name, 127)
	assert.Len(t, h.UUID, 128)
}

func TestDevEncoding(t *testing.T) {
	for _, tc := range []struct {
		maj, min uint32
		enc      uint64
	}{
		{254, 1, 65025},
		{7, 0, 0x700},
		{259, 0, 0x10300},
		{10, 236, 0xaec},
		{4095, 1048575, 0xffffffff},          // the largest kernel dev_t: new_encode_dev fills 32 bits
		{0x12345, 0x123456, 0x1200123434556}, // glibc gnu_dev_makedev beyond the kernel range
	} {
		assert.Equal(t, tc.enc, encodeDev(tc.maj, tc.min), "%d:%d", tc.maj, tc.min)
		maj, min := decodeDev(tc.enc)
		assert.Equal(t, [2]uint32{tc.maj, tc.min}, [2]uint32{maj, min})
	}
}

func TestPutTargetsAligned(t *testing.T) {
	ts := []Target{
		{Start: 0, Length: 100, Type: "linear", Params: []byte("7:0 0")},                   // 40+5+1 = 46 → 48
		{Start: 100, Length: 28, Type: "crypt", Params: []byte("aes-xts-plain64 - 0 x 0")}, // 40+23+1 = 64
		{Start: 128, Length: 1, Type: "zero"},                                              // 41 → 48
	}
	n := targetsSize(ts)
	require.Equal(t, 48+64+48, n)
	b := make([]byte, n)
	require.NoError(t, putTargets(b, ts))
	ne := binary.NativeEndian
	off := 0
	for i, want := range []uint32{48, 64, 48} {
		s := b[off:]
		assert.Equal(t, ts[i].Start, ne.Uint64(s[0:]))
		assert.Equal(t, ts[i].Length, ne.Uint64(s[8:]))
		assert.Equal(t, uint32(0), ne.Uint32(s[16:]))
		assert.Equal(t, want, ne.Uint32(s[20:]), "next of target %d", i)
		assert.Equal(t, 0, int(want)%8)
		assert.Equal(t, ts[i].Type, cString(s[24:40]))
		assert.Equal(t, string(ts[i].Params), cString(s[40:want]))
		off += int(want)
	}
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		assert.Equal(t,
			"0000000000000000"+"6400000000000000"+"00000000"+"30000000"+hex.EncodeToString([]byte("linear\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))+
				hex.EncodeToString([]byte("7:0 0\x00\x00\x00")),
			hex.EncodeToString(b[:48]))
	}

	for _, bad := range []Target{
		{Length: 1, Type: "", Params: nil},
		{Length: 1, Type: "averyveryverylongtype"},
		{Length: 1, Type: "crypt", Params: []byte("a\x00b")},
	} {
		b := make([]byte, targetsSize([]Target{bad}))
		require.ErrorIs(t, putTargets(b, []Target{bad}), ErrInvalidParameter)
	}
}

// statusData builds a DM_TABLE_STATUS payload the way the kernel does: "next" relative to the
// start of the data, each spec 8-aligned.
func statusData(ts []Target) []byte {
	ne := binary.NativeEndian
	var out []byte
	for _, t := range ts {
		n := specLen(len(t.Params))
		s := make([]byte, n)
		ne.PutUint64(s[0:], t.Start)
		ne.PutUint64(s[8:], t.Length)
		ne.PutUint32(s[20:], uint32(len(out)+n))
		copy(s[24:40], t.Type)
		copy(s[40:], t.Params)
		out = append(out, s...)
	}
	return out
}

func TestParseTargets(t *testing.T) {
	ts := []Target{
		{Start: 0, Length: 4096, Type: "crypt", Params: []byte("aes-xts-plain64 00112233 0 7:0 4096 1 allow_discards")},
		{Start: 4096, Length: 8, Type: "linear", Params: []byte("7:1 0")},
	}
	got, err := parseTargets(statusData(ts), 2)
	require.NoError(t, err)
	assert.Equal(t, ts, got)

	got, err = parseTargets(nil, 0)
	require.NoError(t, err)
	assert.Empty(t, got)

	for name, tc := range map[string]struct {
		data  []byte
		count uint32
	}{
		"short":          {statusData(ts)[:30], 1},
		"count too high": {statusData(ts[:1]), 2},
		"unterminated":   {statusData(ts[:1])[:40+10], 1},
	} {
		_, err := parseTargets(tc.data, tc.count)
		require.ErrorIs(t, err, ErrProtocol, name)
	}
}

// nameList builds a DM_LIST_DEVICES payload the way Linux 6.1's list_devices does.
func nameList(devs []DeviceInfo, withUUIDFlag bool) []byte {
	ne := binary.NativeEndian
	if len(devs) == 0 {
		return make([]byte, 16)
	}
	var out []byte
	prev := -1
	for _, d := range devs {
		start := len(out)
		if prev >= 0 {
			ne.PutUint32(out[prev+8:], uint32(start-prev))
		}
		rec := make([]byte, 12)
		ne.PutUint64(rec, encodeDev(d.Major, d.Minor))
		rec = append(rec, d.Name...)
		rec = append(rec, 0)
		for (start+len(rec))%8 != 0 {
			rec = append(rec, 0)
		}
		ext := make([]byte, 8)
		ne.PutUint32(ext, d.EventNr)
		if withUUIDFlag {
			if d.UUID != "" {
				ne.PutUint32(ext[4:], nameListFlagHasUUID)
				ext = append(ext, d.UUID...)
				ext = append(ext, 0)
			} else {
				ne.PutUint32(ext[4:], nameListFlagDoesntHaveID)
			}
		}
		rec = append(rec, ext...)
		for (start+len(rec))%8 != 0 {
			rec = append(rec, 0)
		}
		out = append(out, rec...)
		prev = start
	}
	return out
}

func TestParseNameList(t *testing.T) {
	devs := []DeviceInfo{
		{Name: "data", UUID: "CRYPT-LUKS1-0e6c6e564e8e455495d78dc6342abbd7-data", Major: 254, Minor: 0, EventNr: 3},
		{Name: "plain-no-uuid", Major: 254, Minor: 1},
		{Name: "x", UUID: "CRYPT-PLAIN-x", Major: 254, Minor: 300, EventNr: 1},
	}
	got, err := parseNameList(nameList(devs, true))
	require.NoError(t, err)
	assert.Equal(t, devs, got)

	got, err = parseNameList(nameList(nil, true))
	require.NoError(t, err)
	assert.Empty(t, got)

	// Without DM_UUID_FLAG in the request the kernel writes no uuid.
	got, err = parseNameList(nameList(devs, false))
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Empty(t, got[0].UUID)
	assert.Equal(t, "x", got[2].Name)

	bad := nameList(devs, true)
	binary.NativeEndian.PutUint32(bad[8:], 4) // next pointing into the record
	_, err = parseNameList(bad)
	require.ErrorIs(t, err, ErrProtocol)
	_, err = parseNameList(nameList(devs, true)[:10])
	require.ErrorIs(t, err, ErrProtocol)
}

func FuzzParseNameList(f *testing.F) {
	f.Add(nameList([]DeviceInfo{{Name: "a", UUID: "u", Major: 254}, {Name: "bb", Major: 254, Minor: 1}}, true))
	f.Add(nameList(nil, true))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 'a', 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		devs, err := parseNameList(data)
		if err != nil {
			return
		}
		// Re-encoding what was understood must parse to the same thing.
		again, err := parseNameList(nameList(devs, true))
		if len(devs) == 0 {
			return
		}
		require.NoError(t, err)
		for i := range devs {
			if devs[i].Name == "" || containsNUL(devs[i].Name) || containsNUL(devs[i].UUID) {
				return
			}
			assert.Equal(t, devs[i].Name, again[i].Name)
		}
	})
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

func FuzzParseTargets(f *testing.F) {
	f.Add(statusData([]Target{{Length: 8, Type: "crypt", Params: []byte("aes-xts-plain64 00 0 7:0 0")}}), uint32(1))
	f.Add(statusData([]Target{{Length: 8, Type: "linear", Params: []byte("7:0 0")}, {Start: 8, Length: 1, Type: "zero"}}), uint32(2))
	f.Add([]byte{}, uint32(3))
	f.Fuzz(func(t *testing.T, data []byte, count uint32) {
		if count > 1024 {
			count %= 1024
		}
		ts, err := parseTargets(data, count)
		if err != nil {
			return
		}
		require.Len(t, ts, int(count))
		for _, tg := range ts {
			if tg.Type == "" || len(tg.Type) > 15 {
				return
			}
		}
		again, err := parseTargets(statusData(ts), count)
		require.NoError(t, err)
		assert.Equal(t, ts, again)
	})
}
