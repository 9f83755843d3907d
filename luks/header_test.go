package luks

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memDev is an in-memory device of fixed size.
type memDev struct{ b []byte }

func (m *memDev) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, ioEOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, ioEOF
	}
	return n, nil
}

func (m *memDev) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(m.b)) {
		return 0, errShort
	}
	return copy(m.b[off:], p), nil
}

func (m *memDev) Size() int64 { return int64(len(m.b)) }

// formatted returns a freshly formatted in-memory 512-bit xts device ("pass" in slot 0).
func formatted(t testing.TB, opts FormatOptions) (*memDev, *Header, *VolumeKey) {
	t.Helper()
	d := &memDev{b: make([]byte, 4<<20)}
	if opts.ForceIterations == 0 {
		opts.ForceIterations = 1000
	}
	h, vk, err := Format(context.Background(), d, []byte("pass"), opts)
	require.NoError(t, err)
	return d, h, vk
}

func TestLayoutTable(t *testing.T) {
	// Values from cryptsetup 2.6.1 (LUKS1 fact sheet §7).
	for _, tc := range []struct {
		keyBytes           int
		kmo                [8]uint32
		hdr, def, a1, a128 uint32
	}{
		{16, [8]uint32{8, 136, 264, 392, 520, 648, 776, 904}, 1032, 2048, 1032, 1152},
		{32, [8]uint32{8, 264, 520, 776, 1032, 1288, 1544, 1800}, 2056, 4096, 2056, 2176},
		{64, [8]uint32{8, 512, 1016, 1520, 2024, 2528, 3032, 3536}, 4040, 4096, 4040, 4096},
	} {
		l, err := ComputeLayout(tc.keyBytes, 0, false)
		require.NoError(t, err)
		assert.Equal(t, tc.kmo, l.KeyMaterialOffsets)
		assert.Equal(t, tc.hdr, l.HeaderSectors)
		assert.Equal(t, tc.def, l.PayloadOffset)
		for align, want := range map[uint32]uint32{1: tc.a1, 8: tc.a1, 128: tc.a128, 2048: tc.def} {
			l, err := ComputeLayout(tc.keyBytes, align, false)
			require.NoError(t, err)
			assert.Equal(t, want, l.PayloadOffset, "key %d align %d", tc.keyBytes, align)
		}
		l, err = ComputeLayout(tc.keyBytes, 0, true)
		require.NoError(t, err)
		assert.Equal(t, uint32(0), l.PayloadOffset, "detached default")
	}
	l, err := ComputeLayout(64, 3000, false)
	require.NoError(t, err)
	assert.Equal(t, uint32(6000), l.PayloadOffset)
	for _, bad := range []struct {
		kb       int
		align    uint32
		detached bool
	}{{0, 0, false}, {-1, 0, false}, {1 << 20, 0, false}, {64, 1, true}, {64, 4039, true}} {
		_, err := ComputeLayout(bad.kb, bad.align, bad.detached)
		assert.ErrorIs(t, err, ErrInvalidParameter, "%+v", bad)
	}
}

func TestMarshalOffsets(t *testing.T) {
	_, h, _ := formatted(t, FormatOptions{})
	b, err := h.MarshalBinary()
	require.NoError(t, err)
	require.Len(t, b, HeaderSize)
	// Raw example from the fact sheet: magic, version, names, payload 4096, key 64 bytes.
	assert.Equal(t, "4c554b53babe0001", hex.EncodeToString(b[:8]))
	assert.Equal(t, "aes", cString(b[8:40]))
	assert.Equal(t, "xts-plain64", cString(b[0x28:0x48]))
	assert.Equal(t, "sha256", cString(b[0x48:0x68]))
	assert.Equal(t, "0000100000000040", hex.EncodeToString(b[0x68:0x70]))
	assert.Equal(t, "00ac71f3000003e8", hex.EncodeToString(b[0xd0:0xd8]))
	assert.Equal(t, "0000000800000fa0", hex.EncodeToString(b[0xd0+40:0xd0+48]))
	assert.Equal(t, "0000dead00000000", hex.EncodeToString(b[0x100:0x108]))
	assert.Equal(t, make([]byte, HeaderSize-fieldsSize), b[fieldsSize:], "padding is zero")

	// Strings that do not fit are refused rather than silently cut.
	h2 := *h
	h2.CipherMode = strings.Repeat("x", 32)
	_, err = h2.MarshalBinary()
	assert.ErrorIs(t, err, ErrInvalidParameter)
	h2 = *h
	h2.UUID = "a\x00b"
	_, err = h2.MarshalBinary()
	assert.ErrorIs(t, err, ErrInvalidParameter)
}

func TestUnterminatedStrings(t *testing.T) {
	_, h, _ := formatted(t, FormatOptions{})
	b, _ := h.MarshalBinary()
	copy(b[offCipherName:], bytes.Repeat([]byte("c"), 32))
	copy(b[offUUID:], bytes.Repeat([]byte("u"), 40))
	var got Header
	require.NoError(t, got.UnmarshalBinary(b))
	assert.Equal(t, strings.Repeat("c", 31), got.CipherName, "byte 31 is forced to NUL")
	assert.Equal(t, strings.Repeat("u", 39), got.UUID, "byte 39 is forced to NUL")
}

// evilCase mutates a valid header (and optionally the device size).
type evilCase struct {
	name    string
	mutate  func(b []byte)
	size    int64 // device size; 0 = unchanged
	want    error // nil = must load
	slotMsg string
}

