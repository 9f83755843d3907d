package grubconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// JournalDir is where Apply records what it changed (under the root): per volume, the
// argument it added and each file's original and edits, so that PlanUndo, from another
// process and after a reboot, can take out exactly those edits and keep everyone else's.
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

// otherRecords names the other records under root that rely on the kernel argument arg
// (volume names; kernelArgsJournal for a kernel-arguments-only run), in directory order.
func otherRecords(root, volume, arg string) ([]string, error) {
	dir, err := resolveCreate(root, JournalDir)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(hostPath(root, dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if volume == "" {
		volume = kernelArgsJournal
	}
	var out []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || name == volume || !e.Type().IsRegular() {
			continue
		}
		j, err := readJournal(root, name)
		if err != nil {
			return nil, err
		}
		if j.Arg == arg {
			out = append(out, name)
		}
	}
	return out, nil
}

// handOver adds the boot-loader entries of a record being undone to the record of heir,
// whose apply found the argument already there and so never recorded those files: the
// last undo then still takes the argument out.
func handOver(root, heir string, entries []journalEntry) error {
	j, err := readJournal(root, heir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		i := slices.IndexFunc(j.Files, func(f journalEntry) bool { return f.Path == e.Path })
		if i < 0 {
			j.Files = append(j.Files, e)
			continue
		}
		// Both records edited the file: the handed-over edits are the older ones.
		f := j.Files[i]
		f.Steps = append(slices.Clone(e.steps()), f.steps()...)
		f.Old = e.Old
		if e.Old == nil {
			f.Dirs = e.Dirs
		}
		j.Files[i] = f
	}
	return writeJournal(root, heir, j)
}

// writeJournal replaces the existing undo record of volume with j.
func writeJournal(root, volume string, j *journal) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	jf, err := journalFile(root, volume)
	if err != nil {
		return err
	}
	return writeAtomic(root, jf, append(b, '\n'), 0o600)
}

