package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// systemdRoot is a real Amazon Linux 2023 boot configuration with systemd and a mysqld unit.
func systemdRoot(t *testing.T) string {
	t.Helper()
	root := bootRoot(t, "al2023")
	writeRoot(t, root, "usr/lib/systemd/systemd", "", 0o755)
	writeRoot(t, root, "usr/lib/systemd/system/mysqld.service",
		"[Unit]\nDescription=MySQL Server\nAfter=network.target\n\n[Service]\nExecStart=/usr/sbin/mysqld\n\n[Install]\nWantedBy=multi-user.target\n", 0o644)
	return root
}

// sysvRoot is the seed's Amazon Linux 2011.09 (SysV init, chkconfig) with a mysqld init
// script on in runlevels 2-5 and off in 0, 1, 6, as `chkconfig mysqld on` leaves it. The
// script records each call in marker.
func sysvRoot(t *testing.T, marker string) string {
	t.Helper()
	root := bootRoot(t, "al1-2011.09")
	writeRoot(t, root, "etc/rc.d/init.d/mysqld",
		"#!/bin/sh\n#\n# mysqld\tThis shell script takes care of starting and stopping\n#\t\tthe MySQL subsystem (mysqld).\n#\n# chkconfig: - 64 36\n# description:\tMySQL database server.\n"+
			"echo \"$1\" >> '"+marker+"'\n", 0o755)
	for lvl := 0; lvl <= 6; lvl++ {
		dir := filepath.Join(root, "etc/rc.d", "rc"+string(rune('0'+lvl))+".d")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		name := "K36mysqld"
		if lvl >= 2 && lvl <= 5 {
			name = "S64mysqld"
		}
		require.NoError(t, os.Symlink("../init.d/mysqld", filepath.Join(dir, name)))
	}
	return root
}

func writeRoot(t *testing.T, root, rel, content string, perm os.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), perm))
}

// rcLinks lists the mysqld links of a SysV root as "rcN.d/NAME → target".
func rcLinks(t *testing.T, root string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(root, "etc/rc.d/rc?.d/*mysqld"))
	require.NoError(t, err)
	var out []string
	for _, p := range m {
		target, err := os.Readlink(p)
		require.NoError(t, err)
		out = append(out, filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p)+" → "+target)
	}
	return out
}

// On a systemd root, setup --service writes a drop-in that makes mysqld need the mount;
// unlock --service starts it after the mount; teardown --service removes the drop-in.
func TestServiceGatingSystemd(t *testing.T) {
	root := systemdRoot(t)
	h := newHarness(t, testPass+"\n")
	h.app.boot = grubBoot{}
	xvdf := h.dev("xvdf")
	mp := "/encrypted_vol"
	code := h.run("setup", "--device", xvdf, "--root", root, "--mount-point", tempMountPoint(t), "--service", "mysqld")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", h.stdout, h.stderr)
	dropIn := filepath.Join(root, "etc/systemd/system/mysqld.service.d/encrypted-volume.conf")
	assert.Contains(t, h.stdout.String(), "mysqld.service (systemd): wrote "+dropIn)

	// The drop-in for the default mount point, checked by systemd itself when it is here.
	require.NoError(t, gateService(root, "mysqld.service", mp, &bytes.Buffer{}))
	b, err := os.ReadFile(dropIn)
	require.NoError(t, err)
	assert.Contains(t, string(b), "\n[Unit]\nConditionPathIsMountPoint=/encrypted_vol\nAfter=encrypted_vol.mount\n")
	entries, err := os.ReadDir(filepath.Dir(dropIn))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "written atomically: no temporary file left")
	verifySystemdUnit(t, root, dropIn)

	code = h.run("teardown", "--root", root, "--mount-point", tempMountPoint(t), "--service", "mysqld")
	require.Equal(t, 0, code, h.stderr.String())
	assert.Contains(t, h.stdout.String(), "Step 3/5: detach")
	assert.Contains(t, h.stdout.String(), "Step 5/5: let mysqld start at boot again...\n    mysqld.service: removed "+dropIn)
	assert.NoDirExists(t, filepath.Dir(dropIn), "the drop-in directory setup made is gone")
	require.FileExists(t, filepath.Join(root, "usr/lib/systemd/system/mysqld.service"), "the unit itself is untouched")
	assert.Equal(t, []string{"systemctl", "start", "mysqld.service"}, startCommand(root, service{name: "mysqld", init: initSystemd}))
}

