package vmtest

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSentinel(t *testing.T) {
	const nonce = "0123abcd"
	tests := []struct {
		line string
		rc   int
		ok   bool
	}{
		{"VMTEST-RESULT 0123abcd rc=0", 0, true},
		{"VMTEST-RESULT 0123abcd rc=1", 1, true},
		{"  VMTEST-RESULT 0123abcd rc=2  ", 2, true},
		{"VMTEST-RESULT 0123abcd rc=255", 255, true},
		{"VMTEST-RESULT 0123abcd rc=256", 0, false},
		{"VMTEST-RESULT 0123abcd rc=-1", 0, false},
		{"VMTEST-RESULT ffffffff rc=0", 0, false}, // another boot's (or a test's) line
		{"VMTEST-RESULT rc=0", 0, false},
		{"    vm_test.go:12: VMTEST-RESULT 0123abcd rc=0x", 0, false},
		{"VMTEST-RESULT 0123abcd rc=", 0, false},
		{"VMTEST-RESULT 0123abcd rc=0 trailing", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			rc, ok := parseSentinel(tc.line, nonce)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.rc, rc)
		})
	}
	_, ok := parseSentinel("VMTEST-RESULT  rc=0", "")
	assert.False(t, ok, "an empty nonce never matches")
}

func FuzzParseSentinel(f *testing.F) {
	f.Add("VMTEST-RESULT n rc=0", "n")
	f.Add("VMTEST-RESULT n rc=99999999999999999999", "n")
	f.Fuzz(func(t *testing.T, line, nonce string) {
		rc, ok := parseSentinel(line, nonce)
		if ok {
			assert.GreaterOrEqual(t, rc, 0)
			assert.LessOrEqual(t, rc, 255)
			assert.NotEmpty(t, nonce)
		}
		// What the guest prints is always understood.
		if nonce != "" && !strings.ContainsAny(nonce, " \t\r\n\v\f\u0085\u00a0") && rc >= 0 {
			got, ok := parseSentinel(sentinelLine(nonce, rc), nonce)
			assert.True(t, ok)
			assert.Equal(t, rc, got)
		}
	})
}

func TestParseInitExit(t *testing.T) {
	st, ok := parseInitExit("[    5.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000200")
	assert.True(t, ok)
	assert.Equal(t, 0x200, st)
	_, ok = parseInitExit("[    5.1] Kernel panic - not syncing: VFS: Unable to mount root fs")
	assert.False(t, ok)
}

func TestCleanLine(t *testing.T) {
	tests := map[string]string{
		"\x1bc\x1b[?7l\x1b[2JSeaBIOS (version 1.16)\r\n": "SeaBIOS (version 1.16)",
		"=== RUN   TestX\r\n":                            "=== RUN   TestX",
		"plain":                                          "plain",
		"\x1b[0m\x1b[1;31mred\x1b[0m  \r":                "red",
	}
	for in, want := range tests {
		assert.Equal(t, want, cleanLine(in), "%q", in)
	}
}

func TestScanConsole(t *testing.T) {
	const nonce = "feed"
	tests := []struct {
		name    string
		console string
		found   bool
		rc      int
		why     string
		logged  []string
	}{
		{
			name: "pass",
			console: "\x1bcSeaBIOS (version x)\r\nBooting from ROM..\r\n\x1bc" +
				"=== RUN   TestA\r\n--- PASS: TestA (0.00s)\r\nPASS\r\n\r\nVMTEST-RESULT feed rc=0\r\n" +
				"[    4.85] reboot: Power down\r\n",
			found:  true,
			logged: []string{"=== RUN   TestA", "--- PASS: TestA (0.00s)", "PASS"},
		},
		{
			name:    "fail",
			console: "--- FAIL: TestA (0.00s)\nFAIL\nVMTEST-RESULT feed rc=1\n",
			found:   true, rc: 1,
			logged: []string{"--- FAIL: TestA (0.00s)", "FAIL"},
		},
		{
			name:    "forged sentinel in test output is only logged",
			console: "    x_test.go:1: VMTEST-RESULT feed rc=0\nVMTEST-RESULT beef rc=0\n",
			logged:  []string{"    x_test.go:1: VMTEST-RESULT feed rc=0", "VMTEST-RESULT beef rc=0"},
		},
		{
			name:    "init died",
			console: "panic: boom\n[    3.2] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000200\n",
			why:     "status 0x200",
			logged:  []string{"panic: boom", "[    3.2] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000200"},
		},
		{
			name:    "no final newline",
			console: "VMTEST-RESULT feed rc=3",
			found:   true, rc: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logged []string
			res := scanConsole(strings.NewReader(tc.console), nonce, func(s string) { logged = append(logged, s) })
			assert.Equal(t, tc.found, res.found)
			assert.Equal(t, tc.rc, res.rc)
			if tc.why != "" {
				assert.Contains(t, res.why, tc.why)
			}
			assert.Equal(t, tc.logged, logged)
		})
	}
}

