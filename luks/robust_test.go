package luks

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRestoreHostileBackupSize: a 4 KiB "backup" whose header claims a metadata area of
// almost 2 TiB (a detached header with slot 7 at sector 0xFFFFFF00 validates) is refused
// from its file size, before any buffer of the claimed size is allocated, and the device
// is not touched.
func TestRestoreHostileBackupSize(t *testing.T) {
	d, _, _ := formatted(t, FormatOptions{ForceIterations: 1000})
	var h Header
	require.NoError(t, h.UnmarshalBinary(d.b[:HeaderSize]))
	h.PayloadOffset = 0
	h.Keyslots[7].KeyMaterialOffset = 0xFFFFFF00
	require.NoError(t, h.Validate())
	b, err := h.MarshalBinary()
	require.NoError(t, err)
	bak := filepath.Join(t.TempDir(), "hostile.bak")
	require.NoError(t, os.WriteFile(bak, append(b, make([]byte, 4096-len(b))...), 0o600))

	before := append([]byte(nil), d.b...)
	err = RestoreHeader(d, bak)
	require.ErrorIs(t, err, ErrInvalidParameter)
	assert.Contains(t, err.Error(), "backup file")
	assert.Equal(t, before, d.b, "device unchanged")
	_, _, _, err = Unlock(context.Background(), d, []byte("pass"), UnlockOptions{})
	require.NoError(t, err)
}

// sizelessDev is a device whose size BackupHeader cannot learn (no Size method, not a file):
// reads past its bytes hit io.EOF.
type sizelessDev struct{ b []byte }

func (d sizelessDev) ReadAt(p []byte, off int64) (int, error) {
	return (&memDev{b: d.b}).ReadAt(p, off)
}

// TestBackupHostileHeaderSize: a header on a device of unknown size claiming a metadata
// area of almost 2 TiB makes BackupHeader fail with a read error after bounded memory,
// leaving no file behind (it used to allocate the claimed size at once: a fatal
// out-of-memory crash).
func TestBackupHostileHeaderSize(t *testing.T) {
	d, _, _ := formatted(t, FormatOptions{ForceIterations: 1000})
	var h Header
	require.NoError(t, h.UnmarshalBinary(d.b[:HeaderSize]))
	h.PayloadOffset = 0
	h.Keyslots[7].KeyMaterialOffset = 0xFFFFFF00
	b, err := h.MarshalBinary()
	require.NoError(t, err)
	copy(d.b, b)
	bak := filepath.Join(t.TempDir(), "b.bak")
	err = BackupHeader(sizelessDev{d.b}, bak)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "reading LUKS header area")
	_, statErr := os.Stat(bak)
	assert.ErrorIs(t, statErr, os.ErrNotExist, "no partial backup file left")
}

// TestBackupUnusedAreaOffsetWrap: the bytes between the header and sector 8 are zeroed in a
// backup only when slot 0 really starts at sector 8. A slot-0 offset of 2^23+8 sectors must
// not count as sector 8 through 32-bit wrap-around (which zeroed another slot's key
// material lying in that area).
func TestBackupUnusedAreaOffsetWrap(t *testing.T) {
	src := make([]byte, 8192)
	for i := range src {
		src[i] = byte(i%251 + 1)
	}
	for _, tc := range []struct {
		name      string
		slot0     uint32
		wantClear bool
	}{
		{"slot 0 at sector 8", 8, true},
		{"slot 0 at 2^23+8 sectors", 1<<23 + 8, false},
		{"slot 0 at sector 2", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Header
			h.Keyslots[0].KeyMaterialOffset = tc.slot0
			var out bytesWriter
			require.NoError(t, copyMetadata(&out, &memDev{b: src}, &h, int64(len(src)), int64(len(src))))
			require.Len(t, out.b, len(src))
			assert.Equal(t, src[:HeaderSize], out.b[:HeaderSize])
			assert.Equal(t, src[alignKeyslots:], out.b[alignKeyslots:])
			if tc.wantClear {
				assert.Equal(t, make([]byte, alignKeyslots-HeaderSize), out.b[HeaderSize:alignKeyslots])
			} else {
				assert.Equal(t, src[HeaderSize:alignKeyslots], out.b[HeaderSize:alignKeyslots])
			}
		})
	}
}

type bytesWriter struct{ b []byte }