// verifySystemdUnit runs systemd-analyze verify on the unit under root and requires that
// it has nothing to say about the drop-in. systemd-analyze does read drop-ins under
// --root: a bad key in a copy of it is reported.
func verifySystemdUnit(t *testing.T, root, dropIn string) {
	sa := lookTool(t, "systemd-analyze", "Debian package systemd")
	verify := func() string {
		out, _ := exec.Command(sa, "verify", "--root="+root, "mysqld.service").CombinedOutput()
		return string(out) // other complaints (no sysinit.target, no /usr/sbin/mysqld in a test root) are about the root
	}
	out := verify()
	t.Logf("systemd-analyze verify:\n%s", out)
	assert.NotContains(t, out, dropIn, "systemd accepts the drop-in")
	bad := filepath.Join(filepath.Dir(dropIn), "zz-bad.conf")
	require.NoError(t, os.WriteFile(bad, []byte("[Unit]\nRequiresMountsForr=/x\n"), 0o644))
	assert.Contains(t, verify(), bad, "the oracle reads drop-ins")
	require.NoError(t, os.Remove(bad))
}

// On a SysV root (Amazon Linux 1), setup --service takes mysqld out of boot start the way
// chkconfig off does (S64 → K36, link targets kept) without running chkconfig; unlock
// --service starts it after the mount; teardown --service restores exactly the runlevels
// that were on.
func TestServiceGatingSysV(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "started")
	root := sysvRoot(t, marker)
	before := rcLinks(t, root)
	h := newHarness(t, testPass+"\n")
	h.app.boot = grubBoot{}
	xvdf := h.dev("xvdf")
	mp := tempMountPoint(t)
	code := h.run("setup", "--device", xvdf, "--root", root, "--mount-point", mp, "--service", "mysqld")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", h.stdout, h.stderr)
	assert.Contains(t, h.stdout.String(), "mysqld (SysV init): taken out of boot start (rc2.d/S64mysqld, rc3.d/S64mysqld, rc4.d/S64mysqld, rc5.d/S64mysqld)")
	for _, l := range rcLinks(t, root) {
		assert.Contains(t, l, "/K36mysqld → ../init.d/mysqld", "no runlevel starts mysqld at boot")
	}
	assert.Contains(t, readRootFile(t, root, "boot/grub/menu.lst"), "rd_NO_LUKS", "step 8 ran too")
	assert.NoFileExists(t, marker, "setup does not start the service")

	require.Equal(t, 0, h.run("teardown", "--mount-point", mp), h.stderr.String())
	// unlock --service starts services on this machine: with another system's --root it
	// would run that root's init script here, so it is refused before anything is done.
	h.setStdin(testPass + "\n")
	h.stdout.Reset()
	h.stderr.Reset()
	require.Equal(t, 1, h.run("unlock", "--device", xvdf, "--root", root, "--mount-point", mp, "--service", "mysqld"), h.stderr.String())
	assert.Contains(t, h.stderr.String(), "--service starts services on this machine; it cannot be combined with --root "+root)
	assert.NotContains(t, h.stdout.String(), "Step 1/")
	assert.NoFileExists(t, marker, "the root's init script did not run on this machine")
	assert.Len(t, h.local.mappings, 0, "nothing was opened")
	s, err := detectService(root, "mysqld")
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(root, "etc/rc.d/init.d/mysqld"), "start"}, startCommand(root, s), "what unlock --root / runs")

	// Someone turned runlevel 4 back on by hand meanwhile: teardown leaves that alone.
	require.NoError(t, os.Rename(filepath.Join(root, "etc/rc.d/rc4.d/K36mysqld"), filepath.Join(root, "etc/rc.d/rc4.d/S64mysqld")))
	h.stdout.Reset()
	require.Equal(t, 0, h.run("teardown", "--root", root, "--mount-point", mp, "--service", "mysqld"), h.stderr.String())
	assert.Contains(t, h.stdout.String(), "mysqld: boot start restored (rc5.d/S64mysqld, rc3.d/S64mysqld, rc2.d/S64mysqld)")
	assert.Equal(t, before, rcLinks(t, root), "exactly the links before setup")
	assert.NoFileExists(t, filepath.Join(root, sysvJournalDir, "mysqld"))

	// A second teardown has nothing recorded and changes nothing.
	h.stdout.Reset()
	require.Equal(t, 0, h.run("teardown", "--root", root, "--mount-point", mp, "--service", "mysqld"), h.stderr.String())
	assert.Contains(t, h.stdout.String(), "mysqld: no boot start recorded by setup")
	assert.Equal(t, before, rcLinks(t, root))
}

