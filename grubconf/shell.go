package grubconf

import (
	"fmt"
	"strings"
)

// shellFile is a POSIX shell variable file such as /etc/default/grub or a
// /etc/default/grub.d/*.cfg drop-in, kept byte for byte. It understands enough of the
// shell grammar to find top-level assignments (NAME=word, export NAME=word) and to decode
// their values: '…', "…" (with \$ \` \" \\ and backslash-newline), unquoted words with
// backslash escapes, $NAME and ${NAME}. Command substitutions (`…`, $(…)) and other
// expansions are kept but marked opaque.
type shellFile struct {
	raw     string
	assigns []assignment
}

// assignment is one NAME=value word found at the start of a simple command.
type assignment struct {
	Name             string
	Start            int // offset of NAME
	ValStart, ValEnd int // the raw value word
	Line             int // 1-based line of NAME
}

// parseShell parses b. It accepts any input; Bytes returns it unchanged.
func parseShell(b []byte) *shellFile {
	f := &shellFile{raw: string(b)}
	f.scan()
	return f
}

// Bytes renders the file.
func (f *shellFile) Bytes() []byte { return append([]byte{}, f.raw...) }

// Assignments lists the top-level assignments in file order.
func (f *shellFile) Assignments() []assignment { return append([]assignment(nil), f.assigns...) }

// RawValue returns the value word of a as written.
func (f *shellFile) RawValue(a assignment) string { return f.raw[a.ValStart:a.ValEnd] }

var reservedWords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true, "do": true, "done": true,
	"while": true, "until": true, "for": true, "case": true, "esac": true, "{": true, "}": true,
	"!": true, "in": true,
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameChar(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }

// assignmentName returns the NAME of a NAME=… word, if it is one.
func assignmentName(word string) (string, bool) {
	if word == "" || !isNameStart(word[0]) {
		return "", false
	}
	i := 1
	for i < len(word) && isNameChar(word[i]) {
		i++
	}
	if i < len(word) && word[i] == '=' {
		return word[:i], true
	}
	return "", false
}

func (f *shellFile) scan() {
	s := f.raw
	n := len(s)
	line := 1
	cmdStart := true // the next word starts a simple command
	prefix := false  // still in the assignment prefix of a command, or after export
	i := 0
	for i < n {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
			continue
		case c == '\\' && i+1 < n && s[i+1] == '\n':
			i += 2
			line++
			continue
		case c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')':
			if c == '\n' {
				line++
			}
			cmdStart, prefix = true, false
			i++
			continue
		case c == '#':
			for i < n && s[i] != '\n' {
				i++
			}
			continue
		}
		end := scanWord(s, i)
		if end <= i {
			end = i + 1
		}
		word := s[i:end]
		switch {
		case cmdStart && reservedWords[word]:
			// stay at command start
		case cmdStart || prefix:
			if name, ok := assignmentName(word); ok {
				f.assigns = append(f.assigns, assignment{Name: name, Start: i, ValStart: i + len(name) + 1, ValEnd: end, Line: line})
				prefix = true
			} else {
				prefix = word == "export" || word == "readonly" || word == "local"
			}
			cmdStart = false
		}
		line += strings.Count(word, "\n")
		i = end
	}
}

// scanWord returns the end of the shell word starting at i.
func scanWord(s string, i int) int {
	n := len(s)
	for i < n {
		switch c := s[i]; c {
		case ' ', '\t', '\n', ';', '&', '|', '<', '>', '(', ')':
			return i
		case '\\':
			i += 2
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return n
			}
			i += j + 2
		case '"':
			i = scanDquote(s, i+1)
		case '`':
			i = scanBackquote(s, i+1)
		case '$':
			i = scanDollar(s, i)
		default:
			i++
		}
	}
	return n
}

// scanDquote returns the offset after the closing quote of a "…" whose body starts at i.
func scanDquote(s string, i int) int {
	n := len(s)
	for i < n {
		switch s[i] {
		case '"':
			return i + 1
		case '\\':
			i += 2
		case '`':
			i = scanBackquote(s, i+1)
		case '$':
			i = scanDollar(s, i)
		default:
			i++
		}
	}
	return n
}

func scanBackquote(s string, i int) int {
	n := len(s)
	for i < n {
		switch s[i] {
		case '`':
			return i + 1
		case '\\':
			i += 2
		default:
			i++
		}
	}
	return n
}

