package luks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recDev records write offsets and can fail the n-th write (a simulated crash).
type recDev struct {
	memDev
	writes []int64
	failAt int // 1-based; 0 = never
}

var errCrash = errors.New("simulated crash")

func (r *recDev) WriteAt(p []byte, off int64) (int, error) {
	if r.failAt > 0 && len(r.writes)+1 >= r.failAt {
		return 0, errCrash
	}
	r.writes = append(r.writes, off)
	return r.memDev.WriteAt(p, off)
}

func opts1000(slot *int) AddKeyOptions { return AddKeyOptions{Keyslot: slot, ForceIterations: 1000} }

func TestKeyslotStateAndErrors(t *testing.T) {
	ctx := context.Background()
	d, _, vk := formatted(t, FormatOptions{})
	snap := func() []byte { return append([]byte(nil), d.b...) }

	// Failures leave the device byte-identical.
	before := snap()
	_, _, err := AddKey(ctx, d, []byte("wrong"), []byte("x"), opts1000(nil))
	assert.ErrorIs(t, err, ErrWrongPassphrase)
	_, _, err = AddKey(ctx, d, []byte("pass"), []byte("x"), opts1000(Slot(0)))
	assert.ErrorIs(t, err, ErrInvalidParameter, "slot 0 is active")
	_, _, err = AddKey(ctx, d, []byte("pass"), []byte("x"), opts1000(Slot(8)))
	assert.ErrorIs(t, err, ErrInvalidParameter)
	_, _, err = AddKey(ctx, d, []byte("pass"), []byte("x"), AddKeyOptions{ForceIterations: 999})
	assert.ErrorIs(t, err, ErrInvalidParameter)
	_, _, err = AddKeyByVolumeKey(ctx, d, NewVolumeKey(make([]byte, 64)), []byte("x"), opts1000(nil))
	assert.ErrorIs(t, err, ErrVolumeKeyMismatch)
	_, err = RemoveKey(ctx, d, []byte("pass"), false)
	assert.ErrorIs(t, err, ErrLastKeyslot)
	assert.Contains(t, err.Error(), "keyslot 0")
	_, err = RemoveKey(ctx, d, []byte("wrong"), true)
	assert.ErrorIs(t, err, ErrWrongPassphrase)
	_, _, err = ChangeKey(ctx, d, []byte("wrong"), []byte("x"), opts1000(nil))
	assert.ErrorIs(t, err, ErrWrongPassphrase)
	assert.ErrorIs(t, KillSlot(d, 3), ErrKeyslotInactive)
	assert.ErrorIs(t, KillSlot(d, 9), ErrInvalidParameter)
	_, _, _, err = Unlock(ctx, d, []byte("pass"), UnlockOptions{Keyslot: Slot(2)})
	assert.ErrorIs(t, err, ErrKeyslotInactive)
	_, _, _, err = Unlock(ctx, d, []byte("pass"), UnlockOptions{Keyslot: Slot(8)})
	assert.ErrorIs(t, err, ErrInvalidParameter)
	assert.ErrorIs(t, SetUUID(d, "not-a-uuid"), ErrInvalidParameter)
	require.Equal(t, before, d.b, "failed operations do not modify the device")

	// Fill all slots by volume key, then no slot is free.
	for i := 1; i < NumKeyslots; i++ {
		_, s, err := AddKeyByVolumeKey(ctx, d, vk, []byte(fmt.Sprint("p", i)), opts1000(nil))
		require.NoError(t, err)
		require.Equal(t, i, s)
	}
	before = snap()
	_, _, err = AddKey(ctx, d, []byte("pass"), []byte("x"), opts1000(nil))
	assert.ErrorIs(t, err, ErrNoFreeKeyslot)
	require.Equal(t, before, d.b)

	// ChangeKey with no free slot rewrites in place.
	o, n, err := ChangeKey(ctx, d, []byte("p5"), []byte("new5"), opts1000(nil))
	require.NoError(t, err)
	assert.Equal(t, [2]int{5, 5}, [2]int{o, n})
	_, _, s, err := Unlock(ctx, d, []byte("new5"), UnlockOptions{})
	require.NoError(t, err)
	assert.Equal(t, 5, s)
	_, _, _, err = Unlock(ctx, d, []byte("p5"), UnlockOptions{})
	assert.ErrorIs(t, err, ErrWrongPassphrase)

	// ChangeKey with an explicit slot stays in that slot; the wrong slot refuses.
	_, _, err = ChangeKey(ctx, d, []byte("p3"), []byte("x"), opts1000(Slot(2)))
	assert.ErrorIs(t, err, ErrWrongPassphrase)
	require.NoError(t, KillSlot(d, 2))
	o, n, err = ChangeKey(ctx, d, []byte("p3"), []byte("new3"), opts1000(Slot(3)))
	require.NoError(t, err)
	assert.Equal(t, [2]int{3, 3}, [2]int{o, n}, "explicit slot: in place even with slot 2 free")

	// RemoveKey of a non-last slot.
	s, err = RemoveKey(ctx, d, []byte("new5"), false)
	require.NoError(t, err)
	assert.Equal(t, 5, s)
	h, err := ReadHeader(d)
	require.NoError(t, err)
	k := h.Keyslots[5]
	assert.Equal(t, Keyslot{Active: KeyDisabled, KeyMaterialOffset: k.KeyMaterialOffset, Stripes: Stripes}, k,
		"disabled slot: iterations 0, salt zeroed, offset and stripes kept")
}

