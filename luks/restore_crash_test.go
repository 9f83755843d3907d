package luks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// restoreCase is a device header (old passphrases by slot) and a backup of another
// header with the same geometry (backup passphrases by slot).
type restoreCase struct {
	name     string
	old, bak map[int]string
	oldKeep  int // old passphrases that must keep working before the switch (-1 = all)
	bakKeep  int // backup passphrases that must open after it (-1 = all)

}

func makeHeader(t *testing.T, slots map[int]string) *memDev {
	t.Helper()
	ctx := context.Background()
	d := &memDev{b: make([]byte, 4<<20)}
	first := -1
	for i := 0; i < NumKeyslots; i++ {
		if _, ok := slots[i]; ok {
			first = i
			break
		}
	}
	require.GreaterOrEqual(t, first, 0)
	_, _, err := Format(ctx, d, []byte(slots[first]), FormatOptions{Keyslot: Slot(first), ForceIterations: 1000})
	require.NoError(t, err)
	for i := first + 1; i < NumKeyslots; i++ {
		if p, ok := slots[i]; ok {
			_, _, err := AddKey(ctx, d, []byte(slots[first]), []byte(p), AddKeyOptions{Keyslot: Slot(i), ForceIterations: 1000})
			require.NoError(t, err)
		}
	}
	return d
}

func opens(d ReadWriterAt, pass string) bool {
	_, _, _, err := Unlock(context.Background(), d, []byte(pass), UnlockOptions{})
	return err == nil
}

// TestRestoreHeaderCrashSafe: a restore interrupted at any write — by a crash or by an I/O
// error, with the failing write torn or not — leaves a device that opens with the old
// header's passphrases or with a backup passphrase, and a restore that completes opens
// with every backup passphrase and none of the old. All backup passphrases open from the
// switch on whenever the device has a free slot place for each backup slot that must
// move; on a full device, at least one. The audit found 7 of 13 crash points
// and 6 of 11 faults locked the user out when the backup's key material went first.
func TestRestoreHeaderCrashSafe(t *testing.T) {
	all := map[int]string{}
	for i := 0; i < NumKeyslots; i++ {
		all[i] = fmt.Sprint("old", i)
	}
	for _, tc := range []restoreCase{
		{name: "same-slot-relocated", old: map[int]string{0: "old0"}, bak: map[int]string{0: "bak0"}, oldKeep: -1, bakKeep: -1},
		{name: "overlapping-slots", old: map[int]string{0: "old0", 1: "old1"}, bak: map[int]string{0: "bak0", 1: "bak1", 2: "bak2"}, oldKeep: -1, bakKeep: -1},
		{name: "disjoint-slots", old: map[int]string{0: "old0"}, bak: map[int]string{5: "bak5"}, oldKeep: -1, bakKeep: -1},
		{name: "device-full", old: all, bak: map[int]string{0: "bak0", 1: "bak1"}, oldKeep: 7, bakKeep: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bakDev := makeHeader(t, tc.bak)
			path := filepath.Join(t.TempDir(), "hdr.bak")
			require.NoError(t, BackupHeader(bakDev, path))
			orig := makeHeader(t, tc.old)

			points := 0
			for _, mode := range []crashMode{modeCrash, modeTorn} {
				for k := 1; ; k++ {
					d := newCrashDev(orig.b, mode, k)
					err := RestoreHeader(d, path)
					if err == nil {
						require.Less(t, d.events, k, "success without reaching the fault")
						break
					}
					require.Error(t, err, "event %d", k)
					points++
					oldOK := 0
					for _, p := range tc.old {
						if opens(d, p) {
							oldOK++
						}
					}
					bakOK := 0
					for _, p := range tc.bak {
						if opens(d, p) {
							bakOK++
						}
					}
					wantOld := len(tc.old)
					if tc.oldKeep >= 0 {
						wantOld = tc.oldKeep
					}
					wantBak := len(tc.bak)
					if tc.bakKeep >= 0 {
						wantBak = tc.bakKeep
					}
					assert.True(t, oldOK >= wantOld || bakOK >= wantBak,
						"%s at event %d: %d old and %d backup passphrases open", mode, k, oldOK, bakOK)
				}
			}
			assert.Greater(t, points, 3, "the restore has several write points")

			d := &memDev{b: append([]byte(nil), orig.b...)}
			require.NoError(t, RestoreHeader(d, path))
			for s, p := range tc.bak {
				assert.True(t, opens(d, p), "backup slot %d", s)
			}
			for s, p := range tc.old {
				assert.False(t, opens(d, p), "old slot %d", s)
			}
			got := make([]byte, len(bakDev.b))
			copy(got, d.b)
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			dataLen, _ := backupSize(mustHeader(t, d))
			assert.Equal(t, want[:dataLen], got[:dataLen], "the restored area is the backup, byte for byte")
		})
	}
}

func mustHeader(t *testing.T, r ReadWriterAt) *Header {
	t.Helper()
	h, err := ReadHeader(r)
	require.NoError(t, err)
	return h
}

// l1Slots is a 3 MiB LUKS1 image with the given passphrases at the given slots.
func l1Slots(t *testing.T, slots map[int]string) []byte {
	t.Helper()
	return makeHeader(t, slots).b[:3<<20]
}

// names lists "<prefix><i>" for each i.
func names(prefix string, idx ...int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, fmt.Sprint(prefix, i))
	}
	return out
}

func slotMap(prefix string, idx ...int) map[int]string {
	m := map[int]string{}
	for _, i := range idx {
		m[i] = fmt.Sprint(prefix, i)
	}
	return m
}

// restoreCrashOps are the restore rows of the survival table beyond crashOps' own: LUKS1
// restores that stage a slot at index 6 or 7 (in the header's second sector) or keep old
// slots there.
func restoreCrashOps(t *testing.T) []crashOp {
	l1 := func(name string, old, bak []int) crashOp {
		path := backupOf(t, l1Slots(t, slotMap("bak", bak...)), false)
		return crashOp{name: name, base: l1Slots(t, slotMap("old", old...)), before: names("old", old...),
			after: names("bak", bak...), prop: uuidProp, backup: path,
			run: func(d ReadWriterAt) error { return RestoreHeader(d, path) }}
	}
	return []crashOp{
		l1("luks1 restore {0}<-{7}", []int{0}, []int{7}),
		l1("luks1 restore {0-5}<-{0}", []int{0, 1, 2, 3, 4, 5}, []int{0}),
		l1("luks1 restore {0,7}<-{0}", []int{0, 7}, []int{0}),
		l1("luks1 restore {0-5,7}<-{0}", []int{0, 1, 2, 3, 4, 5, 7}, []int{0}),
		l1("luks1 restore {6,7}<-{6,7}", []int{6, 7}, []int{6, 7}),
	}
}

// TestRestoreHeaderSlots67 runs the rows of restoreCrashOps alone (they are part of
// TestCrashSafeKeyslotOps too).
func TestRestoreHeaderSlots67(t *testing.T) {
	cs := newCSChecker(t)
	var rows []crashRow
	for _, op := range restoreCrashOps(t) {
		row := runCrashOp(t, op, cs)
		rows = append(rows, row)
		if len(row.unsafe) > 0 {
			t.Errorf("%s: %d unsafe states:\n  %s", op.name, len(row.unsafe), strings.Join(row.unsafe, "\n  "))
		}
	}
	logCrashTable(t, rows, cs)
}
