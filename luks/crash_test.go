package luks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// crashMode is what happens at a crashDev's chosen event.
type crashMode int

const (
	modeCount    crashMode = iota // nothing fails: count the events
	modeCrash                     // the event and every later one never reach the disk
	modeTorn                      // as modeCrash, but the write reaches the disk in part
	modeFault                     // the event fails with EIO and nothing of it is written; later ones go through
	modeTailTorn                  // as modeTorn, but the write reaches the disk but for its first sector
	modeLost                      // as modeCrash, and the writes since the last sync are lost too
	modeReorder                   // the crashing write lands whole, the unsynced writes before it are lost
)

func (m crashMode) String() string {
	return [...]string{"count", "crash", "torn", "EIO", "tail-torn", "crash-unsynced", "reordered"}[m]
}

// errCrashed is what a crashed device answers: the process that would see it is gone.
var errCrashed = errors.New("simulated crash: the device is gone")

// crashDev is an in-memory device that fails at its at-th event (1-based), an event being
// a WriteAt or a Sync. A crash loses the event and every later one; a torn crash writes
// the first half of the failing write rounded down to whole 512-byte sectors (sectors are
// atomic, as cryptsetup assumes; a write of one sector or less is never torn); a tail-torn
// crash writes all of the failing write but its first sector (a disk may reorder the
// sectors of one write); a fault
// returns EIO for that one event and lets the caller carry on. Syncs are modelled: an
// unsynced crash also loses every write since the last Sync, and a reordered crash lands
// the failing write whole but loses the unsynced writes before it (a disk's write cache
// may reach the platter in any order until a flush), so a missing ordering sync shows. In count mode it records
// the events so that every point can be enumerated.
type crashDev struct {
	*memDev
	at     int
	mode   crashMode
	events int
	kinds  []int // count mode: bytes of each write, -1 for a sync
	// undo: the bytes each write since the last sync replaced (modeLost undoes them at
	// the crash: the disk kept none of what the process wrote but did not sync).
	undo []undoRec
}

type undoRec struct {
	off int64
	old []byte
}

// record notes what a write of n bytes at off is about to replace (modeLost only).
func (c *crashDev) record(off int64, n int) {
	if c.mode != modeLost && c.mode != modeReorder || off >= int64(len(c.b)) {
		return
	}
	end := min(off+int64(n), int64(len(c.b)))
	c.undo = append(c.undo, undoRec{off, bytes.Clone(c.b[off:end])})
}

// lose undoes the writes since the last sync.
func (c *crashDev) lose() {
	for i := len(c.undo) - 1; i >= 0; i-- {
		copy(c.b[c.undo[i].off:], c.undo[i].old)
	}
	c.undo = nil
}

func newCrashDev(img []byte, mode crashMode, at int) *crashDev {
	return &crashDev{memDev: &memDev{b: append([]byte(nil), img...)}, mode: mode, at: at}
}

// tornLen is how much of an n-byte write a torn crash leaves: 0 when it cannot tear.
func tornLen(n int) int {
	if n <= SectorSize {
		return 0
	}
	return max(n/2/SectorSize*SectorSize, SectorSize)
}

func (c *crashDev) WriteAt(p []byte, off int64) (int, error) {
	c.events++
	if c.mode == modeCount {
		c.kinds = append(c.kinds, len(p))
	}
	switch {
	case c.mode == modeCount || c.events < c.at:
		c.record(off, len(p))
		return c.memDev.WriteAt(p, off)
	case c.events == c.at && c.mode == modeLost:
		c.lose()
		return 0, errCrashed
	case c.events == c.at && c.mode == modeReorder:
		c.lose()
		_, _ = c.memDev.WriteAt(p, off)
		return 0, errCrashed
	case c.events == c.at && c.mode == modeTorn:
		n, _ := c.memDev.WriteAt(p[:tornLen(len(p))], off)
		return n, errCrashed
	case c.events == c.at && c.mode == modeTailTorn:
		if len(p) > SectorSize {
			_, _ = c.memDev.WriteAt(p[SectorSize:], off+SectorSize)
		}
		return 0, errCrashed
	case c.events == c.at:
		return 0, syscall.EIO
	case c.mode == modeFault:
		return c.memDev.WriteAt(p, off)
	default:
		return 0, errCrashed
	}
}

func (c *crashDev) Sync() error {
	c.events++
	if c.mode == modeCount {
		c.kinds = append(c.kinds, -1)
	}
	switch {
	case c.mode == modeCount || c.events < c.at:
		c.undo = nil
		return nil
	case c.events == c.at && (c.mode == modeLost || c.mode == modeReorder):
		c.lose()
		return errCrashed
	case c.events == c.at:
		return syscall.EIO
	case c.mode == modeFault:
		return nil
	default:
		return errCrashed
	}
}

