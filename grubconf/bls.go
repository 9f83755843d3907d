package grubconf

import (
	"bytes"
	"strings"
)

// blsEntry is a Boot Loader Specification entry (/boot/loader/entries/*.conf): one
// "key value" per line. Only options lines are edited; everything else stays as written.
type blsEntry struct {
	lines [][]byte
}

// parseBLS keeps b verbatim.
func parseBLS(b []byte) *blsEntry { return &blsEntry{lines: splitLines(b)} }

// Bytes renders the entry.
func (e *blsEntry) Bytes() []byte { return append([]byte{}, bytes.Join(e.lines, nil)...) }

// blsKey returns the key of line l and where its value starts.
func blsKey(l []byte) (key string, val int) {
	n := contentEnd(l)
	i := 0
	for i < n && isBlank(l[i]) {
		i++
	}
	if i < n && l[i] == '#' {
		return "", n
	}
	s := i
	for i < n && !isBlank(l[i]) {
		i++
	}
	key = string(l[s:i])
	for i < n && isBlank(l[i]) {
		i++
	}
	return key, i
}

// Get returns the value of the first line with key.
func (e *blsEntry) Get(key string) (string, bool) {
	for _, l := range e.lines {
		if k, v := blsKey(l); k == key {
			return string(l[v:contentEnd(l)]), true
		}
	}
	return "", false
}

// Options returns all options lines joined by a space (the specification allows several).
func (e *blsEntry) Options() string {
	var parts []string
	for _, l := range e.lines {
		if k, v := blsKey(l); k == "options" {
			parts = append(parts, string(l[v:contentEnd(l)]))
		}
	}
	return strings.Join(parts, " ")
}

// UsesKernelopts reports whether the options refer to the grubenv variable $kernelopts.
func (e *blsEntry) UsesKernelopts() bool {
	for _, a := range splitArgs(e.Options()) {
		if a.Raw == "$kernelopts" || a.Raw == "${kernelopts}" {
			return true
		}
	}
	return false
}

// AddArg appends arg to the last options line (adding "options arg" when there is none)
// unless the options already carry it.
func (e *blsEntry) AddArg(arg string) bool {
	if hasCmdlineArg(e.Options(), arg) {
		return false
	}
	for i := len(e.lines) - 1; i >= 0; i-- {
		l := e.lines[i]
		k, v := blsKey(l)
		if k != "options" {
			continue
		}
		n := contentEnd(l)
		val := string(l[v:n])
		ed, ok := addArgEdit(val, 0, arg)
		if !ok {
			return false
		}
		if v == n && (v == 0 || !isBlank(l[v-1])) {
			ed.text = " " + ed.text
		}
		nl := append([]byte(string(l[:v])+applyEdits(val, []textEdit{ed})), l[n:]...)
		e.lines[i] = nl
		return true
	}
	if k := len(e.lines); k > 0 && contentEnd(e.lines[k-1]) == len(e.lines[k-1]) {
		e.lines[k-1] = append(append([]byte(nil), e.lines[k-1]...), '\n')
	}
	e.lines = append(e.lines, []byte("options "+arg+"\n"))
	return true
}

// RemoveArg removes arg from every options line.
func (e *blsEntry) RemoveArg(arg string) bool {
	changed := false
	for i, l := range e.lines {
		k, v := blsKey(l)
		if k != "options" {
			continue
		}
		n := contentEnd(l)
		val := string(l[v:n])
		if edits := removeArgEdits(val, 0, arg); len(edits) > 0 {
			e.lines[i] = append([]byte(string(l[:v])+applyEdits(val, edits)), l[n:]...)
			changed = true
		}
	}
	return changed
}
