package config

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
)

// lineIndex maps key paths to the line that sets them, for error messages: the TOML decoder
// reports lines for syntax errors only, not for a key it did not use or a value this package
// refuses. Paths come in two forms, "target[1].ssh.user" (what validate names) and
// "target.ssh.user" (what the decoder's Undecoded names, first occurrence).
type lineIndex map[string]int

// find is the line of key, else of its closest parent, else 1.
func (l lineIndex) find(key string) int {
	for key != "" {
		if n, ok := l[key]; ok {
			return n
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 1
}

func (l lineIndex) add(path string, line int) {
	if _, ok := l[path]; !ok {
		l[path] = line
	}
	if plain := reIndex.ReplaceAllString(path, ""); plain != path {
		if _, ok := l[plain]; !ok {
			l[plain] = line
		}
	}
}

var (
	reIndex     = regexp.MustCompile(`\[[0-9]+\]`)
	reInlineKey = regexp.MustCompile(`([A-Za-z0-9_-]+|"[^"]*")\s*=`)
)

// keyLines scans data line by line: table headers, "key = value" lines and the keys of
// one-line inline tables. It is not a TOML parser (the decoder has already accepted or
// refused the file); it only needs to be right for files the decoder accepts.
func keyLines(data []byte) lineIndex {
	idx := lineIndex{}
	arrays := map[string]int{} // array-of-tables path (indexed parents) → tables seen
	table := ""
	inString := "" // the closing delimiter of a multi-line string being skipped
	depth := 0     // open brackets of a multi-line array being skipped
	for n, raw := range bytes.Split(data, []byte("\n")) {
		line := strings.TrimSpace(string(raw))
		lineNo := n + 1
		if inString != "" {
			if strings.Contains(line, inString) {
				inString = ""
			}
			continue
		}
		if depth > 0 {
			depth += bracketDelta(line)
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.HasPrefix(line, "[[") {
			name := indexed(splitKey(strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(cutComment(line), "[[")), "]]")), arrays)
			i := arrays[name]
			arrays[name] = i + 1
			table = name + "[" + strconv.Itoa(i) + "]"
			idx.add(table, lineNo)
			continue
		}
		if line[0] == '[' {
			table = indexed(splitKey(strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(cutComment(line), "[")), "]")), arrays)
			idx.add(table, lineNo)
			continue
		}
		eq := keyEnd(line)
		if eq < 0 {
			continue
		}
		path := join(table, strings.Join(splitKey(line[:eq]), "."))
		idx.add(path, lineNo)
		value := strings.TrimSpace(line[eq+1:])
		switch {
		case strings.HasPrefix(value, `"""`) && !strings.Contains(value[3:], `"""`):
			inString = `"""`
		case strings.HasPrefix(value, "'''") && !strings.Contains(value[3:], "'''"):
			inString = "'''"
		case strings.HasPrefix(value, "["):
			depth = bracketDelta(value)
		case strings.HasPrefix(value, "{"):
			for _, m := range reInlineKey.FindAllStringSubmatch(value, -1) {
				idx.add(path+"."+strings.Trim(m[1], `"`), lineNo)
			}
		}
	}
	return idx
}

// indexed turns a header's pieces into a path whose array-of-tables parents carry the index
// of their latest table: [target.ssh] after the second [[target]] is target[1].ssh.
func indexed(pieces []string, arrays map[string]int) string {
	path := ""
	for i, p := range pieces {
		path = join(path, p)
		if n, ok := arrays[path]; ok && i < len(pieces)-1 {
			path += "[" + strconv.Itoa(n-1) + "]"
		}
	}
	return path
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

func splitKey(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ".") {
		out = append(out, strings.Trim(strings.TrimSpace(p), `"'`))
	}
	return out
}

// keyEnd is the index of the '=' that ends a line's key, outside quotes; -1 if none.
func keyEnd(line string) int {
	quote := byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'':
			quote = c
		case c == '=':
			return i
		}
	}
	return -1
}

func cutComment(line string) string {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		return strings.TrimSpace(line[:i])
	}
	return line
}

// bracketDelta counts '[' minus ']' outside strings and comments.
func bracketDelta(s string) int {
	d, quote := 0, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == '\\' && quote == '"':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return d
		case c == '[':
			d++
		case c == ']':
			d--
		}
	}
	return d
}
