package grubconf

import (
	"sort"
	"strings"
)

// editFields returns the raw line with the given fields replaced (offsets stay valid
// because replacements are applied from the last field backwards).
func (l tableLine) editFields(repl map[int]string) []byte {
	idx := make([]int, 0, len(repl))
	for i := range repl {
		idx = append(idx, i)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(idx)))
	raw := append([]byte(nil), l.raw...)
	for _, i := range idx {
		f := l.fields[i]
		raw = append(raw[:f.start], append([]byte(repl[i]), raw[f.end:]...)...)
	}
	return raw
}

// addOptions appends the missing options of want to a comma-separated list.
func addOptions(list string, want ...string) (string, bool) {
	have := map[string]bool{}
	for _, o := range strings.Split(list, ",") {
		have[o] = true
	}
	changed := false
	for _, w := range want {
		if !have[w] {
			if list == "" {
				list = w
			} else {
				list += "," + w
			}
			have[w] = true
			changed = true
		}
	}
	return list, changed
}

func hasOptions(list string, want ...string) bool {
	_, changed := addOptions(list, want...)
	return !changed
}

// crypttab is /etc/crypttab kept byte for byte: "name device key options" lines, '#'
// comments (first non-blank character), blank lines.
type crypttab struct{ lines []tableLine }

// crypttabEntry is one active crypttab line.
type crypttabEntry struct {
	Name, Device, Key, Options string
	Line                       int // 1-based
}

// parseCrypttab keeps b verbatim.
func parseCrypttab(b []byte) *crypttab { return &crypttab{lines: parseTable(b)} }

// Bytes renders the file.
func (c *crypttab) Bytes() []byte { return joinTable(c.lines) }

// Entries lists the active (uncommented) lines.
func (c *crypttab) Entries() []crypttabEntry {
	var out []crypttabEntry
	for i, l := range c.lines {
		if l.comment || len(l.fields) == 0 {
			continue
		}
		e := crypttabEntry{Name: l.fields[0].text, Line: i + 1}
		if len(l.fields) > 1 {
			e.Device = l.fields[1].text
		}
		if len(l.fields) > 2 {
			e.Key = l.fields[2].text
		}
		if len(l.fields) > 3 {
			e.Options = l.fields[3].text
		}
		out = append(out, e)
	}
	return out
}

// IsLUKS reports whether the entry sets up a LUKS device (not a plain-mode swap or tmp
// device keyed from a random source).
func (e crypttabEntry) IsLUKS() bool {
	for _, o := range strings.Split(e.Options, ",") {
		switch o {
		case "plain", "swap", "tmp", "bitlk", "tcrypt":
			return false
		}
		if strings.HasPrefix(o, "tmp=") {
			return false
		}
	}
	return e.Key != "/dev/urandom" && e.Key != "/dev/random"
}

func (c *crypttab) matches(l tableLine, name string) bool {
	return !l.comment && len(l.fields) > 0 && l.fields[0].text == name
}

// DisableAuto adds noauto,nofail to the lines of volume name (systemd and Debian honour
// them) and drops Debian's initramfs option, which would unlock it in the initramfs. A line with no options field gets one (and "none" as key when that is missing).
func (c *crypttab) DisableAuto(name string) bool {
	changed := false
	for i, l := range c.lines {
		if !c.matches(l, name) {
			continue
		}
		sep := l.separatorBefore(1)
		switch len(l.fields) {
		case 1:
			continue // no device: not a usable line, leave it
		case 2:
			c.lines[i].raw = l.appendAfterLast(sep + "none" + sep + "noauto,nofail")
		case 3:
			c.lines[i].raw = l.appendAfterLast(sep + "noauto,nofail")
		default:
			opts, ch := addOptions(dropOption(l.fields[3].text, "initramfs"), "noauto", "nofail")
			if !ch && opts == l.fields[3].text {
				continue
			}
			c.lines[i].raw = l.editFields(map[int]string{3: opts})
		}
		c.lines[i] = parseTable(c.lines[i].raw)[0]
		changed = true
	}
	return changed
}

