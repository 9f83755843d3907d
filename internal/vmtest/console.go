package vmtest

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// sentinelPrefix starts the line the guest prints after m.Run: "VMTEST-RESULT <nonce> rc=<N>".
// The nonce is random per boot, so test output that happens to contain the prefix (like this
// package's own tests of the parser) cannot fake a result.
const sentinelPrefix = "VMTEST-RESULT"

// sentinelLine is the line the guest prints.
func sentinelLine(nonce string, rc int) string {
	return fmt.Sprintf("%s %s rc=%d", sentinelPrefix, nonce, rc)
}

// parseSentinel returns the exit code carried by line if it is the result sentinel for nonce.
func parseSentinel(line, nonce string) (rc int, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(line), sentinelPrefix+" ")
	if !found || nonce == "" {
		return 0, false
	}
	rest, found = strings.CutPrefix(rest, nonce+" rc=")
	if !found {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || n > 255 {
		return 0, false
	}
	return n, true
}

// initExitRE matches the kernel's panic when PID 1 exits (test binary crashed or called
// os.Exit): "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000200".
var initExitRE = regexp.MustCompile(`Attempted to kill init! exitcode=0x([0-9a-fA-F]+)`)

// parseInitExit returns the wait status of an exited init if line reports one.
func parseInitExit(line string) (status int, ok bool) {
	m := initExitRE.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseUint(m[1], 16, 32)
	if err != nil {
		return 0, false
	}
	return int(v), true
}

// ansiRE matches the terminal control sequences SeaBIOS and the kernel write to the serial
// port (clear screen, wrap mode).
var ansiRE = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-Za-z]|[c=>78DEHMZ])`)

// cleanLine strips carriage returns and terminal control sequences.
func cleanLine(s string) string {
	s = ansiRE.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "\r", "")
	return strings.TrimRight(s, " \t\n")
}

// powerDownRE matches the kernel's last words on a clean power-off.
var powerDownRE = regexp.MustCompile(`^\[ *[0-9]+\.[0-9]+\] reboot: Power down$`)

// firmwareNoise reports lines that carry no information: the firmware's before the kernel
// starts and the kernel's power-off message.
func firmwareNoise(s string) bool {
	if powerDownRE.MatchString(s) {
		return true
	}
	for _, p := range []string{"SeaBIOS (version", "iPXE", "Booting from ROM", "Booting from Hard Disk", "Press ESC for boot menu"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// runPattern builds the -test.run argument that selects exactly the test (or subtest) named
// name: each '/'-separated level anchored and quoted. Bytes the kernel command line would split
// or interpret (non-ASCII, quotes) become \x{…} escapes, which the regexp package reads back
// as the same runes.
func runPattern(name string) string {
	levels := strings.Split(name, "/")
	for i, l := range levels {
		var b strings.Builder
		for _, r := range regexp.QuoteMeta(l) {
			if r <= ' ' || r > '~' || r == '"' {
				fmt.Fprintf(&b, `\x{%x}`, r)
			} else {
				b.WriteRune(r)
			}
		}
		levels[i] = "^" + b.String() + "$"
	}
	return strings.Join(levels, "/")
}

// maxCmdline is COMMAND_LINE_SIZE on x86 (including the terminating NUL).
const maxCmdline = 2048

// kernelCmdline assembles the kernel command line: kernel options, the guest environment
// (sorted for reproducibility) and, after "--", the test binary's arguments.
func kernelCmdline(env map[string]string, args []string) (string, error) {
	// no_timer_check: under TCG on a busy host the kernel's IO-APIC timer check can miss
	// its ticks and panic at boot ("setup_IO_APIC: timer doesn't work through the
	// IO-APIC"); the emulated timer works, so the check is skipped.
	parts := []string{"console=ttyS0", "panic=-1", "quiet", "mitigations=off", "no_timer_check"}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !validEnvName(k) || !cmdlineSafe(env[k]) {
			return "", fmt.Errorf("vmtest: environment variable %q cannot go on the kernel command line", k)
		}
		parts = append(parts, k+"="+env[k])
	}
	parts = append(parts, "--")
	for _, a := range args {
		if !cmdlineSafe(a) {
			return "", fmt.Errorf("vmtest: argument %q cannot go on the kernel command line", a)
		}
		parts = append(parts, a)
	}
	s := strings.Join(parts, " ")
	if len(s) >= maxCmdline {
		return "", fmt.Errorf("vmtest: kernel command line is %d bytes, the limit is %d", len(s), maxCmdline-1)
	}
	return s, nil
}
