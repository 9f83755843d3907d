package grubconf

import (
	"bytes"
	"fmt"
	"io"
)

// diffContext is the number of unchanged lines shown around each change.
const diffContext = 3

type diffOp struct {
	kind byte // ' ', '-', '+'
	line []byte
	a, b int // 0-based line numbers in old / new
}

// lineOps computes an edit script between the lines of a and b: common prefix and suffix
// are matched directly and the middle with a longest-common-subsequence table (boot
// configuration files are small and edits touch a few lines).
func lineOps(a, b [][]byte) []diffOp {
	pre := 0
	for pre < len(a) && pre < len(b) && bytes.Equal(a[pre], b[pre]) {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && bytes.Equal(a[len(a)-1-suf], b[len(b)-1-suf]) {
		suf++
	}
	var ops []diffOp
	for i := 0; i < pre; i++ {
		ops = append(ops, diffOp{' ', a[i], i, i})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	if len(ma)*len(mb) > 4<<20 {
		for i, l := range ma {
			ops = append(ops, diffOp{'-', l, pre + i, pre})
		}
		for j, l := range mb {
			ops = append(ops, diffOp{'+', l, pre + len(ma), pre + j})
		}
	} else {
		// lcs[i][j] = LCS length of ma[i:], mb[j:]
		w := len(mb) + 1
		lcs := make([]int32, (len(ma)+1)*w)
		for i := len(ma) - 1; i >= 0; i-- {
			for j := len(mb) - 1; j >= 0; j-- {
				if bytes.Equal(ma[i], mb[j]) {
					lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
				} else {
					lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
				}
			}
		}
		i, j := 0, 0
		for i < len(ma) || j < len(mb) {
			switch {
			case i < len(ma) && j < len(mb) && bytes.Equal(ma[i], mb[j]):
				ops = append(ops, diffOp{' ', ma[i], pre + i, pre + j})
				i++
				j++
			case i < len(ma) && (j == len(mb) || lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
				ops = append(ops, diffOp{'-', ma[i], pre + i, pre + j})
				i++
			default:
				ops = append(ops, diffOp{'+', mb[j], pre + i, pre + j})
				j++
			}
		}
	}
	for k := 0; k < suf; k++ {
		i, j := len(a)-suf+k, len(b)-suf+k
		ops = append(ops, diffOp{' ', a[i], i, j})
	}
	return ops
}

// unifiedDiff writes a unified diff (diff -u format, 3 lines of context) turning old into
// new, labelled oldName/newName ("/dev/null" for a missing side). Nothing is written when
// the contents are equal. Lines are compared as raw bytes, so CRLF, invalid UTF-8 and a
// missing final newline ("\ No newline at end of file") survive a round trip through patch.
func unifiedDiff(w io.Writer, oldName, newName string, old, new []byte) error {
	if bytes.Equal(old, new) {
		return nil
	}
	ops := lineOps(splitLines(old), splitLines(new))
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "--- %s\n+++ %s\n", oldName, newName)
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		// A hunk starts diffContext lines before the change and ends when more than
		// 2*diffContext unchanged lines separate it from the next change.
		start := max(k-diffContext, 0)
		end := k
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*diffContext {
				end = min(end+diffContext, len(ops))
				break
			}
			end = run
		}
		writeHunk(&buf, ops[start:end])
		k = end
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func hunkRange(start, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, count)
}

func writeHunk(buf *bytes.Buffer, ops []diffOp) {
	na, nb := 0, 0
	for _, o := range ops {
		if o.kind != '+' {
			na++
		}
		if o.kind != '-' {
			nb++
		}
	}
	fmt.Fprintf(buf, "@@ -%s +%s @@\n", hunkRange(ops[0].a, na), hunkRange(ops[0].b, nb))
	for _, o := range ops {
		buf.WriteByte(o.kind)
		buf.Write(o.line)
		if len(o.line) == 0 || o.line[len(o.line)-1] != '\n' {
			buf.WriteString("\n\\ No newline at end of file\n")
		}
	}
}
