package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// static holds the programs BuildStatic made, by package path, for the test process.
var static = map[string]string{}

// BuildStatic builds the main package pkg (an import path of this module, e.g.
// "github.com/cloudluks/cloudluks/cmd/encrypted-volume") with CGO_ENABLED=0 into the
// harness's scratch directory, once per test process, and returns the binary's path: a program
// that runs in the guest without libraries, for Options.GuestFiles.
func BuildStatic(t testing.TB, pkg string) string {
	t.Helper()
	if strings.HasPrefix(pkg, ".") || strings.ContainsAny(pkg, " \t\n") {
		t.Fatalf("vmtest: BuildStatic(%q): want an import path", pkg)
	}
	cleanupScratch(t)
	host.mu.Lock()
	defer host.mu.Unlock()
	if p, ok := static[pkg]; ok {
		return p
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		if r := os.Getenv("GOROOT"); r != "" {
			goTool = filepath.Join(r, "bin", "go")
		} else {
			t.Fatalf("vmtest: BuildStatic needs the go command: %v", err)
		}
	}
	dir, err := scratch()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, fmt.Sprintf("static-%d-%s", len(static), path.Base(pkg)))
	start := time.Now()
	cmd := exec.Command(goTool, "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vmtest: building %s with CGO_ENABLED=0: %v\n%s", pkg, err, b)
	}
	if !isStatic(out) {
		t.Fatalf("vmtest: %s: built binary is not static", pkg)
	}
	t.Logf("vmtest: built %s (static) in %s", pkg, time.Since(start).Round(time.Millisecond))
	static[pkg] = out
	return out
}

// InitProgram builds vmtest's own guest program (cmd vminit) for Options.Init: for Start
// from a package whose TestMain does not call Main. It runs the guest functions registered
// in package vmtest, i.e. the sshd-only guest (Options.SSH with no Options.Guest).
func InitProgram(t testing.TB) string {
	t.Helper()
	return BuildStatic(t, "github.com/cloudluks/cloudluks/internal/vmtest/vminit")
}