func TestServiceNames(t *testing.T) {
	for _, ok := range []string{"mysqld", "mysqld.service", "getty@tty1", "postgresql-9.6", "my_app:1"} {
		assert.NoError(t, validServiceName(strings.TrimSuffix(ok, ".service")), ok)
	}
	for _, bad := range []string{"", "../mysqld", "a/b", "-x", ".hidden", "my sql", "x\x00", "ä", strings.Repeat("a", 241)} {
		assert.Error(t, validServiceName(bad), "%q", bad)
	}
	_, err := detectService(systemdRoot(t), "nosuchd")
	assert.ErrorIs(t, err, errNoService)
	assert.ErrorContains(t, err, "no unit nosuchd.service")
}

// The drop-in never makes the service need the mount: with step 8's crypttab
// (luks,noauto,nofail) and fstab (noauto,nofail) lines, systemd's own generators still make
// encrypted_vol.mount → dev-mapper-NAME.device → systemd-cryptsetup@NAME.service, so a
// Requires=/RequiresMountsFor= of the mount would start the passphrase prompt (forever) at
// boot as soon as mysqld is started. systemd-analyze verify builds the start transaction of
// mysqld.service; with SYSTEMD_LOG_LEVEL=debug it names every job it installs.
func TestServiceDropInPullsNoPassphrasePrompt(t *testing.T) {
	for _, tc := range []struct{ mp, unit string }{
		{"/encrypted_vol", "encrypted_vol.mount"},
		{"/srv/my-data.d/", `srv-my\x2ddata.d.mount`},
		{"/.hidden//x", `\x2ehidden-x.mount`},
		{"/", "-.mount"},
	} {
		got := string(systemdDropIn("mysqld", tc.mp))
		assert.Contains(t, got, "\n[Unit]\nConditionPathIsMountPoint="+tc.mp+"\nAfter="+tc.unit+"\n", tc.mp)
		for _, dep := range []string{"Requires", "RequiresMountsFor", "Wants", "BindsTo", "Requisite", "Upholds", "PartOf"} {
			assert.NotContains(t, got, "\n"+dep+"=", "%s: no %s= of the mount", tc.mp, dep)
		}
		if esc, err := exec.LookPath("systemd-escape"); err == nil {
			out, err := exec.Command(esc, "--path", "--suffix=mount", tc.mp).Output()
			require.NoError(t, err)
			assert.Equal(t, strings.TrimSpace(string(out)), mountUnitName(tc.mp), "systemd names the mount unit of %s so", tc.mp)
		}
	}

	sa := lookTool(t, "systemd-analyze", "Debian package systemd")
	var gens []string
	for _, g := range []string{"systemd-fstab-generator", "systemd-cryptsetup-generator"} {
		p := "/usr/lib/systemd/system-generators/" + g
		if _, err := os.Stat(p); err != nil {
			testenv.Missing(t, p, "Debian package systemd")
		}
		gens = append(gens, p)
	}

	// Step 8 itself writes the crypttab and fstab lines, on a real Amazon Linux 2023 root.
	root := systemdRoot(t)
	mp := "/encrypted_vol"
	require.NoError(t, grubBoot{}.Disable(context.Background(), root, bootVolume{Name: "my_enc_fs", MountPoint: mp}, &bytes.Buffer{}))
	assert.Contains(t, readRootFile(t, root, "etc/crypttab"), "noauto")
	assert.Contains(t, readRootFile(t, root, "etc/fstab"), "noauto")

	// The generators read the root's files (SYSTEMD_FSTAB, SYSTEMD_CRYPTTAB) and ignore the
	// host's kernel command line; their units go where systemd-analyze --root finds them.
	gen := t.TempDir()
	for _, g := range gens {
		cmd := exec.Command(g, gen, t.TempDir(), t.TempDir())
		cmd.Env = append(os.Environ(), "SYSTEMD_FSTAB="+filepath.Join(root, "etc/fstab"),
			"SYSTEMD_CRYPTTAB="+filepath.Join(root, "etc/crypttab"), "SYSTEMD_PROC_CMDLINE=")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", g, out)
	}
	unitDir := filepath.Join(root, "etc/systemd/system")
	require.NoError(t, os.MkdirAll(unitDir, 0o755))
	out, err := exec.Command("cp", "-a", gen+"/.", unitDir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.FileExists(t, filepath.Join(unitDir, "encrypted_vol.mount"), "noauto still makes the mount unit")
	require.FileExists(t, filepath.Join(unitDir, "dev-mapper-my_enc_fs.device.requires/systemd-cryptsetup@my_enc_fs.service"),
		"noauto still ties the mapper device to the prompt")
	// The targets every service depends on by default, so the transaction can be built.
	for _, u := range []string{"sysinit.target", "basic.target", "shutdown.target", "local-fs-pre.target", "local-fs.target",
		"cryptsetup-pre.target", "cryptsetup.target", "umount.target", "blockdev@.target"} {
		writeRoot(t, root, "usr/lib/systemd/system/"+u, "[Unit]\nDefaultDependencies=no\n", 0o644)
	}
	jobs := func() string {
		cmd := exec.Command(sa, "verify", "--root="+root, "mysqld.service")
		cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=debug")
		out, _ := cmd.CombinedOutput() // complaints about the test root (no /usr/sbin/mysqld) are not the point
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "Installed new job") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}

	require.NoError(t, gateService(root, "mysqld", mp, &bytes.Buffer{}))
	got := jobs()
	t.Logf("start transaction of mysqld.service:\n%s", got)
	assert.Contains(t, got, "Installed new job mysqld.service/start", "the oracle built the transaction")
	assert.NotContains(t, got, "systemd-cryptsetup@", "starting mysqld does not ask for the passphrase")
	assert.NotContains(t, got, "encrypted_vol.mount", "starting mysqld does not mount the volume")

	// The oracle sees the prompt when a drop-in does require the mount.
	dropIn := dropInPath(root, "mysqld")
	require.NoError(t, os.WriteFile(dropIn, []byte("[Unit]\nRequiresMountsFor="+mp+"\n"), 0o644))
	assert.Contains(t, jobs(), "Installed new job systemd-cryptsetup@my_enc_fs.service/start")
}

