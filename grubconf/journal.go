package grubconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
)

// JournalDir is where Apply records what it changed (under the root), so that Undo can
// restore the original bytes from another process, e.g. after a reboot.
const JournalDir = "/var/lib/cloudluks/grubconf"

type journal struct {
	Version int            `json:"version"`
	Volume  string         `json:"volume"`
	Arg     string         `json:"arg"`
	Family  Family         `json:"family"`
	Files   []journalEntry `json:"files"`
	// Dirs are the directories Apply made for the record (outermost first, e.g. /var and
	// /var/lib in a bare image root); undo removes them again when they are empty, so the
	// tree is as before.
	Dirs []string `json:"dirs,omitempty"`
}

type journalEntry struct {
	Path string      `json:"path"`
	Via  []string    `json:"via,omitempty"`
	Old  []byte      `json:"old"` // null: the file did not exist
	New  []byte      `json:"new"` // null: the file was removed
	Mode fs.FileMode `json:"mode"`
	Dirs []string    `json:"dirs,omitempty"`
	// Steps are the edits of each apply, oldest first, when the file was changed by
	// someone else in between (a kernel update adding an entry); without them the one
	// edit is Old to New. Old is always the first original.
	Steps []journalStep `json:"steps,omitempty"`
}

// journalStep is one apply's edit of a file: the content it found and the content it wrote.
type journalStep struct {
	Old []byte `json:"old"`
	New []byte `json:"new"`
}

func (e journalEntry) steps() []journalStep {
	if len(e.Steps) > 0 {
		return e.Steps
	}
	return []journalStep{{e.Old, e.New}}
}

// kernelArgsJournal names the record of a plan made without a volume (kernel arguments
// only). '#' is refused in volume names, so it never collides with a volume's record.
const kernelArgsJournal = "#kernel-args"

func journalPath(volume string) string {
	if volume == "" {
		volume = kernelArgsJournal
	}
	return path.Join(JournalDir, volume+".json")
}

// planLabel names what a plan is about in errors: the volume, or the kernel arguments.
func planLabel(volume string) string {
	if volume == "" {
		return "kernel arguments"
	}
	return "volume " + volume
}

// journalFile is the record's real root-relative path (links in /var/lib resolved inside
// the root).
func journalFile(root, volume string) (string, error) {
	return resolveCreate(root, journalPath(volume))
}

func readJournal(root, volume string) (*journal, error) {
	jf, err := journalFile(root, volume)
	if err != nil {
		return nil, err
	}
	j, err := readJournalFile(root, jf)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", planLabel(volume), ErrNoUndo)
	}
	return j, err
}

// readJournalFile reads the record at the real root-relative path jf.
func readJournalFile(root, jf string) (*journal, error) {
	b, err := readLimited(root, jf)
	if err != nil {
		return nil, err
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", jf, err)
	}
	return &j, nil
}

// siblingDirs returns the directories another volume's record says Apply made, so that
// whichever record is undone last removes them.
func siblingDirs(root, jf string) []string {
	dir := path.Dir(jf)
	ents, err := os.ReadDir(hostPath(root, dir))
	if err != nil {
		return nil
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || path.Ext(e.Name()) != ".json" || e.Name() == path.Base(jf) {
			continue
		}
		if j, err := readJournalFile(root, path.Join(dir, e.Name())); err == nil && len(j.Dirs) > 0 {
			return j.Dirs
		}
	}
	return nil
}

