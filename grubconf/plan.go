package grubconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Volume names the encrypted data volume whose boot-time unlock is disabled. The zero
// Volume (no name) plans only the kernel-argument edits: crypttab and fstab are left
// alone, so a crypttab line without noauto still unlocks (and prompts) at boot.
type Volume struct {
	Name       string // the mapping name (crypttab first field, /dev/mapper/NAME)
	Device     string // optional: the backing device as crypttab writes it (/dev/xvdf, UUID=…)
	MountPoint string // optional: the mount point in fstab (/dev/mapper/NAME is matched anyway)
}

func (v Volume) validate() error {
	if v.Name == "" {
		if v.Device != "" || v.MountPoint != "" {
			return fmt.Errorf("volume with device %q, mount point %q but no name: %w", v.Device, v.MountPoint, ErrInvalidVolume)
		}
		return nil // kernel arguments only
	}
	if strings.ContainsAny(v.Name, " \t\n/\\#\x00") || v.Name == "." || v.Name == ".." {
		return fmt.Errorf("volume name %q: %w", v.Name, ErrInvalidVolume)
	}
	return nil
}

// dropInName is the drop-in written when a /etc/default/grub.d file already overrides the
// command-line variable: it sorts after the usual 50-/90- files, so it is sourced last.
const dropInName = "99-cloudluks.cfg"

// Change is the edit of one real file. Old == nil means the file is created, New == nil
// that it is removed.
type Change struct {
	Path   string   // root-relative path of the real file written
	Via    []string // symlinks that lead to it (e.g. /etc/grub.conf)
	Reason string   // what the edit does
	Old    []byte
	New    []byte
	Mode   fs.FileMode // for a created file
	// Dirs are the missing parent directories a created file needs (outermost first);
	// undoing the creation removes them again when empty.
	Dirs []string
}

// Plan is the set of edits for one operation. Diff shows them, Apply makes them;
// System.PlanUndo gives the plan that reverts them.
type Plan struct {
	Root    string
	Volume  Volume
	Arg     string // kernel argument added
	Family  Family
	Changes []Change
	// Notes are follow-up commands for the operator (regenerate grub.cfg, initramfs).
	Notes []string
	// Warnings are things the operator should know, e.g. that no boot loader
	// configuration was found at all (an empty plan then proves little).
	Warnings []string
	undo     bool
	// conflicts are the reasons an undo plan must not be applied (see PlanUndo).
	conflicts []error
	// handover are the boot-loader entries an undo leaves to the record of heir, another
	// volume that still needs the kernel argument.
	handover []journalEntry
	heir     string
	// created are the files this undo's record created that stay because other records'
	// lines remain in them; finishUndo passes that fact on (see passCreated).
	created []string
}

// Empty reports whether there is nothing to change (the operation is already done).
func (p *Plan) Empty() bool { return len(p.Changes) == 0 }

// workset keeps the original and edited content of each real file, in first-use order.
type workset struct {
	root  string
	order []string
	files map[string]*wsFile
}

type wsFile struct {
	res    resolved
	old    []byte // nil: did not exist
	cur    []byte
	mode   fs.FileMode
	reason []string
}

func newWorkset(root string) *workset { return &workset{root: root, files: map[string]*wsFile{}} }

// get loads the real file behind name (nil content when missing).
func (w *workset) get(name string) (*wsFile, error) {
	r, b, mode, err := readIn(w.root, name)
	if err != nil {
		return nil, err
	}
	key := r.Final
	if key == "" {
		key = r.Name
	}
	if f, ok := w.files[key]; ok {
		f.res.Chain = appendNew(f.res.Chain, r.Chain...)
		return f, nil
	}
	f := &wsFile{res: r, old: b, cur: b, mode: mode}
	if r.Final == "" {
		// A file to be created: place it where the root's own links lead.
		if f.res.Final, err = resolveCreate(w.root, r.Name); err != nil {
			return nil, err
		}
	}
	w.files[key] = f
	w.order = append(w.order, key)
	return f, nil
}