// teardown --service with a service that is not under --root stops before its first step:
// the volume stays mounted, mapped, attached and in EC2.
func TestTeardownUnknownServiceChangesNothing(t *testing.T) {
	root := systemdRoot(t)
	h := newHarness(t, "")
	mp := tempMountPoint(t)
	xvdf := h.dev("xvdf")
	h.cloud.volumes["vol-0123456789abcdef0"] = "/dev/sdf"
	h.local.resolved["vol-0123456789abcdef0"] = xvdf
	h.local.mappings["my_enc_fs"] = xvdf
	h.local.mounts = append(h.local.mounts, mountEntry{Source: mapperPath("my_enc_fs"), MountPoint: mp, FSType: "ext4"})

	code := h.run("teardown", "--root", root, "--mount-point", mp, "--volume-id", "vol-0123456789abcdef0", "--delete", "--service", "mysqld-typo")
	assert.Equal(t, 1, code, "usage error; stdout:\n%s\nstderr:\n%s", h.stdout, h.stderr)
	assert.Contains(t, h.stderr.String(), "--service mysqld-typo: no such service: no unit mysqld-typo.service under "+root)
	assert.NotContains(t, h.stdout.String(), "Step 1/", "no step ran")
	assert.Empty(t, h.local.calls, "nothing unmounted or closed")
	assert.Empty(t, h.cloud.calls, "nothing detached or deleted")
	assert.Contains(t, h.cloud.volumes, "vol-0123456789abcdef0")
	assert.Len(t, h.local.mounts, 1)
}