func TestRemoveLastKeyslotForced(t *testing.T) {
	ctx := context.Background()
	d, _, _ := formatted(t, FormatOptions{})
	s, err := RemoveKey(ctx, d, []byte("pass"), true)
	require.NoError(t, err)
	assert.Equal(t, 0, s)
	_, _, _, err = Unlock(ctx, d, []byte("pass"), UnlockOptions{})
	assert.ErrorIs(t, err, ErrKeyslotInactive)
	assert.True(t, IsLUKS(d), "the header itself stays valid")
}

// TestWriteOrder checks cryptsetup's write order and that the wipe touches only the slot's
// own area: neighbours and the gap after the key material (where LUKSMeta lives) survive.
func TestWriteOrder(t *testing.T) {
	ctx := context.Background()
	d := &recDev{memDev: memDev{b: make([]byte, 4<<20)}}
	h, vk, err := Format(ctx, d, []byte("pass"), FormatOptions{ForceIterations: 1000, Keyslot: Slot(1)})
	require.NoError(t, err)
	kmo1 := int64(h.Keyslots[1].KeyMaterialOffset) * 512
	w := d.writes
	// zero wipe from 0, random fill of 8 areas, header, slot 1 material, header.
	require.GreaterOrEqual(t, len(w), 11)
	assert.Equal(t, int64(0), w[0])
	assert.Equal(t, []int64{0, kmo1, 0}, w[len(w)-3:])

	// LUKSMeta-style data in the gap between the last slot and the payload.
	gapStart := int64(h.MetadataSectors()) * 512
	for i := gapStart; i < h.PayloadOffsetBytes(); i++ {
		d.b[i] = 0x5a
	}
	_, _, err = AddKeyByVolumeKey(ctx, d, vk, []byte("p2"), opts1000(Slot(2)))
	require.NoError(t, err)
	before := append([]byte(nil), d.b...)
	d.writes = nil
	require.NoError(t, KillSlot(d, 2))
	kmo2 := int64(h.Keyslots[2].KeyMaterialOffset) * 512
	area := int64(h.AFSectors()) * 512
	assert.Equal(t, []int64{kmo2, 0}, d.writes, "one random pass (not a rotational disk), then the header")
	assert.NotEqual(t, before[kmo2:kmo2+area], d.b[kmo2:kmo2+area], "slot area wiped")
	assert.Equal(t, before[HeaderSize:kmo2], d.b[HeaderSize:kmo2], "everything before the slot area untouched")
	assert.Equal(t, before[kmo2+area:], d.b[kmo2+area:], "everything after it (incl. the LUKSMeta gap) untouched")
	assert.Equal(t, bytes.Repeat([]byte{0x5a}, int(h.PayloadOffsetBytes()-gapStart)), d.b[gapStart:h.PayloadOffsetBytes()])

	// AddKey: material first, then header.
	d.writes = nil
	_, _, err = AddKey(ctx, d, []byte("pass"), []byte("p4"), opts1000(Slot(4)))
	require.NoError(t, err)
	assert.Equal(t, []int64{int64(h.Keyslots[4].KeyMaterialOffset) * 512, 0}, d.writes)
}

// TestChangeKeyCrash: whichever write a crash interrupts, the device still opens with the
// old or the new passphrase when a free slot exists (cryptsetup's new-slot-first order).
func TestChangeKeyCrash(t *testing.T) {
	ctx := context.Background()
	for failAt := 1; failAt <= 44; failAt++ {
		d := &recDev{memDev: memDev{b: make([]byte, 4<<20)}}
		_, _, err := Format(ctx, d, []byte("old"), FormatOptions{ForceIterations: 1000})
		require.NoError(t, err)
		d.writes, d.failAt = nil, failAt
		_, _, err = ChangeKey(ctx, d, []byte("old"), []byte("new"), opts1000(nil))
		d.failAt = 0
		_, _, _, errOld := Unlock(ctx, d, []byte("old"), UnlockOptions{})
		_, _, _, errNew := Unlock(ctx, d, []byte("new"), UnlockOptions{})
		assert.True(t, errOld == nil || errNew == nil, "crash at write %d (change err %v): old %v, new %v", failAt, err, errOld, errNew)
	}
}

