package grubconf

import "strings"

// kernelArg is one kernel command-line argument as the kernel's next_arg splits it: the first '='
// outside nothing separates name and value, double quotes protect whitespace and are
// stripped from the name and value but not from Raw.
type kernelArg struct {
	Start, End int    // byte offsets of the raw token in the scanned string
	Raw        string // the token exactly as written
	Name       string
	Value      string
	HasValue   bool // a '=' was present (Value may still be empty)
}

// String renders the argument in its canonical form (name or name=value).
func (a kernelArg) String() string {
	if a.HasValue {
		return a.Name + "=" + a.Value
	}
	return a.Name
}

func isKernelSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// splitArgs tokenises a kernel command line the way the kernel (lib/cmdline.c next_arg)
// does: whitespace outside double quotes separates arguments; the first '=' splits name
// from value; a quote opening the whole argument or the value is removed with its partner.
func splitArgs(s string) []kernelArg {
	var out []kernelArg
	i := 0
	for {
		for i < len(s) && isKernelSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return out
		}
		start := i
		inQuote := false
		eq := -1
		for i < len(s) && (inQuote || !isKernelSpace(s[i])) {
			if eq < 0 && s[i] == '=' {
				eq = i
			}
			if s[i] == '"' {
				inQuote = !inQuote
			}
			i++
		}
		out = append(out, makeArg(s[start:i], start, eq-start))
	}
}

// parseKernelArg parses a single argument such as "rd.luks=0" or "rd_NO_LUKS".
func parseKernelArg(s string) kernelArg {
	s = strings.Trim(s, " \t\n\v\f\r")
	return makeArg(s, 0, strings.IndexByte(s, '='))
}

func makeArg(raw string, start, eq int) kernelArg {
	a := kernelArg{Start: start, End: start + len(raw), Raw: raw}
	body := raw
	quoted := false
	if strings.HasPrefix(body, `"`) {
		body = body[1:]
		quoted = true
		eq--
	}
	if eq < 0 {
		a.Name = body
		if quoted {
			a.Name = strings.TrimSuffix(a.Name, `"`)
		}
		return a
	}
	a.Name = body[:eq]
	a.HasValue = true
	v := body[eq+1:]
	if strings.HasPrefix(v, `"`) {
		v = v[1:]
		quoted = true
	}
	if quoted {
		v = strings.TrimSuffix(v, `"`)
	}
	a.Value = v
	return a
}

// textEdit replaces s[start:end] by text.
type textEdit struct {
	start, end int
	text       string
}

func applyEdits(s string, edits []textEdit) string {
	if len(edits) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, e := range edits {
		b.WriteString(s[last:e.start])
		b.WriteString(e.text)
		last = e.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// hasArg reports whether args (ignoring the first skip tokens) already carry want.
// A bare flag matches any token of the same name. A name=value argument is present when the
// last token of that name has that value, because dracut and the kernel let the last
// occurrence win.
func hasArg(args []kernelArg, skip int, want kernelArg) bool {
	found := false
	var last kernelArg
	for i, a := range args {
		if i < skip || a.Name != want.Name {
			continue
		}
		found = true
		last = a
	}
	if !found {
		return false
	}
	if !want.HasValue {
		return true
	}
	return last.HasValue && last.Value == want.Value
}

// addArgEdit plans the insertion of want after the last token of s (masked: offsets as in
// the original), or reports ok=false when it is already present. Whitespace after the last
// token (a trailing space, a newline) stays where it was.
func addArgEdit(masked string, skip int, want string) (textEdit, bool) {
	args := splitArgs(masked)
	w := parseKernelArg(want)
	if hasArg(args, skip, w) {
		return textEdit{}, false
	}
	if len(args) == 0 {
		return textEdit{start: 0, end: 0, text: want}, true
	}
	if strings.Count(args[len(args)-1].Raw, `"`)%2 == 1 {
		// The line ends inside an open quote: anything appended would become part of
		// the last argument. Callers see the argument missing and refuse.
		return textEdit{}, false
	}
	end := args[len(args)-1].End
	return textEdit{start: end, end: end, text: " " + want}, true
}

// removeArgEdits plans the removal of every token matching want (a bare name removes every
// token of that name; name=value only exact matches) together with the whitespace that
// separated it from the previous token, so removing what addArgEdit added restores the
// original string.
func removeArgEdits(masked string, skip int, want string) []textEdit {
	args := splitArgs(masked)
	w := parseKernelArg(want)
	var edits []textEdit
	leading := true // every token so far was removed: treat this one as the first
	for i, a := range args {
		match := i >= skip && a.Name == w.Name && (!w.HasValue || (a.HasValue && a.Value == w.Value))
		if !match {
			leading = false
			continue
		}
		switch {
		case !leading:
			edits = append(edits, textEdit{start: args[i-1].End, end: a.End})
		case i+1 < len(args):
			edits = append(edits, textEdit{start: a.Start, end: args[i+1].Start})
		default:
			edits = append(edits, textEdit{start: a.Start, end: a.End})
		}
	}
	return edits
}

// addCmdlineArg returns cmdline with arg appended after its last argument, or cmdline unchanged
// (changed=false) when arg is already in effect.
func addCmdlineArg(cmdline, arg string) (result string, changed bool) {
	e, ok := addArgEdit(cmdline, 0, arg)
	if !ok {
		return cmdline, false
	}
	return applyEdits(cmdline, []textEdit{e}), true
}

// removeCmdlineArg removes every occurrence of arg (bare name: all values) from cmdline.
func removeCmdlineArg(cmdline, arg string) (result string, changed bool) {
	edits := removeArgEdits(cmdline, 0, arg)
	if len(edits) == 0 {
		return cmdline, false
	}
	return applyEdits(cmdline, edits), true
}

// hasCmdlineArg reports whether arg is in effect on cmdline (see addCmdlineArg for the matching rule).
func hasCmdlineArg(cmdline, arg string) bool {
	return hasArg(splitArgs(cmdline), 0, parseKernelArg(arg))
}