// A stop link already where a start link would be renamed to is never overwritten: setup
// refuses in its preflight, and nothing is renamed.
func TestServiceGatingSysVLinkClash(t *testing.T) {
	root := sysvRoot(t, filepath.Join(t.TempDir(), "started"))
	other := filepath.Join(root, "etc/rc.d/rc3.d/K36mysqld")
	require.NoError(t, os.Symlink("../init.d/mysqld-other", other))
	before := rcLinks(t, root)

	s, err := detectService(root, "mysqld")
	require.NoError(t, err)
	_, err = sysvDisable(root, s, os.Rename)
	assert.ErrorIs(t, err, errLinkClash)
	assert.ErrorContains(t, err, other+": cannot take S64mysqld out of boot start")
	assert.Equal(t, before, rcLinks(t, root), "nothing renamed, the other link kept")
	assert.NoFileExists(t, filepath.Join(root, sysvJournalDir, "mysqld"))

	h := newHarness(t, testPass+"\n")
	h.app.boot = grubBoot{}
	code := h.run("setup", "--device", h.dev("xvdf"), "--root", root, "--mount-point", tempMountPoint(t), "--service", "mysqld")
	assert.Equal(t, 1, code, h.stderr.String())
	assert.Contains(t, h.stderr.String(), "--service mysqld: "+other+": cannot take S64mysqld out of boot start")
	assert.NotContains(t, h.stdout.String(), "Step 1/", "refused in the preflight")
	assert.Equal(t, before, rcLinks(t, root))
}

// Two start links of one service in one runlevel both become stop links (the second at the
// next free priority) and both come back at teardown.
func TestServiceGatingSysVTwoStartLinks(t *testing.T) {
	root := sysvRoot(t, filepath.Join(t.TempDir(), "started"))
	require.NoError(t, os.Symlink("../init.d/mysqld", filepath.Join(root, "etc/rc.d/rc3.d/S80mysqld")))
	before := rcLinks(t, root)
	require.NoError(t, gateService(root, "mysqld", "/encrypted_vol", &bytes.Buffer{}))
	after := rcLinks(t, root)
	assert.Contains(t, after, "rc3.d/K36mysqld → ../init.d/mysqld")
	assert.Contains(t, after, "rc3.d/K37mysqld → ../init.d/mysqld")
	assert.Len(t, after, len(before), "no link lost")
	for _, l := range after {
		assert.NotContains(t, l, "/S", "no runlevel starts mysqld at boot")
	}
	require.NoError(t, ungateService(root, "mysqld", &bytes.Buffer{}))
	assert.Equal(t, before, rcLinks(t, root), "exactly the links before setup")
}

// Each rename is journaled before it is made: a failure (or crash) after some renames leaves
// a record teardown undoes exactly. The failing rename stands in for the crash, which no
// real file system produces on demand.
func TestServiceGatingSysVJournalFirst(t *testing.T) {
	root := sysvRoot(t, filepath.Join(t.TempDir(), "started"))
	before := rcLinks(t, root)
	s, err := detectService(root, "mysqld")
	require.NoError(t, err)
	journal := filepath.Join(root, sysvJournalDir, "mysqld")
	n := 0
	crash := errors.New("crash")
	_, err = sysvDisable(root, s, func(from, to string) error {
		b, err := os.ReadFile(journal)
		require.NoError(t, err, "the journal exists before rename %d", n+1)
		rf, _ := filepath.Rel(root, from)
		rt, _ := filepath.Rel(root, to)
		assert.Contains(t, string(b), rf+" "+rt+"\n", "rename %d is journaled before it is made", n+1)
		if n++; n == 3 {
			return crash
		}
		return os.Rename(from, to)
	})
	require.ErrorIs(t, err, crash)
	assert.NotEqual(t, before, rcLinks(t, root), "two renames were made")

	restored, err := sysvRestore(root, s)
	require.NoError(t, err)
	assert.Len(t, restored, 2, "the two renames made, not the ones never done")
	assert.Equal(t, before, rcLinks(t, root))
	assert.NoFileExists(t, journal)
}