func TestCipherNull(t *testing.T) {
	ctx := context.Background()
	d := &memDev{b: make([]byte, 4<<20)}
	_, _, err := Format(ctx, d, []byte("x"), FormatOptions{Cipher: "cipher_null", ForceIterations: 1000})
	require.ErrorIs(t, err, ErrInvalidParameter)
	require.Equal(t, make([]byte, len(d.b)), d.b, "refused before any write")
	h, vk, err := Format(ctx, d, nil, FormatOptions{Cipher: "cipher_null", ForceIterations: 1000})
	require.NoError(t, err)
	assert.Equal(t, "ecb", h.CipherMode)
	_, _, s, err := Unlock(ctx, d, []byte{}, UnlockOptions{})
	require.NoError(t, err)
	assert.Equal(t, 0, s)
	// A slot whose digest matches with a non-empty passphrase (a swapped header) is refused.
	sc, err := prepare(h, 0)
	require.NoError(t, err)
	u, err := sealKeyslot(ctx, h, sc, 1, []byte("typed"), vk.Bytes(), 1000, randOr(nil))
	require.NoError(t, err)
	require.NoError(t, commitKeyslot(d, h, u))
	_, _, _, err = Unlock(ctx, d, []byte("typed"), UnlockOptions{Keyslot: Slot(1)})
	assert.ErrorIs(t, err, ErrWrongPassphrase)
	_, _, err = AddKey(ctx, d, nil, []byte("x"), opts1000(nil))
	assert.ErrorIs(t, err, ErrInvalidParameter)
}

// TestWorkLimit: slots above the limit are not tried; hostile counts are cancellable.
func TestWorkLimit(t *testing.T) {
	ctx := context.Background()
	d, _, vk := formatted(t, FormatOptions{ForceIterations: 5000})
	_, _, err := AddKeyByVolumeKey(ctx, d, vk, []byte("pass"), opts1000(Slot(1)))
	require.NoError(t, err)
	_, _, s, err := Unlock(ctx, d, []byte("pass"), UnlockOptions{MaxIterations: 2000})
	require.NoError(t, err)
	assert.Equal(t, 1, s, "slot 0 (5000 iterations) skipped")
	_, _, _, err = Unlock(ctx, d, []byte("pass"), UnlockOptions{Keyslot: Slot(0), MaxIterations: 2000})
	assert.ErrorIs(t, err, ErrWorkLimit)
	assert.Contains(t, err.Error(), "keyslot 0")
	_, _, _, err = Unlock(ctx, d, []byte("pass"), UnlockOptions{MaxIterations: 500})
	assert.ErrorIs(t, err, ErrWorkLimit, "MK digest iterations (1000) above the limit")

	// A hostile header: 2^31-1 iterations of a two-block derivation (512-bit key, sha256).
	// The default limit refuses it at once; with the highest limit the context stops it.
	h, err := ReadHeader(d)
	require.NoError(t, err)
	require.Equal(t, uint32(64), h.KeyBytes)
	h.Keyslots[0].Iterations = ^uint32(0) / 2
	h.Keyslots[1] = Keyslot{Active: KeyDisabled, KeyMaterialOffset: h.Keyslots[1].KeyMaterialOffset, Stripes: Stripes}
	require.NoError(t, writeHeader(d, h))
	_, _, _, err = Unlock(ctx, d, []byte("pass"), UnlockOptions{})
	assert.ErrorIs(t, err, ErrWorkLimit)
	cctx, cancel := context.WithCancel(ctx)
	go cancel()
	_, _, _, err = Unlock(cctx, d, []byte("pass"), UnlockOptions{MaxIterations: ^uint32(0)})
	assert.ErrorIs(t, err, context.Canceled)

	// A context cancelled before the call stops even cheap slots.
	_, _, _, err = Unlock(cctx, d, []byte("pass"), UnlockOptions{})
	assert.ErrorIs(t, err, ErrWorkLimit, "limit checked first")
	h.Keyslots[0].Iterations = 1000
	require.NoError(t, writeHeader(d, h))
	_, _, _, err = Unlock(cctx, d, []byte("pass"), UnlockOptions{})
	assert.ErrorIs(t, err, context.Canceled)

	// An enabled slot with 0 iterations is corrupt; MK digest iterations 0 too.
	h.Keyslots[0].Iterations = 0
	require.NoError(t, writeHeader(d, h))
	_, _, _, err = Unlock(ctx, d, []byte("pass"), UnlockOptions{})
	assert.ErrorIs(t, err, ErrCorruptKeyslot)
	h.MKDigestIterations = 0
	require.NoError(t, writeHeader(d, h))
	_, _, _, err = Unlock(ctx, d, []byte("pass"), UnlockOptions{})
	assert.ErrorIs(t, err, ErrCorruptHeader)
}