// PlanUndo loads the record Apply left for volume and returns the plan that takes out of
// every recorded file exactly what the applies put in: the lines they edited get their
// original text back, files they created are removed, and whatever someone else changed
// since (a kernel update adding an entry, another line of fstab) stays. A file no one
// touched since gets its original bytes back. The volume "" undoes a kernel-arguments-only
// plan (Volume{}). It fails with ErrNoUndo when nothing was recorded. When a line the
// applies edited was changed again since, taking the argument out would lose that change:
// the plan then says so in Warnings (its Diff shows the rest) and its Apply fails with
// ErrConflict and changes nothing. A line that holds its original text again counts as
// reverted; one that is gone (a kernel update removed its entry) is skipped with a warning.
// While another volume's record relies on the same
// kernel argument, the boot-loader files keep it (the plan's Warnings say so) and that
// record takes over their entries, so that the last undo takes the argument out. The last
// undo also takes the argument out of kernel lines and BLS entries a kernel update added
// since with the argument copied in (grubby --copy-default, kernel-install from
// /etc/kernel/cmdline), and names them in Warnings.
func (s *System) PlanUndo(volume string) (*Plan, error) {
	if err := (Volume{Name: volume}).validate(); err != nil {
		return nil, err
	}
	j, err := readJournal(s.Root, volume)
	if err != nil {
		return nil, err
	}
	p := &Plan{Root: s.Root, Volume: Volume{Name: volume}, Arg: j.Arg, Family: j.Family, undo: true}
	others, err := otherRecords(s.Root, volume, j.Arg)
	if err != nil {
		return nil, err
	}
	kept, ours, recorded := false, false, map[string]bool{}
	for i := len(j.Files) - 1; i >= 0; i-- {
		f := j.Files[i]
		if len(others) > 0 && !s.isVolumeFile(f.Path) {
			p.handover, kept = append([]journalEntry{f}, p.handover...), true
			continue
		}
		cur, err := readCurrent(s.Root, f.Path)
		if err != nil {
			return nil, err
		}
		out, steps := cur, f.steps()
		for k := len(steps) - 1; k >= 0; k-- {
			var gone, lost []string
			if s.isVolumeFile(f.Path) {
				var handed bool
				if out, gone, lost, handed = revertTerminated(out, steps[k]); handed {
					p.terminated = append(p.terminated, terminatedStep{f.Path, steps[k]})
				}
			} else {
				out, gone, lost = revertStep(out, steps[k])
			}
			for _, g := range gone {
				if w := f.Path + ": " + g; !slices.Contains(p.Warnings, w) { // once per file, not per step
					p.Warnings = append(p.Warnings, w)
				}
			}
			for _, l := range lost {
				p.Warnings = append(p.Warnings, f.Path+": "+l+"; undoing it would lose that change, so undo refuses")
				p.conflicts = append(p.conflicts, fmt.Errorf("%s: %w (%s)", f.Path, ErrConflict, l))
			}
		}
		if f.Old == nil && len(out) == 0 {
			out = nil // the file did not exist before any record: the last undo removes it
		} else if f.Old == nil {
			p.created = append(p.created, f.Path)
		}
		if !s.isVolumeFile(f.Path) {
			recorded[f.Path], ours = true, true
			var copied []string
			if out, copied = stripCopiedArg(out, f.Old, j.Arg); len(copied) > 0 {
				p.Warnings = append(p.Warnings, copiedWarnings(f.Path, j.Arg, copied)...)
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
	// Entries a kernel update added since, built from the edited configuration (kernel-install
	// from /etc/kernel/cmdline), carry the record's argument too.
	for _, e := range s.BLSEntries {
		if !ours || recorded[e.Path] {
			continue
		}
		cur, err := readCurrent(s.Root, e.Path)
		if err != nil {
			return nil, err
		}
		out, copied := stripCopiedArg(cur, nil, j.Arg)
		if len(copied) == 0 {
			continue
		}
		p.Warnings = append(p.Warnings, copiedWarnings(e.Path, j.Arg, copied)...)
		p.Changes = append(p.Changes, Change{Path: e.Path, Via: e.Chain, Reason: "take " + j.Arg + " out of an entry added since the apply", Old: cur, New: out})
	}
	if kept {
		p.heir = others[0]
		names := strings.ReplaceAll(strings.Join(others, ", "), kernelArgsJournal, "the kernel-arguments run")
		verb := "needs"
		if len(others) > 1 {
			verb = "need"
		}
		p.Warnings = append(p.Warnings, "kept "+j.Arg+": "+names+" still "+verb+" it")
	}
	return p, nil
}

// stripCopiedArg takes arg out of the kernel command lines of b that carry it and that the
// file did not hold before the first apply (orig): entries a kernel update copied from an
// edited one (grubby --copy-default) or built from the edited configuration. It returns
// the 1-based numbers of the lines it changed.
func stripCopiedArg(b, orig []byte, arg string) ([]byte, []string) {
	if b == nil || bytes.HasPrefix(b, []byte(grubenvSignature)) {
		return b, nil
	}
	had := map[string]bool{}
	for _, l := range splitLines(orig) {
		had[string(l)] = true
	}
	var out []byte
	var changed []string
	for k, l := range splitLines(b) {
		n := contentEnd(l)
		w := strings.Fields(string(l[:n]))
		if !had[string(l)] && len(w) > 1 && slices.Contains([]string{"kernel", "module", "linux", "linux16", "linuxefi", "options"}, w[0]) {
			if r, ok := removeCmdlineArg(string(l[:n]), arg); ok {
				l = append([]byte(r), l[n:]...)
				changed = append(changed, fmt.Sprint(k+1))
			}
		}
		out = append(out, l...)
	}
	return out, changed
}

func copiedWarnings(p, arg string, lines []string) []string {
	var out []string
	for _, l := range lines {
		out = append(out, p+": line "+l+" was added since the apply with "+arg+" copied in; "+arg+" taken out")
	}
	return out
}

// isVolumeFile reports whether the real file p is crypttab or fstab, whose edits belong
// to one volume; every other recorded file carries the shared kernel argument.
func (s *System) isVolumeFile(p string) bool {
	for _, f := range []*File{s.Crypttab, s.Fstab} {
		if f != nil && f.Path == p {
			return true
		}
	}
	return p == "/etc/crypttab" || p == "/etc/fstab" || isScratchFile(p)
}

// finishUndo ends an applied undo: the boot-loader entries kept for another record go to
// that record, then this record is removed.
func (p *Plan) finishUndo() error {
	if err := handTerminated(p.Root, p.Volume.Name, p.terminated); err != nil {
		return err
	}
	if err := passCreated(p.Root, p.Volume.Name, p.created); err != nil {
		return err
	}
	if len(p.handover) > 0 {
		if err := handOver(p.Root, p.heir, p.handover); err != nil {
			return err
		}
	}
	return removeJournal(p.Root, p.Volume.Name)
}