// CommentOut turns the lines of volume name into comments, for SysV init scripts that
// ignore noauto and would prompt for every listed LUKS device.
func (c *crypttab) CommentOut(name string) bool {
	changed := false
	for i, l := range c.lines {
		if c.matches(l, name) {
			c.lines[i] = parseTable(append([]byte("#"), l.raw...))[0]
			changed = true
		}
	}
	return changed
}

// Active reports whether an uncommented line for name exists, and whether all such lines
// carry noauto and nofail.
func (c *crypttab) Active(name string) (present, noauto bool) {
	noauto = true
	for _, e := range c.Entries() {
		if e.Name == name {
			present = true
			noauto = noauto && hasOptions(e.Options, "noauto", "nofail") && dropOption(e.Options, "initramfs") == e.Options
		}
	}
	return present, present && noauto
}

// fstab is /etc/fstab kept byte for byte.
type fstab struct{ lines []tableLine }

// fstabEntry is one active fstab line.
type fstabEntry struct {
	Spec, File, Type, Options, Freq, Pass string
	Line                                  int
}

// parseFstab keeps b verbatim.
func parseFstab(b []byte) *fstab { return &fstab{lines: parseTable(b)} }

// Bytes renders the file.
func (f *fstab) Bytes() []byte { return joinTable(f.lines) }

// Entries lists the active lines.
func (f *fstab) Entries() []fstabEntry {
	var out []fstabEntry
	for i, l := range f.lines {
		if l.comment || len(l.fields) == 0 {
			continue
		}
		var v [6]string
		for k := 0; k < len(l.fields) && k < 6; k++ {
			v[k] = l.fields[k].text
		}
		out = append(out, fstabEntry{Spec: v[0], File: v[1], Type: v[2], Options: v[3], Freq: v[4], Pass: v[5], Line: i + 1})
	}
	return out
}

// fstabEscape writes a mount point the way fstab does (octal escapes for blanks).
func fstabEscape(s string) string {
	r := strings.NewReplacer(" ", `\040`, "\t", `\011`, "\n", `\012`, `\`, `\134`)
	return r.Replace(s)
}

func (f *fstab) matches(l tableLine, spec, mountPoint string) bool {
	if l.comment || len(l.fields) < 2 {
		return false
	}
	return (spec != "" && l.fields[0].text == spec) ||
		(mountPoint != "" && l.fields[1].text == fstabEscape(mountPoint))
}

// DisableAuto adds noauto,nofail to the matching lines (device spec or mount point) and
// sets their fsck pass to 0.
func (f *fstab) DisableAuto(spec, mountPoint string) bool {
	changed := false
	for i, l := range f.lines {
		if !f.matches(l, spec, mountPoint) {
			continue
		}
		var raw []byte
		switch len(l.fields) {
		case 2:
			continue // no type: leave it
		case 3:
			raw = l.appendAfterLast(l.separatorBefore(2) + "noauto,nofail")
		default:
			repl := map[int]string{}
			if opts, ch := addOptions(l.fields[3].text, "noauto", "nofail"); ch {
				repl[3] = opts
			}
			if len(l.fields) > 5 && l.fields[5].text != "0" {
				repl[5] = "0"
			}
			if len(repl) == 0 {
				continue
			}
			raw = l.editFields(repl)
		}
		f.lines[i] = parseTable(raw)[0]
		changed = true
	}
	return changed
}

// Disabled reports whether matching lines exist and all carry noauto,nofail and pass 0.
func (f *fstab) Disabled(spec, mountPoint string) (present, disabled bool) {
	disabled = true
	for _, l := range f.lines {
		if !f.matches(l, spec, mountPoint) {
			continue
		}
		present = true
		opts, pass := "", "0"
		if len(l.fields) > 3 {
			opts = l.fields[3].text
		}
		if len(l.fields) > 5 {
			pass = l.fields[5].text
		}
		disabled = disabled && hasOptions(opts, "noauto", "nofail") && pass == "0"
	}
	return present, present && disabled
}

// dropOption removes every occurrence of opt from a comma-separated list.
func dropOption(list, opt string) string {
	parts := strings.Split(list, ",")
	out := parts[:0]
	for _, p := range parts {
		if p != opt {
			out = append(out, p)
		}
	}
	return strings.Join(out, ",")
}