// scanDollar returns the end of the expansion starting with the '$' at i.
func scanDollar(s string, i int) int {
	n := len(s)
	if i+1 >= n {
		return n
	}
	switch s[i+1] {
	case '(':
		depth := 0
		j := i + 1
		for j < n {
			switch s[j] {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					return j + 1
				}
			case '\\':
				j++
			case '\'':
				k := strings.IndexByte(s[j+1:], '\'')
				if k < 0 {
					return n
				}
				j += k + 1
			}
			j++
		}
		return n
	case '{':
		k := strings.IndexByte(s[i+2:], '}')
		if k < 0 {
			return n
		}
		return i + 2 + k + 1
	}
	j := i + 1
	for j < n && isNameChar(s[j]) {
		j++
	}
	if j == i+1 {
		return i + 1
	}
	return j
}

// dchar is one byte of a decoded value and where it came from.
type dchar struct {
	raw, rawLen int  // raw span (for expansions: the whole $NAME text)
	ctx         byte // 'u' unquoted, 's' single-quoted, 'd' double-quoted
	exp         bool // produced by an expansion or a command substitution
}

type decoded struct {
	val    string
	chars  []dchar
	opaque bool // contains a command substitution or an expansion we cannot evaluate
}

// decodeWord decodes the assignment value s[start:end] with variables from env.
func decodeWord(s string, start, end int, env map[string]string) decoded {
	var d decoded
	var b strings.Builder
	add := func(c byte, raw, rawLen int, ctx byte, exp bool) {
		b.WriteByte(c)
		d.chars = append(d.chars, dchar{raw: raw, rawLen: rawLen, ctx: ctx, exp: exp})
	}
	expand := func(j int, ctx byte) int {
		e := scanDollar(s[:end], j)
		text := s[j:e]
		var name string
		switch {
		case e == j+1:
			add('$', j, 1, ctx, false)
			return e
		case strings.HasPrefix(text, "${") && strings.HasSuffix(text, "}"):
			name = text[2 : len(text)-1]
		case strings.HasPrefix(text, "$("):
			name = ""
		default:
			name = text[1:]
		}
		if name == "" || !validName(name) {
			d.opaque = true
			add(0, j, e-j, ctx, true)
			return e
		}
		v := env[name]
		for k := 0; k < len(v); k++ {
			add(v[k], j, e-j, ctx, true)
		}
		return e
	}
	j := start
	for j < end {
		c := s[j]
		switch c {
		case '\\':
			if j+1 < end && s[j+1] == '\n' {
				j += 2
				continue
			}
			if j+1 < end {
				add(s[j+1], j, 2, 'u', false)
				j += 2
				continue
			}
			add('\\', j, 1, 'u', false)
			j++
		case '\'':
			k := j + 1
			for k < end && s[k] != '\'' {
				add(s[k], k, 1, 's', false)
				k++
			}
			j = k + 1
		case '"':
			k := j + 1
			for k < end && s[k] != '"' {
				switch s[k] {
				case '\\':
					if k+1 < end && s[k+1] == '\n' {
						k += 2
						continue
					}
					if k+1 < end && strings.IndexByte("$`\"\\", s[k+1]) >= 0 {
						add(s[k+1], k, 2, 'd', false)
						k += 2
						continue
					}
					add('\\', k, 1, 'd', false)
					k++
				case '$':
					k = expand(k, 'd')
				case '`':
					e := scanBackquote(s[:end], k+1)
					d.opaque = true
					add(0, k, e-k, 'd', true)
					k = e
				default:
					add(s[k], k, 1, 'd', false)
					k++
				}
			}
			j = k + 1
		case '$':
			j = expand(j, 'u')
		case '`':
			e := scanBackquote(s[:end], j+1)
			d.opaque = true
			add(0, j, e-j, 'u', true)
			j = e
		default:
			add(c, j, 1, 'u', false)
			j++
		}
	}
	d.val = b.String()
	return d
}

func validName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