// missingDirs lists the parents of p that do not exist under root, outermost first.
func missingDirs(root, p string) []string {
	var out []string
	for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
		if _, err := os.Lstat(hostPath(root, d)); err == nil {
			break
		}
		out = append([]string{d}, out...)
	}
	return out
}

func (f *wsFile) set(b []byte, reason string) {
	if bytes.Equal(b, f.cur) && f.cur != nil {
		return
	}
	f.cur = b
	f.reason = append(f.reason, reason)
}

func (w *workset) changes() []Change {
	var out []Change
	for _, k := range w.order {
		f := w.files[k]
		if bytes.Equal(f.old, f.cur) && (f.old == nil) == (f.cur == nil) {
			continue
		}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		c := Change{Path: f.res.Final, Via: f.res.Chain, Reason: strings.Join(f.reason, "; "),
			Old: f.old, New: f.cur, Mode: mode}
		if f.old == nil {
			c.Dirs = missingDirs(w.root, f.res.Final)
		}
		out = append(out, c)
	}
	return out
}

// grubDefaults is /etc/default/grub and its drop-ins in sourcing order.
type grubDefaults struct {
	files []*wsFile
	names []string
}

func (g grubDefaults) lastAssigning(name string) int {
	last := -1
	for i, f := range g.files {
		for _, a := range parseShell(f.cur).Assignments() {
			if a.Name == name {
				last = i
			}
		}
	}
	return last
}

// envBefore evaluates the files before index i.
func (g grubDefaults) envBefore(i int) map[string]string {
	env := map[string]string{}
	for _, f := range g.files[:i] {
		env = parseShell(f.cur).Eval(env)
	}
	return env
}

func (g grubDefaults) effective() map[string]string { return g.envBefore(len(g.files)) }

func (s *System) loadDefaults(w *workset) (grubDefaults, error) {
	var g grubDefaults
	if s.DefaultGrub == nil {
		return g, nil
	}
	f, err := w.get(s.DefaultGrub.Name)
	if err != nil {
		return g, err
	}
	g.files, g.names = append(g.files, f), append(g.names, s.DefaultGrub.Name)
	for _, d := range s.DropIns {
		f, err := w.get(d.Name)
		if err != nil {
			return g, err
		}
		g.files, g.names = append(g.files, f), append(g.names, d.Name)
	}
	return g, nil
}

// cmdlineVar picks the variable that must carry the argument: GRUB_CMDLINE_LINUX (every
// entry, recovery too) when any file sets it, else GRUB_CMDLINE_LINUX_DEFAULT when that is
// the only one used (Amazon Linux 2), else GRUB_CMDLINE_LINUX.
func (g grubDefaults) cmdlineVar() string {
	if g.lastAssigning("GRUB_CMDLINE_LINUX") >= 0 {
		return "GRUB_CMDLINE_LINUX"
	}
	if g.lastAssigning("GRUB_CMDLINE_LINUX_DEFAULT") >= 0 {
		return "GRUB_CMDLINE_LINUX_DEFAULT"
	}
	return "GRUB_CMDLINE_LINUX"
}

