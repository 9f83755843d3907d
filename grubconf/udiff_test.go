package grubconf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var diffCases = []struct{ name, a, b string }{
	{"append arg", "a\nb\nc\nkernel /v ro\nd\ne\nf\ng\n", "a\nb\nc\nkernel /v ro rd_NO_LUKS\nd\ne\nf\ng\n"},
	{"two far hunks", strings.Repeat("x\n", 5) + "A\n" + strings.Repeat("y\n", 12) + "B\n" + strings.Repeat("z\n", 5), strings.Repeat("x\n", 5) + "A2\n" + strings.Repeat("y\n", 12) + "B2\n" + strings.Repeat("z\n", 5)},
	{"two near hunks merge", "1\n2\nA\n3\n4\n5\n6\nB\n7\n", "1\n2\nA'\n3\n4\n5\n6\nB'\n7\n"},
	{"missing final newline, last line changed", "a\nb", "a\nb c"},
	{"final newline added", "a\nb", "a\nb\n"},
	{"final newline removed", "a\nb\n", "a\nb"},
	{"insert at start", "b\nc\n", "a\nb\nc\n"},
	{"append line", "a\n", "a\nGRUB_CMDLINE_LINUX=\"rd.luks=0\"\n"},
	{"CRLF", "a\r\nb\r\nc\r\n", "a\r\nb x\r\nc\r\n"},
	{"invalid UTF-8", "\xff\xfe\nkernel \xc3\x28\n", "\xff\xfe\nkernel \xc3\x28 rd_NO_LUKS\n"},
	{"new file", "", "x\ny\n"},
	{"delete all", "x\ny\n", ""},
	{"tabs and spaces", "\tkernel /v  ro \n", "\tkernel /v  ro rd_NO_LUKS \n"},
}

func TestUnifiedDiffGolden(t *testing.T) {
	var all bytes.Buffer
	for _, tc := range diffCases {
		fmatch := "# " + tc.name + "\n"
		all.WriteString(fmatch)
		require.NoError(t, unifiedDiff(&all, "a/f", "b/f", []byte(tc.a), []byte(tc.b)))
	}
	golden(t, "unified-diff-cases.diff", all.Bytes())
	var none bytes.Buffer
	require.NoError(t, unifiedDiff(&none, "a/f", "b/f", []byte("same"), []byte("same")))
	assert.Empty(t, none.String())
}

// TestUnifiedDiffWithPatch applies our diffs with GNU patch and checks the result, and
// checks that GNU diff's own output is the same as ours where the hunks are unambiguous.
func TestUnifiedDiffWithPatch(t *testing.T) {
	patch := testenv.LookPath(t, "patch", "apt-get install patch")
	diffTool := testenv.LookPath(t, "diff", "apt-get install diffutils")
	for _, tc := range diffCases {
		t.Run(tc.name, func(t *testing.T) {
			checkPatch(t, patch, []byte(tc.a), []byte(tc.b))
			dir := t.TempDir()
			pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
			require.NoError(t, os.WriteFile(pa, []byte(tc.a), 0o644))
			require.NoError(t, os.WriteFile(pb, []byte(tc.b), 0o644))
			out, _ := exec.Command(diffTool, "-u", "--label", "a/f", "--label", "b/f", pa, pb).Output()
			var ours bytes.Buffer
			require.NoError(t, unifiedDiff(&ours, "a/f", "b/f", []byte(tc.a), []byte(tc.b)))
			if tc.a != "" && tc.b != "" {
				assert.Equal(t, string(out), ours.String(), "same as diff -u")
			}
		})
	}
}

func checkPatch(t *testing.T, patch string, a, b []byte) {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(f, a, 0o644))
	var d bytes.Buffer
	require.NoError(t, unifiedDiff(&d, "a/f", "b/f", a, b))
	cmd := exec.Command(patch, "-p1", "--quiet", "--batch", "--no-backup-if-mismatch")
	cmd.Dir = dir
	cmd.Stdin = &d
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "patch: %s\n%s", out, d.String())
	got, err := os.ReadFile(f)
	if len(b) == 0 && os.IsNotExist(err) {
		return // patch removes files that become empty
	}
	require.NoError(t, err)
	require.Equal(t, string(b), string(got))
}

func FuzzUnifiedDiff(f *testing.F) {
	for _, tc := range diffCases {
		f.Add([]byte(tc.a), []byte(tc.b))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var d bytes.Buffer
		require.NoError(t, unifiedDiff(&d, "a/f", "b/f", a, b))
		// Applying the hunks in memory gives b back.
		require.Equal(t, string(b), string(applyUnified(t, a, d.Bytes())))
	})
}

// applyUnified is a minimal, strict patcher for our own output (used by the fuzz target,
// which cannot fork patch for every input).
func applyUnified(t *testing.T, a, d []byte) []byte {
	if len(d) == 0 {
		return a
	}
	src := splitLines(a)
	lines := splitLines(d)
	require.True(t, len(lines) >= 2)
	var out [][]byte
	pos := 0
	var last *[]byte
	for _, l := range lines[2:] {
		switch {
		case bytes.HasPrefix(l, []byte("@@ -")):
			var s, n int
			hdr := strings.Fields(string(l))[1][1:]
			parts := strings.SplitN(hdr, ",", 2)
			s = atoi(parts[0])
			n = 1
			if len(parts) == 2 {
				n = atoi(parts[1])
			}
			start := s - 1
			if n == 0 {
				start = s
			}
			for pos < start {
				out = append(out, src[pos])
				pos++
			}
			last = nil
		case bytes.Equal(l, []byte("\\ No newline at end of file\n")):
			require.NotNil(t, last)
			*last = bytes.TrimSuffix(*last, []byte("\n"))
		case l[0] == ' ' || l[0] == '-':
			body := append([]byte(nil), l[1:]...)
			require.Less(t, pos, len(src))
			if l[0] == ' ' {
				out = append(out, body)
				last = &out[len(out)-1]
			} else {
				last = &body
			}
			pos++
		case l[0] == '+':
			out = append(out, append([]byte(nil), l[1:]...))
			last = &out[len(out)-1]
		default:
			t.Fatalf("bad diff line %q", l)
		}
	}
	out = append(out, src[pos:]...)
	return bytes.Join(out, nil)
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
