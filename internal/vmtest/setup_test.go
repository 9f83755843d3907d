package vmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// TestSetupKernelScript runs setup-kernel.sh on a locally built stand-in for the kernel
// package (--deb, no download) and checks the layout findKernel expects and idempotence. The
// download path runs in CI's setup itself.
func TestSetupKernelScript(t *testing.T) {
	dpkgDeb := testenv.LookPath(t, "dpkg-deb", "a Debian system")
	sh := testenv.LookPath(t, "sh", "a POSIX shell")
	const rel = "6.1.0-99-cloud-amd64"
	pkg := filepath.Join(t.TempDir(), "pkg")
	for _, f := range []string{"boot/vmlinuz-" + rel, "lib/modules/" + rel + "/kernel/drivers/md/dm-mod.ko"} {
		require.NoError(t, os.MkdirAll(filepath.Join(pkg, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(pkg, f), []byte("stand-in"), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(pkg, "DEBIAN"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(pkg, "DEBIAN", "control"), []byte(
		"Package: linux-image-"+rel+"\nVersion: 1\nArchitecture: amd64\nMaintainer: test <t@example.org>\nDescription: stand-in\n"), 0o644))
	deb := filepath.Join(t.TempDir(), "k.deb")
	out, err := exec.Command(dpkgDeb, "--build", "--root-owner-group", pkg, deb).CombinedOutput()
	require.NoError(t, err, "%s", out)

	dir := filepath.Join(t.TempDir(), "vm")
	run := func(args ...string) string {
		cmd := exec.Command(sh, append([]string{"setup-kernel.sh"}, args...)...)
		cmd.Env = append(os.Environ(), EnvDir+"="+dir)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	assert.Equal(t, dir+"\n", run("--print"))
	assert.Contains(t, run("--deb", deb), "unpacked "+rel)
	assert.Contains(t, run("--deb", deb), "already unpacked", "second run does nothing")
	k, err := findKernel(dir)
	require.NoError(t, err)
	assert.Equal(t, rel, k.Release)

	bad := exec.Command(sh, "setup-kernel.sh", "--bogus")
	assert.Error(t, bad.Run(), "unknown options are refused")
}
