package sector

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// TestOtherBuilds runs this package's tests in the two builds the normal run does not
// exercise on an amd64 machine: the portable code alone (-tags purego, what every CPU
// without AES-NI and every other architecture runs), and GOARCH=arm64 (Graviton instances)
// under Debian's qemu-user, where crypto/aes's hardware path serves AES. The normal run is
// the README's one test command, so both live here rather than in a CI script.
func TestOtherBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the package twice more; not in -short")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the cross runs are set up for linux/amd64 hosts")
	}
	gocmd := testenv.LookPath(t, "go", "the Go toolchain")
	dir := t.TempDir()
	build := func(t *testing.T, out string, env []string, args ...string) {
		t.Helper()
		cmd := exec.Command(gocmd, append([]string{"test", "-c", "-o", out}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go test -c %v: %v\n%s", args, err, b)
		}
	}
	// -test.short keeps the children from recursing into this test and the generator check.
	t.Run("purego", func(t *testing.T) {
		bin := filepath.Join(dir, "purego.test")
		build(t, bin, nil, "-tags", "purego", ".")
		if b, err := exec.Command(bin, "-test.short", "-test.count=1").CombinedOutput(); err != nil {
			t.Fatalf("purego tests: %v\n%s", err, b)
		}
	})
	t.Run("arm64", func(t *testing.T) {
		qemu := testenv.LookPath(t, "qemu-aarch64", "apt-get install qemu-user")
		bin := filepath.Join(dir, "arm64.test")
		build(t, bin, []string{"GOARCH=arm64", "CGO_ENABLED=0"}, ".")
		if b, err := exec.Command(qemu, bin, "-test.short", "-test.count=1").CombinedOutput(); err != nil {
			t.Fatalf("arm64 tests under qemu-aarch64: %v\n%s", err, b)
		}
	})
}
