package grubconf

import "strings"

// grubCfg is a generated GRUB 2 grub.cfg (grub2-mkconfig / update-grub output), edited in
// place so that a change takes effect at the next boot without regenerating it. Linux
// arguments live on linux, linux16 and linuxefi lines, and in multiboot (Xen) entries on
// the first module line after the multiboot line. Lines are kept byte for byte.
type grubCfg struct {
	lines []legacyLine
}

// parseGrubCfg keeps b verbatim.
func parseGrubCfg(b []byte) *grubCfg {
	lf := parseLegacy(b)
	g := &grubCfg{lines: lf.lines}
	entry := -1
	for i := range g.lines {
		switch g.lines[i].keyword {
		case "menuentry", "submenu":
			entry++
		}
		g.lines[i].entry = entry
	}
	return g
}

// Bytes renders the file.
func (g *grubCfg) Bytes() []byte { return (&legacyFile{lines: g.lines}).Bytes() }

func isLinuxCmd(k string) bool { return k == "linux" || k == "linux16" || k == "linuxefi" }

// targets lists the lines carrying Linux arguments.
func (g *grubCfg) targets() []int {
	var out []int
	multiboot := map[int]bool{}
	moduleDone := map[int]bool{}
	for i, l := range g.lines {
		switch {
		case isLinuxCmd(l.keyword):
			out = append(out, i)
		case l.keyword == "multiboot" || l.keyword == "multiboot2":
			multiboot[l.entry] = true
		case (l.keyword == "module" || l.keyword == "module2") && multiboot[l.entry] && !moduleDone[l.entry]:
			moduleDone[l.entry] = true
			out = append(out, i)
		}
	}
	return out
}

func (g *grubCfg) argRegion(l legacyLine) (int, int, bool) {
	args := splitArgs(l.masked[l.rest:])
	if len(args) == 0 {
		return 0, 0, false
	}
	skip := kernelSkip(args)
	if l.keyword == "module" || l.keyword == "module2" {
		// GRUB 2's Xen entries write "module /vmlinuz-… placeholder root=…".
		if skip < len(args) && args[skip].Raw == "placeholder" {
			skip++
		}
	}
	return l.rest, skip, true
}

func (g *grubCfg) edit(fn func(masked string, skip int) []textEdit) bool {
	changed := false
	for _, i := range g.targets() {
		l := &g.lines[i]
		if base, skip, ok := g.argRegion(*l); ok && l.editArgs(base, skip, fn) {
			changed = true
		}
	}
	return changed
}

// AddArg appends arg to every Linux command line in the file that lacks it.
func (g *grubCfg) AddArg(arg string) bool {
	return g.edit(func(m string, skip int) []textEdit {
		if e, ok := addArgEdit(m, skip, arg); ok {
			return []textEdit{e}
		}
		return nil
	})
}

// RemoveArg removes arg from every Linux command line.
func (g *grubCfg) RemoveArg(arg string) bool {
	return g.edit(func(m string, skip int) []textEdit { return removeArgEdits(m, skip, arg) })
}

// Cmdlines returns the Linux command lines (after the image path).
func (g *grubCfg) Cmdlines() []string {
	var out []string
	for _, i := range g.targets() {
		l := g.lines[i]
		base, skip, ok := g.argRegion(l)
		if !ok {
			continue
		}
		args := splitArgs(l.masked[base:])
		if skip < len(args) {
			out = append(out, strings.TrimRight(l.masked[base+args[skip].Start:], " \t"))
		} else {
			out = append(out, "")
		}
	}
	return out
}

// HasArg reports whether every Linux command line carries arg (true for a file without
// any, e.g. one that only loads BLS entries).
func (g *grubCfg) HasArg(arg string) bool {
	for _, c := range g.Cmdlines() {
		if !hasCmdlineArg(c, arg) {
			return false
		}
	}
	return true
}