// crashOp is one header-changing operation run against a base image. A state the
// operation leaves is safe when it is the old state — every passphrase of before opens
// and prop reads as before the operation — or the new one: every passphrase of after
// opens and prop reads as after a completed run.
type crashOp struct {
	name          string
	base          []byte
	run           func(d ReadWriterAt) error
	before, after []string
	prop          func(d ReadWriterAt) string // nil: no property beyond the passphrases
	// anyAfter: a state that opens with at least one passphrase of after counts as new (a
	// restore whose staging header could hold only some of the backup's slots).
	anyAfter bool
	// backup: for a restore, the backup file; the completed restore leaves the device's
	// metadata area byte for byte the backup's, as cryptsetup's restore does.
	backup string
	// knownUnsafe names why unsafe states are expected (the same window in cryptsetup);
	// they are counted and logged but do not fail the test.
	knownUnsafe string
}

// libOpens reports whether passphrase opens d with this package (LUKS1 or LUKS2).
func libOpens(d ReadWriterAt, pass string) bool {
	_, vk, _, err := UnlockAny(context.Background(), d, []byte(pass), UnlockOptions{})
	if err == nil {
		vk.Wipe()
	}
	return err == nil
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func allIn(m map[string]bool, list []string) bool {
	for _, p := range list {
		if !m[p] {
			return false
		}
	}
	return true
}

func anyIn(m map[string]bool, list []string) bool {
	for _, p := range list {
		if m[p] {
			return true
		}
	}
	return false
}

// csChecker runs real cryptsetup on states, once per distinct image and passphrase.
type csChecker struct {
	t     *testing.T
	dir   string
	seen  map[[32]byte]csVerdict
	runs  int
	avail bool
}

type csVerdict struct {
	dumpOK bool
	opens  map[string]bool
}

func newCSChecker(t *testing.T) *csChecker {
	c := &csChecker{t: t, dir: t.TempDir(), seen: map[[32]byte]csVerdict{}}
	if _, err := exec.LookPath("cryptsetup"); err == nil {
		c.avail = true
	}
	for _, p := range []string{"/usr/sbin/cryptsetup", "/sbin/cryptsetup"} {
		if _, err := os.Stat(p); err == nil {
			c.avail = true
		}
	}
	if !c.avail {
		if testenv.InCI() {
			t.Fatal("cryptsetup not found (apt-get install cryptsetup-bin): the crash states cannot be checked with it")
		}
		t.Log("cryptsetup not found (apt-get install cryptsetup-bin): crash states checked with this package only")
	}
	return c
}

// check runs luksDump and open --test-passphrase for each passphrase on img.
func (c *csChecker) check(img []byte, passes []string) csVerdict {
	// The verdict is kept per image and passphrase: a state met again with a passphrase
	// not tried on it yet runs that one.
	key := sha256.Sum256(img)
	v, ok := c.seen[key]
	var missing []string
	for _, p := range passes {
		if _, tried := v.opens[p]; !tried {
			missing = append(missing, p)
		}
	}
	if ok && len(missing) == 0 {
		return v
	}
	path := filepath.Join(c.dir, "state.img")
	require.NoError(c.t, os.WriteFile(path, img, 0o600))
	if !ok {
		v = csVerdict{opens: map[string]bool{}}
		v.dumpOK = runCS(c.t, nil, "luksDump", path).code == 0
		c.runs++
	}
	for _, p := range missing {
		v.opens[p] = runCS(c.t, []byte(p), "open", "--test-passphrase", "--key-file", "-", path).code == 0
		c.runs++
	}
	c.seen[key] = v
	return v
}

// crashRow is one line of the survival table.
type crashRow struct {
	op                    string
	events                int
	crashOK, crashN       int
	faultOK, faultN       int
	csStates              int
	unsafe                []string
	knownUnsafe           string
	propBefore, propAfter string
}

// runCrashOp enumerates every crash point (crash and torn crash at each event) and every
// fault point (EIO at each event) of op and checks each state with this package and, on
// every crash point and every distinct state, with cryptsetup.
func runCrashOp(t *testing.T, op crashOp, cs *csChecker) crashRow {
	row := crashRow{op: op.name, knownUnsafe: op.knownUnsafe}
	prop := func(d ReadWriterAt) string {
		if op.prop == nil {
			return ""
		}
		return op.prop(d)
	}
	probe := newCrashDev(op.base, modeCount, 0)
	row.propBefore = prop(probe)
	require.NoError(t, op.run(probe), "%s: the operation fails without any fault", op.name)
	row.propAfter = prop(probe)
	row.events = probe.events
	for _, p := range op.after {
		require.True(t, libOpens(probe, p), "%s: %q opens after the operation", op.name, p)
	}
	if op.backup != "" {
		want, err := os.ReadFile(op.backup)
		require.NoError(t, err)
		n := int64(len(want))
		if h2, err := ReadHeader2(&memDev{b: want}); err == nil {
			n = int64(h2.AreasSize())
		} else if h1, err := ReadHeader(&memDev{b: want}); err == nil {
			n, _ = backupSize(h1)
		}
		require.Equal(t, want[:n], probe.b[:n], "%s: the restored metadata area is the backup's", op.name)
	}
	passes := union(op.before, op.after)

	try := func(mode crashMode, at int) {
		d := newCrashDev(op.base, mode, at)
		err := op.run(d)
		lib := map[string]bool{}
		for _, p := range passes {
			lib[p] = libOpens(d, p)
		}
		pr := prop(d)
		oldOK := allIn(lib, op.before) && pr == row.propBefore
		newOK := (allIn(lib, op.after) || op.anyAfter && anyIn(lib, op.after)) && pr == row.propAfter
		var why []string
		if !oldOK && !newOK {
			why = append(why, fmt.Sprintf("library: neither state (opens %v, property %q; before %q, after %q)", lib, pr, row.propBefore, row.propAfter))
		}
		if mode == modeFault && err == nil {
			why = append(why, "the operation reported success although an I/O failed")
		}
		// -short checks cryptsetup at every crash point, the torn and EIO states where
		// they differ from those only when not short.
		if cs.avail && (mode == modeCrash || !testing.Short()) {
			v := cs.check(d.b, passes)
			row.csStates = len(cs.seen)
			if !v.dumpOK {
				why = append(why, "cryptsetup luksDump refuses the image")
			}
			csOld, csNew := allIn(v.opens, op.before), allIn(v.opens, op.after) || op.anyAfter && anyIn(v.opens, op.after)
			if !csOld && !csNew {
				why = append(why, fmt.Sprintf("cryptsetup: neither state (opens %v)", v.opens))
			}
			for _, p := range passes {
				if v.opens[p] != lib[p] {
					why = append(why, fmt.Sprintf("cryptsetup and this package disagree on %q: %v vs %v", p, v.opens[p], lib[p]))
				}
			}
		}
		ok := len(why) == 0
		if mode == modeFault {
			row.faultN++
			if ok {
				row.faultOK++
			}
		} else {
			row.crashN++
			if ok {
				row.crashOK++
			}
		}
		if !ok {
			row.unsafe = append(row.unsafe, fmt.Sprintf("%s at event %d/%d: %s", mode, at, row.events, strings.Join(why, "; ")))
		}
	}
	for at := 1; at <= row.events; at++ {
		try(modeCrash, at)
		try(modeLost, at)
		if probe.kinds[at-1] > 0 {
			try(modeReorder, at)
		}
		if n := probe.kinds[at-1]; n > 0 && tornLen(n) > 0 {
			try(modeTorn, at)
			try(modeTailTorn, at)
		}
		try(modeFault, at)
	}
	return row
}

func logCrashTable(t *testing.T, rows []crashRow, cs *csChecker) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-28s %6s %12s %12s\n", "operation", "events", "crashes", "EIO faults")
	var cOK, cN, fOK, fN int
	for _, r := range rows {
		note := ""
		if r.knownUnsafe != "" {
			note = "  known unsafe: " + r.knownUnsafe
		}
		fmt.Fprintf(&b, "%-28s %6d %5d / %-4d %5d / %-4d%s\n", r.op, r.events, r.crashOK, r.crashN, r.faultOK, r.faultN, note)
		cOK, cN, fOK, fN = cOK+r.crashOK, cN+r.crashN, fOK+r.faultOK, fN+r.faultN
	}
	fmt.Fprintf(&b, "%-28s %6s %5d / %-4d %5d / %-4d\n", fmt.Sprintf("total (%d operations)", len(rows)), "", cOK, cN, fOK, fN)
	if cs.avail {
		fmt.Fprintf(&b, "cryptsetup: %d distinct states, %d runs (luksDump + open --test-passphrase)\n", len(cs.seen), cs.runs)
	}
	t.Log(b.String())
}
