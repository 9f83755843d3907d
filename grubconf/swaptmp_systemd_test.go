package grubconf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// systemdGenerator finds one of systemd's generators (not on PATH).
func systemdGenerator(t *testing.T, name string) string {
	t.Helper()
	for _, d := range []string{"/usr/lib/systemd/system-generators", "/lib/systemd/system-generators"} {
		if p := filepath.Join(d, name); fileExists(p) {
			return p
		}
	}
	testenv.Missing(t, name, "Debian package systemd")
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestScratchTmpSystemdBoot runs the host's real systemd generators on the lines a tmp plan
// writes: the /tmp mount is ordered before local-fs.target while only wanted by it
// (nofail), has nosuid,nodev, is not fsck'ed (systemd-fsck@ would race systemd-makefs),
// waits 30 s at most for its device; systemd-analyze verify accepts the units and the
// drop-ins; and systemd-tmpfiles, with the plan's drop-in, makes the mounted directory
// 1777.
func TestScratchTmpSystemdBoot(t *testing.T) {
	gens := []string{systemdGenerator(t, "systemd-fstab-generator"), systemdGenerator(t, "systemd-cryptsetup-generator")}
	sa := testenv.LookPath(t, "systemd-analyze", "Debian package systemd")
	tf := testenv.LookPath(t, "systemd-tmpfiles", "Debian package systemd")
	for _, rc := range rootCases {
		if rc.name != "al2" && rc.name != "al2023-bls" && rc.name != "debian-12" {
			continue
		}
		t.Run(rc.name, func(t *testing.T) {
			root := rc.files(t).build(t)
			planApply(t, root, tmpScratch)
			gen := t.TempDir()
			for _, g := range gens {
				cmd := exec.Command(g, gen, gen, gen)
				cmd.Env = append(os.Environ(), "SYSTEMD_FSTAB="+filepath.Join(root, "etc/fstab"),
					"SYSTEMD_CRYPTTAB="+filepath.Join(root, "etc/crypttab"), "SYSTEMD_PROC_CMDLINE=")
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "%s: %s", g, out)
			}
			unit, err := os.ReadFile(filepath.Join(gen, "tmp.mount"))
			require.NoError(t, err)
			u := string(unit)
			assert.Contains(t, u, "\nBefore=local-fs.target\n", "ordered before local-fs.target, so tmpfiles runs after the mount")
			assert.Contains(t, u, "\nOptions=nosuid,nodev,nofail,", "nosuid,nodev at boot as in the live mount")
			assert.NotContains(t, u, "systemd-fsck@", "no fsck of a file system made at every boot")
			assert.FileExists(t, filepath.Join(gen, "local-fs.target.wants/tmp.mount"), "wanted (nofail)")
			assert.NoFileExists(t, filepath.Join(gen, "local-fs.target.requires/tmp.mount"), "not required: a missing disk does not stop the boot")
			to, err := os.ReadFile(filepath.Join(gen, "dev-mapper-crypttmp.device.d/50-device-timeout.conf"))
			require.NoError(t, err)
			assert.Contains(t, string(to), "JobRunningTimeoutSec=30s")
			cs, err := os.ReadFile(filepath.Join(gen, "systemd-cryptsetup@crypttmp.service"))
			require.NoError(t, err)
			assert.Contains(t, string(cs), "systemd-makefs 'ext4' '/dev/mapper/crypttmp'")

			unitDir := filepath.Join(root, "etc/systemd/system")
			require.NoError(t, os.MkdirAll(unitDir, 0o755))
			out, err := exec.Command("cp", "-a", gen+"/.", unitDir).CombinedOutput()
			require.NoError(t, err, "%s", out)
			for _, tu := range []string{"sysinit.target", "basic.target", "shutdown.target", "local-fs-pre.target", "local-fs.target",
				"cryptsetup-pre.target", "cryptsetup.target", "umount.target", "blockdev@.target"} {
				p := filepath.Join(root, "usr/lib/systemd/system", tu)
				require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
				require.NoError(t, os.WriteFile(p, []byte("[Unit]\nDefaultDependencies=no\n"), 0o644))
			}
			vout, err := exec.Command(sa, "verify", "--man=no", "--root="+root, "tmp.mount").CombinedOutput()
			assert.NoError(t, err, "%s", vout)
			for _, l := range strings.Split(strings.TrimSpace(string(vout)), "\n") {
				if l != "" && !strings.Contains(l, "SourcePath=") {
					t.Errorf("systemd-analyze verify: %s", l)
				}
			}
			if rc.family == FamilyGRUB2 {
				assert.FileExists(t, filepath.Join(unitDir, "tmp.mount.d/cloudluks-crypttmp.conf"), "systemd 219 ignores x-systemd.before=")
			}

			require.NoError(t, os.MkdirAll(filepath.Join(root, "tmp"), 0o755))
			require.NoError(t, os.Chmod(filepath.Join(root, "tmp"), 0o755)) // as mkfs leaves a fresh root
			tout, err := exec.Command(tf, "--root="+root, "--create").CombinedOutput()
			require.NoError(t, err, "%s", tout)
			fi, err := os.Stat(filepath.Join(root, "tmp"))
			require.NoError(t, err)
			assert.Equal(t, os.ModeSticky|os.ModeDir|0o777, fi.Mode(), "mode 1777 at boot")
		})
	}
}
