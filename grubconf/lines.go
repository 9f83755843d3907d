package grubconf

import "bytes"

// splitLines cuts b into physical lines, each keeping its terminator ("\n"; a preceding
// "\r" stays part of the line). The last line may lack a terminator. Concatenating the
// result gives b back exactly.
func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

// contentEnd returns the length of line without its terminator ("\n" or "\r\n").
func contentEnd(line []byte) int {
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
		if n > 0 && line[n-1] == '\r' {
			n--
		}
	}
	return n
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// field is one whitespace-separated field of a table line (crypttab, fstab).
type field struct {
	start, end int
	text       string
}

// tableLine is a parsed line of a whitespace-separated table file: comment and blank lines
// have no fields.
type tableLine struct {
	raw     []byte
	comment bool
	fields  []field
}

func parseTable(b []byte) []tableLine {
	var out []tableLine
	for _, raw := range splitLines(b) {
		tl := tableLine{raw: raw}
		n := contentEnd(raw)
		i := 0
		for i < n && isTableSpace(raw[i]) {
			i++
		}
		if i < n && raw[i] == '#' {
			tl.comment = true
		} else {
			for i < n {
				for i < n && isTableSpace(raw[i]) {
					i++
				}
				if i >= n {
					break
				}
				s := i
				for i < n && !isTableSpace(raw[i]) {
					i++
				}
				tl.fields = append(tl.fields, field{start: s, end: i, text: string(raw[s:i])})
			}
		}
		out = append(out, tl)
	}
	return out
}

func isTableSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

func joinTable(lines []tableLine) []byte {
	b := []byte{}
	for _, l := range lines {
		b = append(b, l.raw...)
	}
	return b
}

// separatorBefore returns the whitespace written before field i (or a single space).
func (l tableLine) separatorBefore(i int) string {
	if i > 0 && i < len(l.fields) {
		return string(l.raw[l.fields[i-1].end:l.fields[i].start])
	}
	if len(l.fields) > 1 {
		return string(l.raw[l.fields[0].end:l.fields[1].start])
	}
	return " "
}

// appendAfterLast returns raw with text inserted after the last field (before any trailing
// whitespace and the terminator).
func (l tableLine) appendAfterLast(text string) []byte {
	end := l.fields[len(l.fields)-1].end
	out := make([]byte, 0, len(l.raw)+len(text))
	out = append(out, l.raw[:end]...)
	out = append(out, text...)
	return append(out, l.raw[end:]...)
}
