package grubconf

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// sameContent compares file contents where nil means "no file".
func sameContent(a, b []byte) bool { return bytes.Equal(a, b) && (a == nil) == (b == nil) }

// readCurrent reads the file at root-relative p as it is now: nil when it does not exist,
// ErrConflict when something other than a regular file is there.
func readCurrent(root, p string) ([]byte, error) {
	fi, err := os.Lstat(hostPath(root, p))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%s: %w", p, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s: no longer a regular file: %w", p, ErrConflict)
	}
	b, err := readLimited(root, p)
	var big *FileTooLargeError
	if err != nil && !errors.As(err, &big) {
		err = fmt.Errorf("%s: %w", p, err)
	}
	return b, err
}

// revertStep takes the edit st (st.Old to st.New) out of cur and keeps every other change
// in cur. The edits this package makes rewrite lines in place (an argument appended, an
// option changed, a line commented out) or add whole lines (an options line, a new
// drop-in), so each changed line of st.New that cur still holds gets its st.Old text back
// and each added line is dropped. A line cur already holds with its st.Old text counts as
// reverted; gone names the lines that are simply no longer there (a kernel update removed
// their entry), which need no revert; lost names the lines someone changed since, whose
// revert would lose that change.
// A grubenv block is reverted by value, because its padding line changes with every
// variable GRUB or grub2-editenv sets.
func revertStep(cur []byte, st journalStep) (out []byte, gone, lost []string) {
	switch {
	case sameContent(cur, st.New):
		return st.Old, nil, nil
	case cur == nil:
		if st.New == nil || st.Old == nil {
			return nil, nil, nil // a file the apply created is gone already
		}
		// An old kernel's BLS entry removed with its kernel, say.
		return nil, []string{"the file was removed since it was edited; skipped"}, nil
	}
	sig := []byte(grubenvSignature)
	if bytes.HasPrefix(st.Old, sig) && bytes.HasPrefix(st.New, sig) && bytes.HasPrefix(cur, sig) {
		out, lost = revertGrubenv(cur, st)
		return out, nil, lost
	}
	type pair struct {
		from, to []byte // to == nil: drop the line
		line     int    // 1-based line of st.New
	}
	var pairs []pair
	ops := lineOps(splitLines(st.Old), splitLines(st.New))
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		var dels, adds []diffOp
		for ; i < len(ops) && ops[i].kind != ' '; i++ {
			if ops[i].kind == '-' {
				dels = append(dels, ops[i])
			} else {
				adds = append(adds, ops[i])
			}
		}
		for k, a := range adds {
			p := pair{from: a.line, line: a.b + 1}
			if k < len(dels) {
				p.to = dels[k].line
			}
			pairs = append(pairs, p)
		}
		for _, d := range dels[min(len(adds), len(dels)):] {
			lost = append(lost, fmt.Sprintf("line %d was removed by the edit and cannot be put back in place", d.a+1))
		}
	}
	lines := splitLines(cur)
	used := make([]bool, len(lines))
	repl := make(map[int][]byte)
	for _, p := range pairs {
		j := -1
		for k, l := range lines {
			if !used[k] && bytes.Equal(l, p.from) {
				j = k
				break
			}
		}
		if j < 0 {
			switch {
			case p.to == nil || holdsLine(lines, used, p.to):
				// Dropped or reverted already (a backup copied back by hand).
			case holdsKey(lines, used, lineKey(p.from)):
				lost = append(lost, fmt.Sprintf("line %d was changed since it was edited", p.line))
			default:
				gone = append(gone, fmt.Sprintf("line %d is gone since it was edited (a kernel update may have removed its entry); skipped", p.line))
			}
			continue
		}
		used[j] = true
		repl[j] = p.to
	}
	var b []byte
	for k, l := range lines {
		if to, ok := repl[k]; ok {
			l = to
		}
		b = append(b, l...)
	}
	if len(b) == 0 && st.Old == nil {
		return nil, gone, lost // the file the apply created holds nothing else: remove it
	}
	if b == nil {
		b = []byte{}
	}
	return b, gone, lost
}

// holdsLine reports whether an unused line of lines is l.
func holdsLine(lines [][]byte, used []bool, l []byte) bool {
	for k, x := range lines {
		if !used[k] && bytes.Equal(x, l) {
			return true
		}
	}
	return false
}

// holdsKey reports whether an unused line of lines has the key (see lineKey).
func holdsKey(lines [][]byte, used []bool, key string) bool {
	for k, x := range lines {
		if !used[k] && lineKey(x) == key {
			return true
		}
	}
	return false
}

// lineKey is what names the thing a configuration line sets, so that an edited line can
// be told from a line that is gone: the variable of an assignment (kopt=, GRUB_CMDLINE_…=,
// a kernel command line's first argument), the key of a BLS options line, else the first
// two words (a kernel line and its image, an fstab or crypttab line and its device),
// commented out or not.
func lineKey(l []byte) string {
	f := strings.Fields(strings.TrimLeft(string(l), "# \t"))
	switch {
	case len(f) == 0:
		return ""
	case strings.Contains(f[0], "="):
		return f[0][:strings.Index(f[0], "=")+1]
	case len(f) == 1 || f[0] == "options":
		return f[0]
	}
	return f[0] + " " + f[1]
}

func revertGrubenv(cur []byte, st journalStep) ([]byte, []string) {
	o, n, c := parseGrubenv(st.Old), parseGrubenv(st.New), parseGrubenv(cur)
	ov, _ := o.Get("kernelopts")
	nv, _ := n.Get("kernelopts")
	cv, _ := c.Get("kernelopts")
	switch {
	case ov == nv, cv == ov: // not edited, or reverted already
		return cur, nil
	case cv != nv:
		return cur, []string{"kernelopts was changed since it was edited"}
	}
	if err := c.Set("kernelopts", ov); err != nil {
		return cur, []string{"kernelopts cannot be put back: " + err.Error()}
	}
	return c.Bytes(), nil
}