// quoteFor encodes text so that it reads back as itself in quoting context ctx.
func quoteFor(text string, ctx byte) string {
	var b strings.Builder
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch ctx {
		case 'd':
			if strings.IndexByte("$`\"\\", c) >= 0 {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		case 's':
			if c == '\'' {
				b.WriteString(`'\''`)
			} else {
				b.WriteByte(c)
			}
		default:
			if !(isNameChar(c) || strings.IndexByte(".,=/+:@%^-", c) >= 0) {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Eval runs the file's assignments in order on a copy of env (nil = empty) and returns the
// resulting variables. Values holding command substitutions contain a NUL placeholder.
func (f *shellFile) Eval(env map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	for _, a := range f.assigns {
		out[a.Name] = decodeWord(f.raw, a.ValStart, a.ValEnd, out).val
	}
	return out
}

// envBefore evaluates the assignments before index idx.
func (f *shellFile) envBefore(idx int, env map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	for _, a := range f.assigns[:idx] {
		out[a.Name] = decodeWord(f.raw, a.ValStart, a.ValEnd, out).val
	}
	return out
}

func (f *shellFile) lastIndex(name string) int {
	for i := len(f.assigns) - 1; i >= 0; i-- {
		if f.assigns[i].Name == name {
			return i
		}
	}
	return -1
}

func (f *shellFile) replace(start, end int, text string) {
	f.raw = f.raw[:start] + text + f.raw[end:]
	f.assigns = nil
	f.scan()
}

// AddArg makes the kernel argument arg part of variable name: the last assignment of name
// is edited in its own quoting style, or `name="arg"` is appended when the file does not
// assign it. env holds the variables set before this file is sourced (for $NAME inside
// the value). It reports whether the file changed.
func (f *shellFile) AddArg(name, arg string, env map[string]string) (bool, error) {
	orig := f.raw
	changed, err := f.addArg(name, arg, env)
	if err != nil || !changed {
		return changed, err
	}
	// Check the result the way the shell will read it: the last assignment must now
	// carry the argument (a trailing backslash-newline or an open quote before an
	// appended line would swallow it).
	if idx := f.lastIndex(name); idx < 0 || !hasCmdlineArg(decodeWord(f.raw, f.assigns[idx].ValStart, f.assigns[idx].ValEnd, f.envBefore(idx, env)).val, arg) {
		f.raw = orig
		f.assigns = nil
		f.scan()
		return false, fmt.Errorf("%s: %q: %w", name, arg, ErrUnsupported)
	}
	return true, nil
}

func (f *shellFile) addArg(name, arg string, env map[string]string) (bool, error) {
	idx := f.lastIndex(name)
	if idx < 0 {
		if cur, ok := env[name]; ok && hasCmdlineArg(cur, arg) {
			return false, nil
		}
		prefix := ""
		if f.raw != "" && !strings.HasSuffix(f.raw, "\n") {
			prefix = "\n"
		}
		f.replace(len(f.raw), len(f.raw), prefix+name+`="`+quoteFor(arg, 'd')+"\"\n")
		return true, nil
	}
	a := f.assigns[idx]
	d := decodeWord(f.raw, a.ValStart, a.ValEnd, f.envBefore(idx, env))
	e, ok := addArgEdit(d.val, 0, arg)
	if !ok {
		return false, nil
	}
	pos, ctx := a.ValStart, byte('u')
	if e.start > 0 {
		c := d.chars[e.start-1]
		pos, ctx = c.raw+c.rawLen, c.ctx
	} else if len(d.chars) > 0 {
		pos, ctx = d.chars[0].raw, d.chars[0].ctx
	} else if a.ValEnd > a.ValStart && (f.raw[a.ValStart] == '"' || f.raw[a.ValStart] == '\'') {
		pos, ctx = a.ValStart+1, 'd'
		if f.raw[a.ValStart] == '\'' {
			ctx = 's'
		}
	}
	text := e.text
	if e.start == 0 && strings.ContainsAny(f.raw[a.ValStart:a.ValEnd], "$`") {
		// No argument yet, but an expansion that is empty now could carry some later:
		// keep a blank between them.
		text += " "
	}
	f.replace(pos, pos, quoteFor(text, ctx))
	return true, nil
}

// RemoveArg removes arg from the last assignment of name. Tokens that straddle quoting
// contexts or come from expansions cannot be removed in place and yield ErrUnsupported.
func (f *shellFile) RemoveArg(name, arg string, env map[string]string) (bool, error) {
	idx := f.lastIndex(name)
	if idx < 0 {
		return false, nil
	}
	a := f.assigns[idx]
	d := decodeWord(f.raw, a.ValStart, a.ValEnd, f.envBefore(idx, env))
	edits := removeArgEdits(d.val, 0, arg)
	if len(edits) == 0 {
		return false, nil
	}
	// Apply from the end so earlier raw offsets stay valid.
	raw := f.raw
	for k := len(edits) - 1; k >= 0; k-- {
		e := edits[k]
		if e.start == e.end {
			continue
		}
		first, last := d.chars[e.start], d.chars[e.end-1]
		rawStart, rawEnd := first.raw, last.raw+last.rawLen
		sum := 0
		for _, c := range d.chars[e.start:e.end] {
			if c.exp || c.ctx != first.ctx {
				return false, fmt.Errorf("%s: %q: %w", name, arg, ErrUnsupported)
			}
			sum += c.rawLen
		}
		if sum != rawEnd-rawStart {
			return false, fmt.Errorf("%s: %q: %w", name, arg, ErrUnsupported)
		}
		raw = raw[:rawStart] + raw[rawEnd:]
	}
	f.raw = raw
	f.assigns = nil
	f.scan()
	return true, nil
}