func TestScanConsoleKeepsTail(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	res := scanConsole(strings.NewReader(b.String()), "n", func(string) {})
	require.Len(t, res.tail, tailLines)
	assert.Equal(t, "line 99", res.tail[tailLines-1])
	assert.Equal(t, fmt.Sprintf("line %d", 100-tailLines), res.tail[0])
}

func TestRunPattern(t *testing.T) {
	tests := []struct{ name, want string }{
		{"TestA", `^TestA$`},
		{"TestA/sub", `^TestA$/^sub$`},
		{"TestA/a.b/c+d", `^TestA$/^a\.b$/^c\+d$`},
		{"TestVM/guest_é_[1]", `^TestVM$/^guest_\x{e9}_\[1\]$`},
		{`TestQ/say_"hi"`, `^TestQ$/^say_\x{22}hi\x{22}$`},
		{"TestP/(x|y)", `^TestP$/^\(x\|y\)$`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runPattern(tc.name)
			assert.Equal(t, tc.want, got)
			assert.True(t, cmdlineSafe(got), "the pattern must survive the kernel command line")
			// Each level matches its name element exactly (the testing package matches level by level).
			levels := strings.Split(got, "/")
			names := strings.Split(tc.name, "/")
			require.Len(t, levels, len(names))
			for i := range names {
				re := regexp.MustCompile(levels[i])
				assert.True(t, re.MatchString(names[i]), "%s vs %s", levels[i], names[i])
				assert.False(t, re.MatchString(names[i]+"x"))
				assert.False(t, re.MatchString("x"+names[i]))
			}
		})
	}
}

func FuzzRunPattern(f *testing.F) {
	f.Add("TestA/b c/ü\"\\[")
	f.Fuzz(func(t *testing.T, name string) {
		if strings.ContainsRune(name, '\ufffd') || !isValidUTF8(name) {
			return
		}
		got := runPattern(name)
		require.True(t, cmdlineSafe(got), "%q", got)
		levels := strings.Split(got, "/")
		names := strings.Split(name, "/")
		require.Len(t, levels, len(names))
		for i := range names {
			assert.True(t, regexp.MustCompile(levels[i]).MatchString(names[i]))
		}
	})
}

func isValidUTF8(s string) bool { return strings.ToValidUTF8(s, "\ufffd") == s }

func TestKernelCmdline(t *testing.T) {
	got, err := kernelCmdline(map[string]string{"B": "2", "A": "x/y", "CLOUDLUKS_VM": "1"},
		[]string{"-test.v=true", "-test.run=^TestA$"})
	require.NoError(t, err)
	assert.Equal(t, "console=ttyS0 panic=-1 quiet mitigations=off no_timer_check A=x/y B=2 CLOUDLUKS_VM=1 -- -test.v=true -test.run=^TestA$", got)

	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"space in value":   {env: map[string]string{"A": "a b"}},
		"quote in value":   {env: map[string]string{"A": `a"b`}},
		"dotted name":      {env: map[string]string{"mod.param": "1"}},
		"non-ASCII value":  {env: map[string]string{"A": "é"}},
		"space in arg":     {args: []string{"-test.run=a b"}},
		"too long overall": {env: map[string]string{"A": strings.Repeat("x", maxCmdline)}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := kernelCmdline(tc.env, tc.args)
			assert.Error(t, err)
		})
	}
}

func TestGuestArgs(t *testing.T) {
	args := guestArgs("TestA/b", DefaultTimeout)
	assert.Contains(t, args, "-test.run=^TestA$/^b$")
	assert.Contains(t, args, "-test.v=true")
	assert.Contains(t, args, "-test.count=1")
	assert.Contains(t, args, "-test.timeout=2m30s", "the guest gives up before the host")
	assert.NotContains(t, strings.Join(guestArgs("TestA", 5*time.Second), " "), "-test.timeout")
}