func (w *bytesWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// TestVolumeConcurrentDisjointWrites: io.WriterAt lets clients write non-overlapping ranges
// in parallel. Ranges that share a 512-byte sector go through read-modify-write of that
// sector; without serialisation one writer's update was lost.
func TestVolumeConcurrentDisjointWrites(t *testing.T) {
	// One spec per IV generator family and cipher, so that a cipher keeping per-call state
	// shows up as corrupt data here (and as a race under -race).
	for _, spec := range []string{"aes-cbc-essiv:sha256", "aes-xts-plain64", "twofish-cbc-benbi", "serpent-lrw-plain64", "aes-cbc-eboiv"} {
		t.Run(spec, func(t *testing.T) { testVolumeConcurrentDisjointWrites(t, spec) })
	}
}

func testVolumeConcurrentDisjointWrites(t *testing.T, spec string) {
	dir := t.TempDir()
	f := openRW(t, newImage(t, dir, "c.img", 3<<20))
	ks := 256
	switch {
	case strings.Contains(spec, "xts"):
		ks = 512
	case strings.Contains(spec, "lrw"):
		ks = 384 // 256-bit cipher key + 128-bit tweak key
	}
	h, vk, err := Format(context.Background(), f, []byte("p"), FormatOptions{ForceIterations: 1000, Cipher: spec, KeySize: ks})
	require.NoError(t, err)
	v, err := NewVolume(f, h, vk)
	require.NoError(t, err)
	defer v.Close()

	const writers, piece, sectors, rounds = 8, SectorSize / 8, 16, 20
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, piece)
			for r := 0; r < rounds; r++ {
				for s := 0; s < sectors; s++ {
					for i := range p {
						p[i] = byte(g*rounds + r + 1)
					}
					if _, err := v.WriteAt(p, int64(s*SectorSize+g*piece)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	// Concurrent readers exercise parallel decryption (run with -race).
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, sectors*SectorSize+100)
			for i := 0; i < rounds; i++ {
				if _, err := v.ReadAt(buf, int64(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := make([]byte, sectors*SectorSize)
	_, err = v.ReadAt(got, 0)
	require.NoError(t, err)
	for s := 0; s < sectors; s++ {
		for g := 0; g < writers; g++ {
			want := bytes.Repeat([]byte{byte(g*rounds + rounds)}, piece)
			off := s*SectorSize + g*piece
			require.Equal(t, want, got[off:off+piece], "sector %d, writer %d", s, g)
		}
	}
}

// retainingWriter keeps the slices it is given (which io.Writer forbids) so a test can see
// what stays in the writer's buffers after DumpVolumeKey returns.
type retainingWriter struct {
	text bytes.Buffer
	held [][]byte
}

func (w *retainingWriter) Write(p []byte) (int, error) {
	w.held = append(w.held, p)
	return w.text.Write(p)
}

// TestDumpVolumeKeyLeavesNoCopy: the key's hex text is built in a buffer that is wiped
// once written; it used to stay in a bufio buffer (Reset does not clear it).
func TestDumpVolumeKeyLeavesNoCopy(t *testing.T) {
	_, h, vk := formatted(t, FormatOptions{ForceIterations: 1000})
	var w retainingWriter
	require.NoError(t, DumpVolumeKey(&w, "/dev/x", h, vk))
	hexKey := fmt.Sprintf("%02x ", vk.Bytes()[0]) + fmt.Sprintf("%02x ", vk.Bytes()[1])
	require.Contains(t, w.text.String(), "MK dump:\t"+hexKey, "the dump itself carries the key")
	require.NotEmpty(t, w.held)
	for _, p := range w.held {
		assert.NotContains(t, string(p), hexKey, "key text left in a buffer after the dump")
	}
}

// TestFormatOptionsRedactVolumeKey: FormatOptions can carry a volume key; printing the
// options (a debug log line, an error wrapping them) must not print it.
func TestFormatOptionsRedactVolumeKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	o := FormatOptions{Cipher: "aes-cbc-essiv:sha256", KeySize: 256, VolumeKey: key}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		for _, arg := range []any{o, &o} {
			s := fmt.Sprintf(verb, arg)
			assert.NotContains(t, strings.ToLower(s), "abab", verb)
			assert.NotContains(t, s, "171 171", verb)
			assert.NotContains(t, s, `\xab`, verb)
		}
	}
	assert.Contains(t, fmt.Sprintf("%+v", o), "Cipher:aes-cbc-essiv:sha256")
	assert.Contains(t, fmt.Sprintf("%+v", o), "redacted")
	assert.Equal(t, bytes.Repeat([]byte{0xab}, 32), o.VolumeKey, "printing does not touch the key")
}

// TestFormatOptionsMirror keeps the printing mirror of FormatOptions in step with it.
func TestFormatOptionsMirror(t *testing.T) {
	a, b := reflect.TypeOf(FormatOptions{}), reflect.TypeOf(formatOptions{})
	require.Equal(t, a.NumField(), b.NumField())
	for i := 0; i < a.NumField(); i++ {
		assert.Equal(t, a.Field(i).Name, b.Field(i).Name)
	}
}

// TestZeroSlotOptions pins the documented zero-value semantics: a nil Keyslot means any
// slot, so zero UnlockOptions try every enabled slot, zero AddKeyOptions take the first free
// slot, and ChangeKey with zero AddKeyOptions writes the new passphrase to a free slot
// before destroying the old one, while Slot(n) restricts each to slot n (ChangeKey then
// rewrites slot n in place, as cryptsetup -S n does).
func TestZeroSlotOptions(t *testing.T) {
	ctx := context.Background()
	d, _, _ := formatted(t, FormatOptions{ForceIterations: 1000}) // "pass" in slot 0
	h, s, err := AddKey(ctx, d, []byte("pass"), []byte("one"), AddKeyOptions{ForceIterations: 1000})
	require.NoError(t, err)
	require.Equal(t, 1, s, "zero AddKeyOptions take the first free slot")
	onDisk, err := ReadHeader(d)
	require.NoError(t, err)
	assert.Equal(t, onDisk, h, "AddKey returns the header as it is now on disk")
	assert.True(t, h.Keyslots[1].Enabled())

	_, _, slot, err := Unlock(ctx, d, []byte("one"), UnlockOptions{})
	require.NoError(t, err, "zero UnlockOptions try every enabled slot")
	require.Equal(t, 1, slot)
	_, _, _, err = Unlock(ctx, d, []byte("one"), UnlockOptions{Keyslot: Slot(0)})
	require.ErrorIs(t, err, ErrWrongPassphrase, "Slot(0) tries slot 0 only")
	_, _, slot, err = Unlock(ctx, d, []byte("one"), UnlockOptions{Keyslot: Slot(1)})
	require.NoError(t, err)
	require.Equal(t, 1, slot)

	_, _, err = AddKey(ctx, d, []byte("pass"), []byte("two"), AddKeyOptions{Keyslot: Slot(0), ForceIterations: 1000})
	require.ErrorIs(t, err, ErrInvalidParameter, "Slot(0) names the occupied slot 0")
	for _, bad := range []int{-1, NumKeyslots} {
		_, _, err = AddKey(ctx, d, []byte("pass"), []byte("two"), AddKeyOptions{Keyslot: Slot(bad), ForceIterations: 1000})
		require.ErrorIs(t, err, ErrInvalidParameter, "AddKey Slot(%d)", bad)
		_, _, _, err = Unlock(ctx, d, []byte("pass"), UnlockOptions{Keyslot: Slot(bad)})
		require.ErrorIs(t, err, ErrInvalidParameter, "Unlock Slot(%d)", bad)
		_, _, err = ChangeKey(ctx, d, []byte("pass"), []byte("two"), AddKeyOptions{Keyslot: Slot(bad), ForceIterations: 1000})
		require.ErrorIs(t, err, ErrInvalidParameter, "ChangeKey Slot(%d)", bad)
	}

	// Zero AddKeyOptions: "one" (slot 1) moves to the first free slot 2; slot 1 is destroyed
	// only after slot 2 is written.
	o, n, err := ChangeKey(ctx, d, []byte("one"), []byte("p2"), AddKeyOptions{ForceIterations: 1000})
	require.NoError(t, err)
	require.Equal(t, [2]int{1, 2}, [2]int{o, n}, "zero AddKeyOptions: any old slot, new slot first")
	h, err = ReadHeader(d)
	require.NoError(t, err)
	assert.True(t, h.Keyslots[0].Enabled())
	assert.False(t, h.Keyslots[1].Enabled(), "old slot destroyed")
	assert.True(t, h.Keyslots[2].Enabled())
	_, _, _, err = Unlock(ctx, d, []byte("one"), UnlockOptions{})
	require.ErrorIs(t, err, ErrWrongPassphrase)

	// Slot(n): only slot n is tried for the old passphrase, and it is rewritten in place.
	_, _, err = ChangeKey(ctx, d, []byte("p2"), []byte("p3"), AddKeyOptions{Keyslot: Slot(0), ForceIterations: 1000})
	require.ErrorIs(t, err, ErrWrongPassphrase, "Slot(0) tries slot 0 only")
	o, n, err = ChangeKey(ctx, d, []byte("p2"), []byte("p3"), AddKeyOptions{Keyslot: Slot(2), ForceIterations: 1000})
	require.NoError(t, err)
	require.Equal(t, [2]int{2, 2}, [2]int{o, n}, "Slot(2): in place")
	_, _, slot, err = Unlock(ctx, d, []byte("p3"), UnlockOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, slot)
}

// TestZeroFormatOptionsSlot: a nil FormatOptions.Keyslot puts the first key in slot 0,
// Slot(n) in slot n, and an out-of-range slot is refused.
func TestZeroFormatOptionsSlot(t *testing.T) {
	for _, tc := range []struct {
		slot *int
		want int
	}{{nil, 0}, {Slot(0), 0}, {Slot(7), 7}} {
		_, h, _ := formatted(t, FormatOptions{Keyslot: tc.slot})
		for i, k := range h.Keyslots {
			assert.Equal(t, i == tc.want, k.Enabled(), "slot %d", i)
		}
	}
	for _, bad := range []int{-1, NumKeyslots} {
		d := &memDev{b: make([]byte, 4<<20)}
		_, _, err := Format(context.Background(), d, []byte("pass"), FormatOptions{ForceIterations: 1000, Keyslot: Slot(bad)})
		require.ErrorIs(t, err, ErrInvalidParameter, "Slot(%d)", bad)
	}
	assert.Contains(t, fmt.Sprintf("%+v", FormatOptions{Keyslot: Slot(5)}), "Keyslot:5")
	assert.Contains(t, fmt.Sprintf("%+v", FormatOptions{}), "Keyslot:<nil>")
}

// sizelessRWDev is a read-write device whose size the package cannot learn.
type sizelessRWDev struct{ m *memDev }

func (d sizelessRWDev) ReadAt(p []byte, off int64) (int, error)  { return d.m.ReadAt(p, off) }
func (d sizelessRWDev) WriteAt(p []byte, off int64) (int, error) { return d.m.WriteAt(p, off) }

// TestKillSlotHostileKeySize: KillSlot needs no passphrase, so nothing bounded the key size
// before the wipe buffer (one slot's key material) was allocated; a header naming a 16 MiB
// key (64 GB of key material per slot, valid on a device of unknown size) crashed the
// process with a fatal out-of-memory error. It is refused like every other key-slot
// operation refuses it, and nothing is written.
func TestKillSlotHostileKeySize(t *testing.T) {
	d, _, _ := formatted(t, FormatOptions{ForceIterations: 1000})
	var h Header
	require.NoError(t, h.UnmarshalBinary(d.b[:HeaderSize]))
	h.PayloadOffset = 0
	h.KeyBytes = 1 << 24
	secs := uint32(h.AFSectors())
	for i := range h.Keyslots {
		h.Keyslots[i].KeyMaterialOffset = 8 + uint32(i)*secs
	}
	require.NoError(t, h.Validate())
	b, err := h.MarshalBinary()
	require.NoError(t, err)
	copy(d.b, b)
	before := append([]byte(nil), d.b...)
	err = KillSlot(sizelessRWDev{d}, 0)
	require.ErrorIs(t, err, ErrInvalidKeySize)
	assert.Equal(t, before, d.b, "device unchanged")
}

// TestVolumeKeyRedactsAsValue: a VolumeKey prints redacted through a pointer, dereferenced,
// and as a field (exported or not) of another struct. The audit printed raw key bytes with
// fmt.Sprintf("%v", *vk) when the redacting methods had pointer receivers.
func TestVolumeKeyRedactsAsValue(t *testing.T) {
	vk := NewVolumeKey(bytes.Repeat([]byte{0xab}, 32))
	type holder struct {
		Key VolumeKey
		Ptr *VolumeKey
	}
	h := holder{Key: *vk, Ptr: vk}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		for _, arg := range []any{vk, *vk, h, &h, []VolumeKey{*vk}, map[string]VolumeKey{"k": *vk}} {
			s := fmt.Sprintf(verb, arg)
			assert.NotContains(t, strings.ToLower(s), "abab", "%s of %T", verb, arg)
			assert.NotContains(t, s, "171 171", "%s of %T", verb, arg)
			assert.NotContains(t, s, `\xab`, "%s of %T", verb, arg)
		}
	}
	assert.Contains(t, fmt.Sprintf("%v", *vk), "VolumeKey(32 bytes, redacted)")
}