// PlanDisableUnlock plans every edit that stops the detected system from unlocking (and
// prompting for) volume v at boot. It refuses with an *EncryptedBootError (ErrEncryptedBoot)
// when root, /usr, swap or resume is on LUKS. An empty plan means it is already disabled.
func (s *System) PlanDisableUnlock(v Volume) (*Plan, error) {
	if err := v.validate(); err != nil {
		return nil, err
	}
	w := newWorkset(s.Root)
	p := &Plan{Root: s.Root, Volume: v, Arg: s.Arg, Family: s.Family}

	// One pass over the boot-loader file kinds: each file is read and parsed once; its
	// command lines go to the safety check and its edit waits until that check has passed,
	// so a refused plan edits nothing. Edits run in this order (the created
	// /etc/kernel/cmdline copies the newest BLS entry after its edit).
	var cmdlines []cmdlineSource
	var edits []func() error
	for _, lf := range s.Legacy {
		f, err := w.get(lf.Name)
		if err != nil {
			return nil, err
		}
		f.res.Chain = appendNew(f.res.Chain, lf.Chain...)
		lg := parseLegacy(f.cur)
		for _, c := range lg.Cmdlines() {
			cmdlines = append(cmdlines, cmdlineSource{f.res.Final, c})
		}
		// Every entry, the first module line of multiboot entries, kopt.
		edits = append(edits, func() error {
			if lg.AddArg(s.Arg) {
				f.set(lg.Bytes(), "add "+s.Arg+" to every kernel entry")
			}
			return nil
		})
	}
	for _, gc := range s.GrubCfg {
		f, err := w.get(gc.Name)
		if err != nil {
			return nil, err
		}
		cfg := parseGrubCfg(f.cur)
		for _, c := range cfg.Cmdlines() {
			cmdlines = append(cmdlines, cmdlineSource{f.res.Final, c})
		}
		// The generated grub.cfg, so that the next boot has it without regenerating.
		edits = append(edits, func() error {
			if cfg.AddArg(s.Arg) {
				f.set(cfg.Bytes(), "add "+s.Arg+" to every linux line")
			}
			return nil
		})
	}
	defs, err := s.loadDefaults(w)
	if err != nil {
		return nil, err
	}
	if len(defs.files) > 0 {
		eff := defs.effective()
		for _, n := range []string{"GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"} {
			cmdlines = append(cmdlines, cmdlineSource{"/etc/default/grub", eff[n]})
		}
		edits = append(edits, func() error { return s.planDefaults(w, defs) })
	}
	bls := map[string]*blsEntry{}
	for _, e := range s.BLSEntries {
		f, err := w.get(e.Name)
		if err != nil {
			return nil, err
		}
		ent := parseBLS(f.cur)
		bls[e.Name] = ent
		cmdlines = append(cmdlines, cmdlineSource{f.res.Final, ent.Options()})
		// Literal options; entries using $kernelopts are covered by grubenv.
		if ent.UsesKernelopts() && len(s.Grubenv) > 0 {
			continue
		}
		edits = append(edits, func() error {
			if ent.AddArg(s.Arg) {
				f.set(ent.Bytes(), "add "+s.Arg+" to the options line")
			}
			return nil
		})
	}
	for _, g := range s.Grubenv {
		f, err := w.get(g.Name)
		if err != nil {
			return nil, err
		}
		env := parseGrubenv(f.cur)
		ko, _ := env.Get("kernelopts")
		cmdlines = append(cmdlines, cmdlineSource{f.res.Final, ko})
		edits = append(edits, func() error {
			if nv, ch := addCmdlineArg(ko, s.Arg); ch {
				if err := env.Set("kernelopts", nv); err != nil {
					return fmt.Errorf("%s: %w", f.res.Final, err)
				}
				f.set(env.Bytes(), "add "+s.Arg+" to kernelopts")
			}
			return nil
		})
	}
	if s.KernelCmdline != nil {
		f, err := w.get(s.KernelCmdline.Name)
		if err != nil {
			return nil, err
		}
		cmdlines = append(cmdlines, cmdlineSource{f.res.Final, string(f.cur)})
	}
	edits = append(edits, func() error { return s.planKernelCmdline(w, bls) })

	var ct *crypttab
	var ctFile, fsFile *wsFile
	ctPath, fsPath := "/etc/crypttab", "/etc/fstab"
	if s.Crypttab != nil {
		if ctFile, err = w.get(s.Crypttab.Name); err != nil {
			return nil, err
		}
		ct, ctPath = parseCrypttab(ctFile.cur), ctFile.res.Final
	}
	var fst *fstab
	if s.Fstab != nil {
		if fsFile, err = w.get(s.Fstab.Name); err != nil {
			return nil, err
		}
		fst, fsPath = parseFstab(fsFile.cur), fsFile.res.Final
	}
	if err := checkEncryptedBoot(v, cmdlines, ct, ctPath, fst, fsPath); err != nil {
		return nil, err
	}
	hadCryptLine := ct != nil && crypttabNames(ct, v)
	for _, edit := range edits {
		if err := edit(); err != nil {
			return nil, err
		}
	}
	if ct != nil && v.Name != "" {
		names := []string{v.Name}
		for _, e := range ct.Entries() {
			if v.Device != "" && e.Device == v.Device && e.Name != v.Name {
				names = append(names, e.Name)
			}
		}
		for _, n := range names {
			if s.CommentOutCrypttab {
				if ct.CommentOut(n) {
					ctFile.set(ct.Bytes(), "comment out "+n+" (SysV init ignores noauto)")
				}
			} else if ct.DisableAuto(n) {
				ctFile.set(ct.Bytes(), "noauto,nofail for "+n)
			}
		}
	}
	if fst != nil && v.Name != "" && fst.DisableAuto("/dev/mapper/"+v.Name, v.MountPoint) {
		fsFile.set(fst.Bytes(), "noauto,nofail and pass 0 for /dev/mapper/"+v.Name)
	}
	p.Changes = w.changes()
	p.Notes = s.notes(p)
	if !s.hasBootLoader() {
		p.Warnings = append(p.Warnings, "no boot loader configuration found under "+s.Root+": kernel arguments not edited")
	}
	for _, d := range s.Dangling {
		p.Warnings = append(p.Warnings, d+" is a symlink to a missing file (is /boot mounted under the root?)")
	}
	switch {
	case v.Name == "":
		// Kernel arguments only: say which crypttab lines will still unlock at boot.
		var auto []string
		if ct != nil {
			for _, e := range ct.Entries() {
				if !hasOption(e.Options, "noauto") && e.IsLUKS() { // random-keyed swap/tmp never prompt
					auto = append(auto, e.Name)
				}
			}
		}
		if len(auto) > 0 {
			p.Warnings = append(p.Warnings, "no volume named: "+ctPath+" still unlocks "+strings.Join(auto, ", ")+" at boot (name the volume to add noauto,nofail)")
		}
	case !hadCryptLine:
		p.Warnings = append(p.Warnings, "no active /etc/crypttab line for "+v.Name)
	}
	return p, nil
}