func putU32(b []byte, off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
func slotOff(i, field int) int           { return offKeyslots + i*keyslotSize + field }

var evilCases = []evilCase{
	{name: "wrong magic", mutate: func(b []byte) { b[0] = 'X' }, want: ErrNotLUKS},
	{name: "version 2", mutate: func(b []byte) { b[7] = 2 }, want: ErrUnsupportedVersion},
	{name: "version 0", mutate: func(b []byte) { b[7] = 0 }, want: ErrUnsupportedVersion},
	{name: "md5 hash", mutate: func(b []byte) { copy(b[offHashSpec:], "md5\x00\x00\x00") }, want: ErrUnsupportedHash},
	{name: "unknown hash", mutate: func(b []byte) { copy(b[offHashSpec:], "nosuchhash\x00") }, want: ErrUnsupportedHash},
	{name: "upper-case hash", mutate: func(b []byte) { copy(b[offHashSpec:], "SHA256") }},
	{name: "stripes 44944 in disabled slot 3", mutate: func(b []byte) { putU32(b, slotOff(3, 44), 44944) }, want: ErrCorruptKeyslot, slotMsg: "keyslot 3"},
	{name: "key material at sector 1", mutate: func(b []byte) { putU32(b, slotOff(0, 40), 1) }, want: ErrCorruptKeyslot, slotMsg: "keyslot 0"},
	{name: "slot 7 runs into payload", mutate: func(b []byte) { putU32(b, slotOff(7, 40), 3900) }, want: ErrCorruptKeyslot, slotMsg: "keyslot 7"},
	{name: "slot 5 beyond payload", mutate: func(b []byte) { putU32(b, slotOff(5, 40), 5000) }, want: ErrCorruptKeyslot, slotMsg: "keyslot 5"},
	{name: "overlapping slots 1 and 2", mutate: func(b []byte) { putU32(b, slotOff(2, 40), 600) }, want: ErrCorruptKeyslot, slotMsg: "keyslot 1"},
	{name: "device one sector too small", size: 4036*512 - 512, want: ErrDeviceTooSmall},
	{name: "device exactly large enough", size: 4036 * 512},
	{name: "key size 0", mutate: func(b []byte) { putU32(b, offKeyBytes, 0) }, want: ErrCorruptHeader},
	{name: "huge key size", mutate: func(b []byte) { putU32(b, offKeyBytes, 0xffffffff) }, want: ErrCorruptKeyslot},
	{name: "huge key size, detached", mutate: func(b []byte) { putU32(b, offKeyBytes, 0xffff0000); putU32(b, offPayloadOffset, 0) }, want: ErrCorruptKeyslot},
	{name: "payload 0 (detached)", mutate: func(b []byte) { putU32(b, offPayloadOffset, 0) }},
	{name: "unknown cipher loads", mutate: func(b []byte) { copy(b[offCipherName:], "blowfish\x00") }},
	{name: "unterminated cipher mode loads", mutate: func(b []byte) { copy(b[offCipherMode:], bytes.Repeat([]byte("m"), 32)) }},
	{name: "MK iterations 0 loads", mutate: func(b []byte) { putU32(b, offMKIterations, 0) }},
	{name: "MK iterations 10 loads", mutate: func(b []byte) { putU32(b, offMKIterations, 10) }},
	{name: "invalid slot state loads", mutate: func(b []byte) { putU32(b, slotOff(4, 0), 0x12345678) }},
	{name: "1.0.0-style unaligned first slot", mutate: func(b []byte) { putU32(b, slotOff(0, 40), 2) }},
}

// TestEvilHeaders: each damaged header is refused (or accepted) with the right sentinel,
// and real cryptsetup makes the same decision when it loads the same bytes.
func TestEvilHeaders(t *testing.T) {
	d, h, _ := formatted(t, FormatOptions{})
	dir := t.TempDir()
	match := 0
	defer func() {
		t.Logf("%d hostile LUKS1 headers, %d decisions match cryptsetup (luksDump)", len(evilCases), match)
	}()
	for _, tc := range evilCases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := h.MarshalBinary()
			require.NoError(t, err)
			if tc.mutate != nil {
				tc.mutate(b)
			}
			img := append(append([]byte(nil), b...), d.b[HeaderSize:]...)
			if tc.size != 0 {
				img = img[:tc.size]
			}
			_, err = ReadHeader(&memDev{b: img})
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.want)
				if tc.slotMsg != "" {
					assert.Contains(t, err.Error(), tc.slotMsg)
				}
			}
			// Same verdict from cryptsetup 2.6 on the same bytes.
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			require.NoError(t, os.WriteFile(p, img, 0o600))
			r := runCS(t, nil, "luksDump", p)
			if (r.code == 0) == (tc.want == nil) {
				match++
			}
			if tc.want == nil {
				assert.Equal(t, 0, r.code, "cryptsetup accepts it too: %s", r.stderr)
				f, err := os.Open(p)
				require.NoError(t, err)
				defer f.Close()
				hh, err := ReadHeader(f)
				require.NoError(t, err)
				var out bytes.Buffer
				require.NoError(t, hh.Dump(&out, p))
				assert.Equal(t, r.stdout, out.String(), "dump identical")
			} else {
				assert.NotEqual(t, 0, r.code, "cryptsetup refuses it too")
			}
			assert.Equal(t, tc.want == nil, IsLUKS(&memDev{b: img}))
		})
	}
}