// saveJournal records p's changes, merged with an earlier record for the same volume: a
// file already recorded keeps its first original; when someone else changed it in between,
// this apply's edit is recorded as a further step, so that undo can take out each apply's
// lines and keep the foreign change.
func saveJournal(p *Plan) error {
	jf, err := journalFile(p.Root, p.Volume.Name)
	if err != nil {
		return err
	}
	j := &journal{Version: 1, Volume: p.Volume.Name, Arg: p.Arg, Family: p.Family}
	if old, err := readJournal(p.Root, p.Volume.Name); err == nil {
		j.Files, j.Dirs = old.Files, old.Dirs
	} else if !errors.Is(err, ErrNoUndo) {
		return err
	} else if j.Dirs = missingDirs(p.Root, jf); len(j.Dirs) == 0 {
		j.Dirs = siblingDirs(p.Root, jf)
	}
	for _, c := range p.Changes {
		e := journalEntry{Path: c.Path, Via: c.Via, Old: c.Old, New: c.New, Mode: c.Mode, Dirs: c.Dirs}
		replaced := false
		for i, f := range j.Files {
			if f.Path != c.Path {
				continue
			}
			e.Old = f.Old
			if f.Old == nil {
				e.Dirs = f.Dirs
			}
			steps := slices.Clone(f.steps())
			if sameContent(f.New, c.Old) {
				steps[len(steps)-1].New = c.New
			} else {
				steps = append(steps, journalStep{c.Old, c.New})
			}
			if len(steps) > 1 {
				e.Steps = steps
			}
			j.Files[i], replaced = e, true
		}
		if !replaced {
			j.Files = append(j.Files, e)
		}
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	// /var/lib is a system directory (0755) when it has to be made, e.g. in a bare image
	// root; only the record's own two directories are private.
	dir := path.Dir(jf)
	if err := mkdirBeneath(p.Root, path.Dir(path.Dir(dir)), 0o755); err != nil {
		return err
	}
	if err := mkdirBeneath(p.Root, dir, 0o700); err != nil {
		return err
	}
	return writeAtomic(p.Root, jf, append(b, '\n'), 0o600)
}

func removeJournal(root, volume string) error {
	jf, err := journalFile(root, volume)
	if err != nil {
		return err
	}
	var made []string
	if j, err := readJournalFile(root, jf); err == nil {
		made = j.Dirs
	}
	if err := removeDurable(root, jf); err != nil {
		return err
	}
	// Leave no empty directories behind (only removes them when empty): the record's own
	// two, then the ones Apply made for it, innermost first.
	_ = removeEmptyDir(root, path.Dir(jf))
	_ = removeEmptyDir(root, path.Dir(path.Dir(jf)))
	for i := len(made) - 1; i >= 0; i-- {
		if err := removeEmptyDir(root, made[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			break // not empty: someone else uses it
		}
	}
	return nil
}

// PlanUndo loads the record Apply left for volume and returns the plan that takes out of
// every recorded file exactly what the applies put in: the lines they edited get their
// original text back, files they created are removed, and whatever someone else changed
// since (a kernel update adding an entry, another line of fstab) stays. A file no one
// touched since gets its original bytes back. The volume "" undoes a kernel-arguments-only
// plan (Volume{}). It fails with ErrNoUndo when nothing was recorded. When a line the
// applies edited was changed again since, taking the argument out would lose that change:
// the plan then says so in Warnings (its Diff shows the rest) and its Apply fails with
// ErrConflict and changes nothing.
func (s *System) PlanUndo(volume string) (*Plan, error) {
	if err := (Volume{Name: volume}).validate(); err != nil {
		return nil, err
	}
	j, err := readJournal(s.Root, volume)
	if err != nil {
		return nil, err
	}
	p := &Plan{Root: s.Root, Volume: Volume{Name: volume}, Arg: j.Arg, Family: j.Family, undo: true}
	for i := len(j.Files) - 1; i >= 0; i-- {
		f := j.Files[i]
		cur, err := readCurrent(s.Root, f.Path)
		if err != nil {
			return nil, err
		}
		out, steps := cur, f.steps()
		for k := len(steps) - 1; k >= 0; k-- {
			var lost []string
			out, lost = revertStep(out, steps[k])
			for _, l := range lost {
				p.Warnings = append(p.Warnings, f.Path+": "+l+"; undoing it would lose that change, so undo refuses")
				p.conflicts = append(p.conflicts, fmt.Errorf("%s: %w (%s)", f.Path, ErrConflict, l))
			}
		}
		if sameContent(out, cur) {
			continue
		}
		reason := "restore original"
		if !sameContent(out, f.Old) {
			reason = "take out what was added, keep the later changes"
		}
		c := Change{Path: f.Path, Via: f.Via, Reason: reason, Old: cur, New: out, Mode: f.Mode}
		if out == nil {
			c.Dirs = f.Dirs
		}
		p.Changes = append(p.Changes, c)
	}
	return p, nil
}
