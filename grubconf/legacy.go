package grubconf

import "strings"

// legacyFile is a GRUB 0.97 grub.conf / menu.lst kept as its original lines, so that
// Bytes returns the input unchanged until an edit touches a line, and then only that line.
type legacyFile struct {
	lines []legacyLine
}

type legacyLine struct {
	raw     []byte
	masked  string // raw with backslash-newline joins and CRs blanked (same length)
	end     int    // end of content (before the final terminator)
	comment bool
	keyword string // lower-case command word ("" for comments and blank lines)
	rest    int    // offset of the first argument after the command word and separators
	entry   int    // index of the title stanza this line belongs to; -1 before the first
}

// legacyEntry describes one `title` stanza.
type legacyEntry struct {
	Index     int
	Title     string
	Kernel    string // the kernel path ("" if the entry has no kernel line, e.g. chainloader)
	Multiboot bool   // kernel + module lines: Linux arguments live on the first module line
	Cmdline   string // the Linux command line of the entry (after the path)
}

// parseLegacy parses a legacy GRUB configuration. It accepts any input: whatever is not
// understood is kept verbatim.
func parseLegacy(b []byte) *legacyFile {
	f := &legacyFile{}
	phys := splitLines(b)
	entry := -1
	for i := 0; i < len(phys); i++ {
		raw := phys[i]
		// GRUB joins a line ending in a backslash with the next one.
		for i+1 < len(phys) && endsWithContinuation(raw) {
			i++
			raw = append(append([]byte(nil), raw...), phys[i]...)
		}
		l := parseLegacyLine(raw)
		if l.keyword == "title" {
			entry++
		}
		l.entry = entry
		f.lines = append(f.lines, l)
	}
	return f
}

func endsWithContinuation(line []byte) bool {
	n := contentEnd(line)
	return n < len(line) && n > 0 && line[n-1] == '\\'
}

func parseLegacyLine(raw []byte) legacyLine {
	l := legacyLine{raw: raw, end: contentEnd(raw)}
	m := []byte(string(raw[:l.end]))
	for j := 0; j < len(m); j++ {
		switch {
		case m[j] == '\r':
			m[j] = ' '
		case m[j] == '\\' && j+1 < len(m) && m[j+1] == '\n':
			m[j], m[j+1] = ' ', ' '
		case m[j] == '\\' && j+2 < len(m) && m[j+1] == '\r' && m[j+2] == '\n':
			m[j], m[j+1], m[j+2] = ' ', ' ', ' '
		case m[j] == '\n':
			m[j] = ' '
		}
	}
	l.masked = string(m)
	i := 0
	for i < len(m) && (isBlank(m[i]) || m[i] == ' ') {
		i++
	}
	if i < len(m) && m[i] == '#' {
		l.comment = true
		return l
	}
	s := i
	for i < len(m) && !isBlank(m[i]) && m[i] != '=' {
		i++
	}
	l.keyword = strings.ToLower(string(m[s:i]))
	for i < len(m) && (isBlank(m[i]) || m[i] == '=') {
		i++
	}
	l.rest = i
	return l
}

// Bytes renders the file.
func (f *legacyFile) Bytes() []byte {
	b := []byte{}
	for _, l := range f.lines {
		b = append(b, l.raw...)
	}
	return b
}

// argLine reports where the Linux arguments of line l start: the number of leading tokens
// of l's argument string (options and the path) that are not kernel arguments.
func kernelSkip(args []kernelArg) int {
	skip := 0
	for skip < len(args) && strings.HasPrefix(args[skip].Raw, "--") {
		skip++
	}
	if skip < len(args) {
		skip++ // the image path
	}
	return skip
}

// targets returns, per entry, the index of the line that carries the Linux arguments.
func (f *legacyFile) targets() map[int]int {
	kernel := map[int]int{}
	module := map[int]int{}
	for i, l := range f.lines {
		if l.entry < 0 {
			continue
		}
		switch l.keyword {
		case "kernel":
			if _, ok := kernel[l.entry]; !ok {
				kernel[l.entry] = i
			}
		case "module", "modulenounzip":
			if _, ok := module[l.entry]; !ok {
				module[l.entry] = i
			}
		}
	}
	out := map[int]int{}
	for e, i := range kernel {
		if m, ok := module[e]; ok && m > i {
			out[e] = m
		} else {
			out[e] = i
		}
	}
	return out
}

// Entries lists the title stanzas.
func (f *legacyFile) Entries() []legacyEntry {
	var out []legacyEntry
	tg := f.targets()
	for i, l := range f.lines {
		if l.keyword != "title" {
			continue
		}
		e := legacyEntry{Index: l.entry, Title: strings.TrimRight(l.masked[l.rest:], " \t")}
		for _, k := range f.lines[i+1:] {
			if k.entry != l.entry {
				break
			}
			if k.keyword == "kernel" && e.Kernel == "" {
				if args := splitArgs(k.masked[k.rest:]); len(args) > 0 {
					e.Kernel = args[kernelSkip(args)-1].Raw
				}
			}
			if k.keyword == "module" || k.keyword == "modulenounzip" {
				e.Multiboot = true
			}
		}
		if t, ok := tg[l.entry]; ok {
			e.Cmdline = f.lines[t].cmdline()
		}
		out = append(out, e)
	}
	return out
}