// TestLowMKIterations: readers accept MK digest counts below 1000 (cryptsetup 1.0 used 10).
func TestLowMKIterations(t *testing.T) {
	ctx := context.Background()
	d, h, vk := formatted(t, FormatOptions{Hash: "sha1"})
	h.MKDigestIterations = 10
	sc, err := prepare(h, 0)
	require.NoError(t, err)
	dg, err := pbkdf2Key(ctx, sc.newHash, vk.Bytes(), h.MKDigestSalt[:], 10, DigestSize)
	require.NoError(t, err)
	copy(h.MKDigest[:], dg)
	require.NoError(t, writeHeader(d, h))
	_, got, _, err := Unlock(ctx, d, []byte("pass"), UnlockOptions{})
	require.NoError(t, err)
	assert.Equal(t, vk.Bytes(), got.Bytes())
}

// patDev records the content of every write.
type patDev struct {
	memDev
	passes [][]byte
}

func (p *patDev) WriteAt(b []byte, off int64) (int, error) {
	p.passes = append(p.passes, append([]byte(nil), b...))
	return p.memDev.WriteAt(b, off)
}

// TestWipeSpecial: cryptsetup's pattern set for rotational disks: 5 random passes, 27
// Gutmann patterns (whole 3-byte repetitions only), 6 random, 0xFF, and a final random pass.
func TestWipeSpecial(t *testing.T) {
	d := &patDev{memDev: memDev{b: make([]byte, 4096)}}
	const n = 1000 // not a multiple of 3: the last byte keeps the previous pass
	require.NoError(t, wipeSpecial(d, 512, n, randOr(nil)))
	require.Len(t, d.passes, 40)
	assert.Equal(t, bytes.Repeat([]byte{0x55}, 999), d.passes[5][:999])
	assert.Equal(t, d.passes[4][999], d.passes[5][999], "tail byte carried over")
	assert.Equal(t, bytes.Repeat([]byte{0x92, 0x49, 0x24}, 333), d.passes[7][:999])
	assert.Equal(t, bytes.Repeat([]byte{0xdb, 0x6d, 0xb6}, 333), d.passes[31][:999])
	assert.Equal(t, bytes.Repeat([]byte{0xff}, n), d.passes[38])
	assert.NotEqual(t, d.passes[38], d.passes[39], "final random pass")
	assert.Equal(t, d.passes[39], d.b[512:512+n])
	assert.Equal(t, make([]byte, 512), d.b[:512], "outside the area untouched")
	assert.False(t, isRotational(d), "not a block device")
}

// TestWorkLimitCountsBlocks: the work limit bounds iterations times output blocks. A
// 2000-byte cipher_null key with sha1 is 100 PBKDF2 blocks, so 1000 iterations cost 100,000
// HMACs; the audit found such headers (4000 bytes, 200 blocks) accepted with ~1.5 h of work
// per slot at the default limit, which counted iterations only.
func TestWorkLimitCountsBlocks(t *testing.T) {
	// The deadline only turns the old behaviour (hours of PBKDF2) into a failure instead of
	// a hang; every assertion is about the error returned.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := os.Create(filepath.Join(t.TempDir(), "null.img"))
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Truncate(80<<20))
	h, _, err := Format(ctx, f, nil, FormatOptions{Cipher: "cipher_null", Hash: "sha1", KeySize: 2000 * 8, ForceIterations: 1000})
	require.NoError(t, err)
	require.Equal(t, uint32(2000), h.KeyBytes)
	_, _, s, err := Unlock(ctx, f, nil, UnlockOptions{MaxIterations: 100_000})
	require.NoError(t, err, "100 blocks x 1000 iterations is exactly the limit")
	assert.Equal(t, 0, s)
	_, _, _, err = Unlock(ctx, f, nil, UnlockOptions{MaxIterations: 99_999})
	require.ErrorIs(t, err, ErrWorkLimit)
	assert.Contains(t, err.Error(), "keyslot 0: ")
	assert.Contains(t, err.Error(), "100000 block-iterations (1000 iterations), limit 99999")

	// A hostile header below the old iteration limit: refused before any derivation.
	h.Keyslots[0].Iterations = DefaultMaxIterations / 2
	require.NoError(t, writeHeader(f, h))
	_, _, _, err = Unlock(ctx, f, nil, UnlockOptions{})
	require.ErrorIs(t, err, ErrWorkLimit)

	// cipher_null accepts only the empty passphrase; a typed one is refused without
	// deriving anything, even from a slot that is within the limit but costly.
	h.Keyslots[0].Iterations = DefaultMaxIterations / 100
	require.NoError(t, writeHeader(f, h))
	_, _, _, err = Unlock(ctx, f, []byte("typed"), UnlockOptions{})
	require.ErrorIs(t, err, ErrWrongPassphrase)
}
