// Package testenv decides what a test does when something it needs from the machine is
// missing: locally it skips with a message naming the missing piece and how to install it;
// under CI (CI=true) it fails, because CI installs everything and a skip there would hide a
// test that never ran. OpenPTY (Linux) gives a test a real pseudo-terminal the same way.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where missing tools are failures.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips t (locally) or fails it (under CI) because what is described is not there.
// hint says how to get it, e.g. "apt-get install cryptsetup-bin".
func Missing(t testing.TB, what, hint string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required under CI=true but missing (%s)", what, hint)
	}
	t.Skipf("skipping: %s is missing (%s; under CI=true this fails)", what, hint)
}

// LookPath returns the path of the named program, or skips/fails t as Missing does.
func LookPath(t testing.TB, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, hint)
	}
	return p
}

// NeedRoot skips/fails t when the test process is not root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root", "run the tests as root")
	}
}