// cmdline returns the kernel arguments of a kernel/module line or a kopt comment.
func (l legacyLine) cmdline() string {
	base, skip, ok := l.argRegion()
	if !ok {
		return ""
	}
	args := splitArgs(l.masked[base:])
	if skip >= len(args) {
		return ""
	}
	return strings.TrimRight(l.masked[base+args[skip].Start:], " \t")
}

// argRegion returns where the argument tokens of an editable line start and how many
// leading tokens are not kernel arguments.
func (l legacyLine) argRegion() (base, skip int, ok bool) {
	switch {
	case l.keyword == "kernel" || l.keyword == "module" || l.keyword == "modulenounzip":
		args := splitArgs(l.masked[l.rest:])
		if len(args) == 0 {
			return 0, 0, false
		}
		skip := kernelSkip(args)
		if strings.HasPrefix(args[skip-1].Raw, "--") {
			// Options but no image path ("kernel --"): an argument appended here would be
			// read as the image. GRUB cannot boot such an entry anyway; leave it alone.
			return 0, 0, false
		}
		return l.rest, skip, true
	case l.comment:
		if v, ok := koptValue(l.masked); ok {
			return v, 0, true
		}
	}
	return 0, 0, false
}

// koptValue finds the value of a Debian "# kopt=" magic comment (exactly one '#', as
// update-grub writes it; "## kopt=" lines are the commented examples).
func koptValue(s string) (int, bool) {
	i := 0
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	if i >= len(s) || s[i] != '#' {
		return 0, false
	}
	i++
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	if !strings.HasPrefix(s[i:], "kopt=") {
		return 0, false
	}
	return i + len("kopt="), true
}

// selected reports whether entry e is chosen (no choice = all entries).
func selected(e int, entries []int) bool {
	if len(entries) == 0 {
		return true
	}
	for _, x := range entries {
		if x == e {
			return true
		}
	}
	return false
}

// editLines applies fn to the argument line of each chosen entry (and to "# kopt=" lines
// when all entries are chosen) and reports whether anything changed.
func (f *legacyFile) editLines(entries []int, fn func(masked string, skip int) []textEdit) bool {
	tg := f.targets()
	changed := false
	for i := range f.lines {
		l := &f.lines[i]
		editable := false
		if l.comment {
			_, editable = koptValue(l.masked)
			editable = editable && len(entries) == 0
		} else if t, ok := tg[l.entry]; ok && t == i && selected(l.entry, entries) {
			editable = true
		}
		if !editable {
			continue
		}
		if base, skip, ok := l.argRegion(); ok && l.editArgs(base, skip, fn) {
			changed = true
		}
	}
	return changed
}

// editArgs applies fn to the arguments of l that start at byte base (skip leading words
// being the image path and the like), then reparses the edited line in place. The entry
// number is kept: it depends on the lines before this one, which a reparse cannot see.
// It reports whether fn asked for any edit.
func (l *legacyLine) editArgs(base, skip int, fn func(masked string, skip int) []textEdit) bool {
	edits := fn(l.masked[base:], skip)
	if len(edits) == 0 {
		return false
	}
	for k := range edits {
		edits[k].start += base
		edits[k].end += base
	}
	content := applyEdits(string(l.raw[:l.end]), edits)
	entry := l.entry
	*l = parseLegacyLine(append([]byte(content), l.raw[l.end:]...))
	l.entry = entry
	return true
}

// AddArg appends arg to the Linux command line of the chosen entries (all when none are
// given): the kernel line, or the first module line of multiboot (Xen) entries, plus the
// Debian "# kopt=" line when editing all entries. Entries that already carry it are left
// alone.
func (f *legacyFile) AddArg(arg string, entries ...int) bool {
	return f.editLines(entries, func(m string, skip int) []textEdit {
		if e, ok := addArgEdit(m, skip, arg); ok {
			return []textEdit{e}
		}
		return nil
	})
}

// RemoveArg removes arg from the chosen entries (see AddArg).
func (f *legacyFile) RemoveArg(arg string, entries ...int) bool {
	return f.editLines(entries, func(m string, skip int) []textEdit {
		return removeArgEdits(m, skip, arg)
	})
}

// Cmdlines returns every kernel command line in the file (entries and kopt), for checks
// such as "is the root file system on LUKS".
func (f *legacyFile) Cmdlines() []string {
	var out []string
	tg := f.targets()
	for i, l := range f.lines {
		if t, ok := tg[l.entry]; ok && t == i {
			out = append(out, l.cmdline())
		} else if l.comment {
			if _, ok := koptValue(l.masked); ok {
				out = append(out, l.cmdline())
			}
		}
	}
	return out
}

// HasArg reports whether every entry with a kernel line (and every kopt line) has arg.
func (f *legacyFile) HasArg(arg string) bool {
	for _, c := range f.Cmdlines() {
		if !hasCmdlineArg(c, arg) {
			return false
		}
	}
	return true
}