// crypttabNames reports whether crypttab has (or had, before this plan) a line for v.
func crypttabNames(ct *crypttab, v Volume) bool {
	for _, l := range ct.lines {
		if len(l.fields) > 0 && (l.fields[0].text == v.Name || (v.Device != "" && len(l.fields) > 1 && l.fields[1].text == v.Device)) {
			return true
		}
	}
	return false
}

func (s *System) planDefaults(w *workset, defs grubDefaults) error {
	name := defs.cmdlineVar()
	last := defs.lastAssigning(name)
	target := 0
	if last > 0 {
		// A drop-in overrides the variable. Edit the last one in place only when it sorts
		// after our own drop-in; otherwise add ours, sourced after it.
		dir := path.Dir(defs.names[last])
		ours := path.Join(dir, dropInName)
		if path.Base(defs.names[last]) >= dropInName {
			target = last
		} else {
			idx := -1
			for i, n := range defs.names {
				if n == ours {
					idx = i
				}
			}
			if idx < 0 {
				f, err := w.get(ours)
				if err != nil {
					return err
				}
				// Insert in sourcing order.
				pos := len(defs.files)
				for i := 1; i < len(defs.names); i++ {
					if path.Base(defs.names[i]) > dropInName {
						pos = i
						break
					}
				}
				defs.files = append(defs.files[:pos], append([]*wsFile{f}, defs.files[pos:]...)...)
				defs.names = append(defs.names[:pos], append([]string{ours}, defs.names[pos:]...)...)
				idx = pos
				if f.cur == nil {
					f.set([]byte("# Written by cloudluks: keep boot-time LUKS unlock disabled.\n"+
						name+`="$`+name+` `+quoteFor(s.Arg, 'd')+`"`+"\n"), "new drop-in: add "+s.Arg+" to "+name)
				}
			}
			target = idx
		}
	}
	f := defs.files[target]
	if f.old != nil { // (a new drop-in was written complete above)
		sf := parseShell(f.cur)
		changed, err := sf.AddArg(name, s.Arg, defs.envBefore(target))
		if err != nil {
			return fmt.Errorf("%s: %w", f.res.Final, err)
		}
		if changed {
			f.set(sf.Bytes(), "add "+s.Arg+" to "+name)
		}
	}
	if !hasCmdlineArg(defs.effective()[name], s.Arg) {
		return fmt.Errorf("%s: %s would not carry %s after the edit: %w", f.res.Final, name, s.Arg, ErrUnsupported)
	}
	return nil
}

