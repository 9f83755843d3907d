package cli

import (
	"bytes"
	"io"
	"regexp"
	"runtime/debug"
	"testing"
)

func fakeInfo(version string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
	return func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Main: debug.Module{Version: version}, Settings: settings}, true
	}
}

func TestVersion(t *testing.T) {
	defer func(f func() (*debug.BuildInfo, bool)) { readBuildInfo = f }(readBuildInfo)
	cases := []struct {
		info func() (*debug.BuildInfo, bool)
		want string
	}{
		{fakeInfo("v0.2.0"), "gocryptsetup v0.2.0 (cryptsetup 2.6.1 compatible)"},
		{fakeInfo("(devel)", debug.BuildSetting{Key: "vcs.revision", Value: "1a2b3c4d5e6f"}),
			"gocryptsetup (devel) rev 1a2b3c4 (cryptsetup 2.6.1 compatible)"},
		{fakeInfo("(devel)", debug.BuildSetting{Key: "vcs.revision", Value: "1a2b3c4d5e6f"},
			debug.BuildSetting{Key: "vcs.modified", Value: "true"}),
			"gocryptsetup (devel) rev 1a2b3c4-dirty (cryptsetup 2.6.1 compatible)"},
		{fakeInfo(""), "gocryptsetup (devel) (cryptsetup 2.6.1 compatible)"},
		{fakeInfo("v0.0.0-20261204132447-4714fc3894a5+dirty",
			debug.BuildSetting{Key: "vcs.revision", Value: "4714fc3894a5f00dbabe1234567890abcdef0123"},
			debug.BuildSetting{Key: "vcs.modified", Value: "true"}),
			"gocryptsetup v0.0.0-20261204132447-4714fc3894a5+dirty (cryptsetup 2.6.1 compatible)"},
		{func() (*debug.BuildInfo, bool) { return nil, false }, "gocryptsetup (unknown) (cryptsetup 2.6.1 compatible)"},
	}
	for _, c := range cases {
		readBuildInfo = c.info
		if got := Version("gocryptsetup", "cryptsetup 2.6.1 compatible"); got != c.want {
			t.Errorf("Version = %q, want %q", got, c.want)
		}
	}
	readBuildInfo = fakeInfo("v1.0.0")
	if got := Version("noautomount", ""); got != "noautomount v1.0.0" {
		t.Errorf("Version without extra = %q", got)
	}
}

// TestVersionReal checks the line from the test binary's own build information.
func TestVersionReal(t *testing.T) {
	got := Version("x", "y")
	if !regexp.MustCompile(`^x \S+( rev [0-9a-f]{1,7}(-dirty)?)? \(y\)$`).MatchString(got) {
		t.Errorf("Version = %q", got)
	}
}

func TestNoArgs(t *testing.T) {
	var stderr bytes.Buffer
	code := NoArgs(&stderr, func(w io.Writer) { io.WriteString(w, "usage: p ARGS\n") })
	if code != 1 {
		t.Errorf("code = %d, want 1", code)
	}
	if stderr.String() != "usage: p ARGS\n" {
		t.Errorf("stderr = %q", stderr.String())
	}
	var stdout bytes.Buffer
	if PrintVersion(&stdout, "p", "") != ExitOK || !regexp.MustCompile(`^p \S+`).MatchString(stdout.String()) {
		t.Errorf("PrintVersion wrote %q", stdout.String())
	}
}

func TestTable(t *testing.T) {
	got := []int{ExitOK, ExitUsage, ExitPermission, ExitNoMemory, ExitNoDevice, ExitBusy, ExitNeedsUnlock}
	for i, c := range got {
		if c != i {
			t.Errorf("code %d is %d", i, c)
		}
	}
}
