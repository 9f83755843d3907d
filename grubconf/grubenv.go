package grubconf

import (
	"bytes"
	"fmt"
	"strings"
)

// grubenvSize is the size GRUB gives a new environment block (grub-editenv create).
const grubenvSize = 1024

const grubenvSignature = "# GRUB Environment Block\n"

// grubenv is a GRUB environment block (/boot/grub2/grubenv): the signature line, then
// name=value lines, padded with '#' to a fixed size. GRUB escapes '\' and newline in values
// with a backslash. Edits keep the file's size by taking from or giving to the padding.
type grubenv struct {
	raw []byte
}

type envVar struct {
	name, value string
	start, end  int // the whole line including its newline
}

// parseGrubenv keeps b verbatim; Bytes returns it unchanged until Set is called.
func parseGrubenv(b []byte) *grubenv { return &grubenv{raw: append([]byte{}, b...)} }

// Bytes renders the block.
func (g *grubenv) Bytes() []byte { return append([]byte{}, g.raw...) }

// Valid reports whether the block starts with GRUB's signature.
func (g *grubenv) Valid() bool { return bytes.HasPrefix(g.raw, []byte(grubenvSignature)) }

func (g *grubenv) vars() []envVar {
	if !g.Valid() {
		return nil
	}
	var out []envVar
	i := len(grubenvSignature)
	for i < len(g.raw) {
		start := i
		var line strings.Builder
		for i < len(g.raw) && g.raw[i] != '\n' {
			if g.raw[i] == '\\' && i+1 < len(g.raw) {
				i++
			}
			line.WriteByte(g.raw[i])
			i++
		}
		if i < len(g.raw) {
			i++ // newline
		}
		l := line.String()
		if strings.HasPrefix(l, "#") {
			continue
		}
		name, value, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		out = append(out, envVar{name: name, value: value, start: start, end: i})
	}
	return out
}

// Get returns the value of name.
func (g *grubenv) Get(name string) (string, bool) {
	for _, v := range g.vars() {
		if v.name == name {
			return v.value, true
		}
	}
	return "", false
}

func escapeGrubenv(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' || s[i] == '\n' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Set replaces the value of an existing variable, or adds it before the padding, keeping
// the block's size. It fails with ErrBadGrubenv on a file without the signature or without
// a '#' padding run at its end, and with ErrGrubenvOverflow when the padding is too short.
func (g *grubenv) Set(name, value string) error {
	if !g.Valid() {
		return ErrBadGrubenv
	}
	line := name + "=" + escapeGrubenv(value) + "\n"
	// The padding is the final run of '#'; a copy saved by a text editor may carry a
	// newline after it, which stays where it is. A block whose padding an earlier Set used
	// up ends in a variable's newline; if that value ends in '#', the editor reading fails
	// and the block is read as one without padding.
	padEnd, pad := grubenvPadding(g.raw, true)
	if !lineEndsAt(g.raw, pad) {
		padEnd, pad = grubenvPadding(g.raw, false)
	}
	if !lineEndsAt(g.raw, pad) {
		return fmt.Errorf("no padding at the end: %w", ErrBadGrubenv)
	}
	start, end := pad, pad
	for _, v := range g.vars() {
		if v.name == name && v.end <= pad {
			start, end = v.start, v.end
			break
		}
	}
	delta := len(line) - (end - start)
	if delta > padEnd-pad {
		return fmt.Errorf("%s needs %d more bytes, %d bytes of padding left: %w", name, delta, padEnd-pad, ErrGrubenvOverflow)
	}
	out := make([]byte, 0, len(g.raw))
	out = append(out, g.raw[:start]...)
	out = append(out, line...)
	out = append(out, g.raw[end:pad]...)
	for len(out) < padEnd {
		out = append(out, '#')
	}
	g.raw = append(out, g.raw[padEnd:]...)
	return nil
}

// grubenvPadding returns the end of the padding run (before an editor's final newline when
// editorNewline allows one) and its start.
func grubenvPadding(raw []byte, editorNewline bool) (padEnd, pad int) {
	padEnd = len(raw)
	if editorNewline && padEnd > 1 && raw[padEnd-1] == '\n' && raw[padEnd-2] == '#' {
		padEnd--
	}
	pad = padEnd
	for pad > 0 && raw[pad-1] == '#' {
		pad--
	}
	return padEnd, pad
}

// lineEndsAt reports whether raw[pad-1] is a newline that ends a line (not one escaped by
// an odd run of backslashes, which belongs to a value running to the end of the block).
func lineEndsAt(raw []byte, pad int) bool {
	if pad < len(grubenvSignature) || raw[pad-1] != '\n' {
		return false
	}
	n := 0
	for i := pad - 2; i >= len(grubenvSignature) && raw[i] == '\\'; i-- {
		n++
	}
	return n%2 == 0
}