// planKernelCmdline edits /etc/kernel/cmdline, or creates it on BLS systems from the
// newest entry's literal options (what grubby does), so kernels installed later get the
// argument too.
func (s *System) planKernelCmdline(w *workset, bls map[string]*blsEntry) error {
	if s.KernelCmdline != nil {
		f, err := w.get(s.KernelCmdline.Name)
		if err != nil {
			return err
		}
		if e, ok := addArgEdit(string(f.cur), 0, s.Arg); ok {
			f.set([]byte(applyEdits(string(f.cur), []textEdit{e})), "add "+s.Arg)
		}
		return nil
	}
	if s.Family != FamilyBLS || len(s.BLSEntries) == 0 {
		return nil
	}
	newest := s.BLSEntries[len(s.BLSEntries)-1]
	ent := bls[newest.Name]
	if ent.UsesKernelopts() {
		return nil
	}
	opts := strings.TrimSpace(ent.Options())
	if opts == "" {
		return nil
	}
	f, err := w.get("/etc/kernel/cmdline")
	if err != nil {
		return err
	}
	f.set([]byte(opts+"\n"), "create from "+newest.Name)
	return nil
}

func (s *System) notes(p *Plan) []string {
	var out []string
	touched := map[string]bool{}
	for _, c := range p.Changes {
		touched[c.Path] = true
		for _, v := range c.Via {
			touched[v] = true
		}
	}
	grub := false
	for k := range touched {
		if strings.HasPrefix(k, "/etc/default/grub") {
			grub = true
		}
	}
	// grub.cfg is edited directly when it has Linux entries; otherwise regenerate it.
	if grub && len(s.GrubCfg) == 0 {
		switch s.Family {
		case FamilyDebian:
			out = append(out, "update-grub")
		case FamilyGRUB2:
			out = append(out, "grub2-mkconfig -o /boot/grub2/grub.cfg")
		}
	}
	if s.Crypttab != nil && touched[s.Crypttab.Path] {
		switch s.Family {
		case FamilyDebian:
			out = append(out, "update-initramfs -u   # only if the volume was in the initramfs")
		case FamilyGRUB2, FamilyBLSKernelopts, FamilyBLS:
			out = append(out, "dracut -f   # only if a host-only initramfs embeds /etc/crypttab")
		}
	}
	return out
}

// Diff writes a unified diff of every change ("a/…" and "b/…" labels relative to the
// root; /dev/null for created or removed files). Apply it inside the root with patch -p1.
func (p *Plan) Diff(w io.Writer) error {
	for _, c := range p.Changes {
		rel := strings.TrimPrefix(c.Path, "/")
		a, b := "a/"+rel, "b/"+rel
		if c.Old == nil {
			a = "/dev/null"
		}
		if c.New == nil {
			b = "/dev/null"
		}
		if err := unifiedDiff(w, a, b, c.Old, c.New); err != nil {
			return err
		}
	}
	return nil
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Backup keeps a copy of each original file as FILE.cloudluks-bak (beside it).
	Backup bool
}

// BackupSuffix is appended to a file's name for its backup copy.
const BackupSuffix = ".cloudluks-bak"