// With --service the mount point goes into a unit file: blanks, backslashes and quotes are
// refused before anything is done; without --service they are fine for the flags.
func TestServiceMountPointRefused(t *testing.T) {
	for _, mp := range []string{"/enc vol", "/enc\\vol", "/enc'vol", `/enc"vol`, "/enc\tvol"} {
		for _, verb := range []string{"setup", "unlock", "teardown"} {
			h := newHarness(t, testPass+"\n")
			code := h.run(verb, "--device", h.dev("xvdf"), "--mount-point", mp, "--service", "mysqld")
			assert.Equal(t, 1, code, "%s %q", verb, mp)
			assert.Contains(t, h.stderr.String(), "cannot be written in a systemd drop-in for --service", "%s %q", verb, mp)
			assert.NotContains(t, h.stdout.String(), "Step 1/")
			assert.Empty(t, h.local.calls)
		}
	}
	c := &config{verb: "teardown", name: "my_enc_fs", mountPoint: "/enc'vol", root: "/"}
	assert.NoError(t, c.validate(), "no --service: no unit file, no refusal")
}

// --service mysqld@main names an instance of the template mysqld@.service: found through the
// template, gated with a drop-in for that instance only. A bare template is refused.
func TestServiceTemplateInstance(t *testing.T) {
	root := systemdRoot(t)
	writeRoot(t, root, "usr/lib/systemd/system/mysqld@.service",
		"[Unit]\nDescription=MySQL Server %i\n\n[Service]\nExecStart=/usr/sbin/mysqld --defaults-group-suffix=@%I\n", 0o644)
	s, err := detectService(root, "mysqld@main.service")
	require.NoError(t, err)
	assert.Equal(t, service{name: "mysqld@main", init: initSystemd}, s)
	assert.Equal(t, []string{"systemctl", "start", "mysqld@main.service"}, startCommand(root, s))

	var out bytes.Buffer
	require.NoError(t, gateService(root, "mysqld@main", "/encrypted_vol", &out))
	dropIn := filepath.Join(root, "etc/systemd/system/mysqld@main.service.d/encrypted-volume.conf")
	assert.Contains(t, out.String(), "mysqld@main.service (systemd): wrote "+dropIn)
	assert.Contains(t, readRootFile(t, root, "etc/systemd/system/mysqld@main.service.d/encrypted-volume.conf"), "ConditionPathIsMountPoint=/encrypted_vol\n")
	assert.NoDirExists(t, filepath.Join(root, "etc/systemd/system/mysqld@.service.d"), "the other instances are not gated")
	require.NoError(t, ungateService(root, "mysqld@main", &bytes.Buffer{}))
	assert.NoFileExists(t, dropIn)

	_, err = detectService(systemdRoot(t), "mysqld@main")
	assert.ErrorIs(t, err, errNoService)
	assert.ErrorContains(t, err, "no unit mysqld@main.service or mysqld@.service under")

	for _, bad := range []string{"mysqld@", "mysqld@.service", "@main", "a@b@c"} {
		h := newHarness(t, "")
		assert.Equal(t, 1, h.run("setup", "--root", root, "--service", bad, "--mount-point", tempMountPoint(t)), bad)
		assert.Contains(t, h.stderr.String(), "--service", bad)
		assert.NotContains(t, h.stdout.String(), "Step 1/")
	}
	h := newHarness(t, "")
	h.run("setup", "--root", root, "--service", "mysqld@", "--mount-point", tempMountPoint(t))
	assert.Contains(t, h.stderr.String(), "mysqld@ is a template, not a service: name an instance (mysqld@INSTANCE)")
}