// Apply writes the plan. Every file is first checked to still hold the content the plan
// was made from (else ErrConflict and nothing is written); the undo record is saved under
// the root (var/lib/cloudluks/grubconf/NAME.json); then each file is replaced atomically,
// keeping mode and owner. If a write fails, everything is put back: the files already
// written, the backup copies this call created and the undo record as it was before.
func (p *Plan) Apply(opts ApplyOptions) error {
	if err := p.Check(); err != nil {
		return err
	}
	if len(p.Changes) == 0 {
		if p.undo {
			return p.finishUndo()
		}
		return nil
	}
	var prevJournal []byte // nil: there was no record
	var newDirs []string   // directories the record needed, outermost first
	jf, err := journalFile(p.Root, p.Volume.Name)
	if err != nil {
		return err
	}
	if !p.undo {
		newDirs = missingDirs(p.Root, jf)
		b, err := readLimited(p.Root, jf)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		prevJournal = b
		if err := saveJournal(p); err != nil {
			return err
		}
	}
	var newBackups []string
	for i, c := range p.Changes {
		if bp := hostPath(p.Root, c.Path) + BackupSuffix; opts.Backup && c.Old != nil {
			if _, err := os.Lstat(bp); errors.Is(err, fs.ErrNotExist) {
				newBackups = append(newBackups, bp)
			}
		}
		if err := applyChange(p.Root, c, opts); err != nil {
			for _, d := range p.Changes[:i] {
				_ = applyChange(p.Root, Change{Path: d.Path, Old: d.New, New: d.Old, Mode: d.Mode, Dirs: d.Dirs}, ApplyOptions{})
			}
			for _, bp := range newBackups {
				_ = os.Remove(bp)
			}
			if !p.undo {
				if prevJournal == nil {
					_ = removeDurable(p.Root, jf)
					for i := len(newDirs) - 1; i >= 0; i-- {
						_ = removeEmptyDir(p.Root, newDirs[i])
					}
				} else {
					_ = writeAtomic(p.Root, jf, prevJournal, 0o600)
				}
			}
			return fmt.Errorf("%s: %w", c.Path, err)
		}
	}
	if p.undo {
		return p.finishUndo()
	}
	return nil
}

// Check reports why Apply would refuse, without writing anything: a file changed since
// the plan was made, or, for an undo plan, a line the applies edited that was changed
// again since (ErrConflict either way). A dry run uses it to say what Apply would do.
func (p *Plan) Check() error {
	if len(p.conflicts) > 0 {
		return p.conflicts[0]
	}
	for _, c := range p.Changes {
		if err := checkCurrent(p.Root, c.Path, c.Old); err != nil {
			return err
		}
	}
	return nil
}

func checkCurrent(root, p string, want []byte) error {
	fi, err := os.Lstat(hostPath(root, p))
	switch {
	case want == nil && errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", p, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s: no longer a regular file: %w", p, ErrConflict)
	case want == nil:
		return fmt.Errorf("%s: exists now: %w", p, ErrConflict)
	}
	cur, err := readLimited(root, p)
	var big *FileTooLargeError
	if errors.As(err, &big) {
		return err
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if !bytes.Equal(cur, want) {
		return fmt.Errorf("%s: %w", p, ErrConflict)
	}
	return nil
}

func applyChange(root string, c Change, opts ApplyOptions) error {
	if opts.Backup && c.Old != nil {
		if err := writeAtomic(root, c.Path+BackupSuffix, c.Old, c.Mode); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	if c.New == nil {
		if err := removeDurable(root, c.Path); err != nil {
			return err
		}
		for i := len(c.Dirs) - 1; i >= 0; i-- {
			if removeEmptyDir(root, c.Dirs[i]) != nil {
				break // not empty (or gone): leave it
			}
		}
		return nil
	}
	if c.Old == nil {
		if err := mkdirBeneath(root, path.Dir(c.Path), 0o755); err != nil {
			return err
		}
	}
	return writeAtomic(root, c.Path, c.New, c.Mode)
}
