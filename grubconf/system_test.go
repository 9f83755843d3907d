package grubconf

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func changedPaths(p *Plan) []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, c.Path)
	}
	return out
}

// TestRoots runs the whole operation on every fake system: detection, golden diff, the
// diff applied by GNU patch equals our result, apply, idempotence, status, undo from the
// journal back to the original bytes.
func TestRoots(t *testing.T) {
	for _, rc := range rootCases {
		t.Run(rc.name, func(t *testing.T) {
			root := rc.files(t).build(t)
			orig := treeState(t, root, false)

			sys, err := Detect(root)
			require.NoError(t, err)
			assert.Equal(t, rc.family, sys.Family)
			assert.Equal(t, rc.arg, sys.Arg)

			st, err := sys.Status(rc.vol)
			require.NoError(t, err)
			assert.False(t, st.Disabled)

			plan, err := sys.PlanDisableUnlock(rc.vol)
			require.NoError(t, err)
			assert.ElementsMatch(t, rc.edited, changedPaths(plan))
			var diff bytes.Buffer
			require.NoError(t, plan.Diff(&diff))
			golden(t, "root-"+rc.name+".diff", diff.Bytes())
			require.Equal(t, orig, treeState(t, root, false), "planning and diffing touch nothing")

			checkPatchRoot(t, root, diff.Bytes(), plan)

			require.NoError(t, plan.Apply(ApplyOptions{Backup: true}))
			for _, c := range plan.Changes {
				got, err := os.ReadFile(hostPath(root, c.Path))
				require.NoError(t, err)
				assert.Equal(t, string(c.New), string(got))
				if c.Old != nil {
					bak, err := os.ReadFile(hostPath(root, c.Path) + BackupSuffix)
					require.NoError(t, err)
					assert.Equal(t, c.Old, bak, "backup holds the original")
				}
			}
			// Symlinks are still symlinks pointing where they did.
			for p, v := range orig {
				if strings.HasPrefix(v, "link ") {
					assert.Equal(t, v, treeState(t, root, false)[p], "%s stays a symlink", p)
				}
			}
			checkShellDefaults(t, root, sys, rc.arg)

			// Idempotent: nothing left to do, and the status says so.
			sys2, err := Detect(root)
			require.NoError(t, err)
			again, err := sys2.PlanDisableUnlock(rc.vol)
			require.NoError(t, err)
			assert.True(t, again.Empty(), "second run changes nothing, got %v", changedPaths(again))
			st, err = sys2.Status(rc.vol)
			require.NoError(t, err)
			assert.True(t, st.Disabled)
			assert.Empty(t, st.Pending)

			// Undo from the journal restores every original byte.
			undo, err := sys2.PlanUndo(rc.vol.Name)
			require.NoError(t, err)
			require.NoError(t, undo.Apply(ApplyOptions{}))
			assert.Equal(t, orig, treeState(t, root, true), "undo restores the original tree")
			_, err = sys2.PlanUndo(rc.vol.Name)
			assert.ErrorIs(t, err, ErrNoUndo)
		})
	}
}

// checkPatchRoot applies the plan's diff to a copy of the root with GNU patch and compares.
func checkPatchRoot(t *testing.T, root string, diff []byte, plan *Plan) {
	t.Helper()
	patch := testenv.LookPath(t, "patch", "apt-get install patch")
	cp := t.TempDir()
	for _, c := range plan.Changes {
		if c.Old == nil {
			continue
		}
		p := hostPath(cp, c.Path)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, c.Old, 0o644))
	}
	cmd := exec.Command(patch, "-p1", "--batch", "--quiet", "--no-backup-if-mismatch")
	cmd.Dir = cp
	cmd.Stdin = bytes.NewReader(diff)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "patch: %s", out)
	for _, c := range plan.Changes {
		got, err := os.ReadFile(hostPath(cp, c.Path))
		require.NoError(t, err)
		assert.Equal(t, string(c.New), string(got), "patch result for %s", c.Path)
	}
}

// checkShellDefaults sources /etc/default/grub and its drop-ins with the real shell, the
// way grub-mkconfig does, and checks the argument reached the effective command line.
func checkShellDefaults(t *testing.T, root string, sys *System, arg string) {
	t.Helper()
	if sys.DefaultGrub == nil {
		return
	}
	files := []string{hostPath(root, "/etc/default/grub")}
	ds, err := filepath.Glob(hostPath(root, "/etc/default/grub.d/*.cfg"))
	require.NoError(t, err)
	sort.Strings(ds)
	files = append(files, ds...)
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("`")) || bytes.Contains(b, []byte("$(")) {
			// Command substitutions run programs of the fake root; replace the files by
			// copies without those lines (they do not set the command line).
			var keep []string
			for _, l := range strings.SplitAfter(string(b), "\n") {
				if !strings.Contains(l, "`") && !strings.Contains(l, "$(") {
					keep = append(keep, l)
				}
			}
			f2 := filepath.Join(t.TempDir(), filepath.Base(f))
			require.NoError(t, os.WriteFile(f2, []byte(strings.Join(keep, "")), 0o644))
			files[indexOf(files, f)] = f2
		}
	}
	linux := shValue(t, "GRUB_CMDLINE_LINUX", files...)
	def := shValue(t, "GRUB_CMDLINE_LINUX_DEFAULT", files...)
	assert.True(t, hasCmdlineArg(linux+" "+def, arg), "sh sees %s in %q / %q", arg, linux, def)
}

func indexOf(list []string, s string) int {
	for i, l := range list {
		if l == s {
			return i
		}
	}
	return -1
}

func TestBackuplessApplyAndUndo(t *testing.T) {
	root := rootCases[0].files(t).build(t)
	orig := treeState(t, root, false)
	sys, err := Detect(root)
	require.NoError(t, err)
	plan, err := sys.PlanDisableUnlock(myVol)
	require.NoError(t, err)
	require.NoError(t, plan.Apply(ApplyOptions{}))
	for _, c := range plan.Changes {
		_, err := os.Stat(hostPath(root, c.Path) + BackupSuffix)
		assert.True(t, errors.Is(err, os.ErrNotExist), "no backup unless asked")
	}
	undo, err := sys.PlanUndo(myVol.Name)
	require.NoError(t, err)
	require.NoError(t, undo.Apply(ApplyOptions{}))
	assert.Equal(t, orig, treeState(t, root, true))
}

func TestDryRunTouchesNothing(t *testing.T) {
	for _, rc := range rootCases {
		t.Run(rc.name, func(t *testing.T) {
			root := rc.files(t).build(t)
			before := treeState(t, root, false)
			sys, err := Detect(root)
			require.NoError(t, err)
			plan, err := sys.PlanDisableUnlock(rc.vol)
			require.NoError(t, err)
			require.NoError(t, plan.Diff(&bytes.Buffer{}))
			_, err = sys.Status(rc.vol)
			require.NoError(t, err)
			assert.Equal(t, before, treeState(t, root, false))
		})
	}
}

func TestApplyKeepsModeAndOwner(t *testing.T) {
	root := rootCases[0].files(t).build(t)
	menu := hostPath(root, "/boot/grub/menu.lst")
	require.NoError(t, os.Chmod(menu, 0o600))
	asRoot := os.Geteuid() == 0
	if asRoot {
		require.NoError(t, os.Chown(menu, 1234, 5678))
	}
	sys, err := Detect(root)
	require.NoError(t, err)
	plan, err := sys.PlanDisableUnlock(myVol)
	require.NoError(t, err)
	require.NoError(t, plan.Apply(ApplyOptions{Backup: true}))
	fi, err := os.Stat(menu)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	if asRoot {
		st := fi.Sys().(*syscall.Stat_t)
		assert.Equal(t, uint32(1234), st.Uid)
		assert.Equal(t, uint32(5678), st.Gid)
	} else {
		testenv.NeedRoot(t)
	}
	// No temporary files are left beside the edited files.
	for _, d := range []string{"/boot/grub", "/etc"} {
		ents, err := os.ReadDir(hostPath(root, d))
		require.NoError(t, err)
		for _, e := range ents {
			assert.False(t, strings.Contains(e.Name(), ".cloudluks-") && !strings.HasSuffix(e.Name(), BackupSuffix), "leftover %s", e.Name())
		}
	}
	link, err := os.Readlink(hostPath(root, "/etc/grub.conf"))
	require.NoError(t, err)
	assert.Equal(t, "../boot/grub/menu.lst", link)
}

func TestWriteAtomicNewFileMode(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "f")
	require.NoError(t, writeAtomic(root, "/f", []byte("x"), 0o640))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}

func TestApplyConflict(t *testing.T) {
	root := rootCases[0].files(t).build(t)
	sys, err := Detect(root)
	require.NoError(t, err)
	plan, err := sys.PlanDisableUnlock(myVol)
	require.NoError(t, err)
	// Someone edits fstab between plan and apply.
	require.NoError(t, os.WriteFile(hostPath(root, "/etc/fstab"), []byte("changed\n"), 0o644))
	before := treeState(t, root, false)
	err = plan.Apply(ApplyOptions{Backup: true})
	require.ErrorIs(t, err, ErrConflict)
	assert.Equal(t, before, treeState(t, root, false), "nothing written")

	// Undo refuses when a line it edited was changed after the edit: the plan says so and
	// shows the rest, its Apply writes nothing.
	root2 := rootCases[0].files(t).build(t)
	sys2, _ := Detect(root2)
	p2, err := sys2.PlanDisableUnlock(myVol)
	require.NoError(t, err)
	require.NoError(t, p2.Apply(ApplyOptions{}))
	edited, err := os.ReadFile(hostPath(root2, "/etc/fstab"))
	require.NoError(t, err)
	edited = bytes.Replace(edited, []byte("noauto,nofail"), []byte("noauto,nofail,noatime"), 1)
	require.NoError(t, os.WriteFile(hostPath(root2, "/etc/fstab"), edited, 0o644))
	before = treeState(t, root2, false)
	undo, err := sys2.PlanUndo(myVol.Name)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(undo.Warnings, "\n"), "/etc/fstab: line 3 was changed since it was edited")
	assert.NotEmpty(t, undo.Changes, "the other files can still be shown")
	assert.ErrorIs(t, undo.Apply(ApplyOptions{}), ErrConflict)
	assert.Equal(t, before, treeState(t, root2, false), "nothing written")
	_, err = sys2.PlanUndo(myVol.Name)
	assert.NoError(t, err, "the record stays")
}

func TestRefuseEncryptedBoot(t *testing.T) {
	tests := []struct {
		name  string
		files fakeRoot
		vol   Volume
		want  string
	}{
		{"fedora15 rd_LUKS_UUID (fixture 05)", fakeRoot{
			"boot/grub/grub.conf": "fixture:05-fedora15-encrypted-root-grub.conf",
			"etc/grub.conf":       "->../boot/grub/grub.conf",
			"etc/crypttab":        crypttabData,
			"etc/fstab":           fstabData,
		}, myVol, `rd_LUKS_UUID=luks-ea29e6e7`},
		{"BLS rd.luks.uuid", fakeRoot{
			"boot/loader/entries/x.conf": "options root=/dev/mapper/vg-root rd.luks.uuid=luks-1234 ro\n",
		}, myVol, "rd.luks.uuid=luks-1234"},
		{"grubenv kernelopts rd.luks.name", fakeRoot{
			"boot/loader/entries/x.conf": "options $kernelopts\n",
			"boot/grub2/grubenv":         makeGrubenvString("kernelopts=root=/dev/sda1 rd.luks.name=abcd=root\n"),
		}, myVol, "rd.luks.name=abcd=root"},
		{"kernel cmdline luks.uuid", fakeRoot{
			"etc/kernel/cmdline": "root=UUID=x luks.uuid=abcd\n",
		}, myVol, "luks.uuid=abcd"},
		{"default grub root=/dev/mapper/luks-*", fakeRoot{
			"etc/default/grub": "GRUB_CMDLINE_LINUX=\"root=/dev/mapper/luks-0c3b ro\"\n",
		}, myVol, "root=/dev/mapper/luks-0c3b"},
		{"drop-in resume on LUKS", fakeRoot{
			"etc/default/grub":          "GRUB_CMDLINE_LINUX=\"\"\n",
			"etc/default/grub.d/50.cfg": "GRUB_CMDLINE_LINUX_DEFAULT=\"resume=/dev/mapper/cryptswap\"\n",
			"etc/crypttab":              "cryptswap /dev/sda3 none luks\n",
		}, myVol, "resume=/dev/mapper/cryptswap"},
		{"crypttab line backing /", fakeRoot{
			"etc/crypttab": "cryptroot UUID=1 none luks\nmy_enc_fs /dev/xvdf none luks\n",
			"etc/fstab":    "/dev/mapper/cryptroot / ext4 defaults 1 1\n",
		}, myVol, "/ (/dev/mapper/cryptroot) is on LUKS"},
		{"crypttab line backing /usr", fakeRoot{
			"etc/crypttab": "usrcrypt UUID=1 none\n",
			"etc/fstab":    "LABEL=/ / ext4 defaults 1 1\n/dev/mapper/usrcrypt /usr xfs defaults 0 0\n",
		}, myVol, "/usr"},
		{"LUKS swap", fakeRoot{
			"etc/crypttab": "cswap UUID=2 none luks\n",
			"etc/fstab":    "/dev/mapper/cswap none swap sw 0 0\n",
		}, myVol, "cswap"},
		{"Debian initramfs option on another volume", fakeRoot{
			"etc/crypttab": "sda5_crypt UUID=3 none luks,discard,initramfs\n",
		}, myVol, "sda5_crypt"},
		{"the volume itself holds /", fakeRoot{
			"etc/fstab": "/dev/mapper/my_enc_fs / ext4 defaults 1 1\n",
		}, Volume{Name: "my_enc_fs"}, "itself holds /"},
		{"generated grub.cfg rd.luks.uuid", fakeRoot{
			"boot/grub2/grub.cfg": "menuentry 'x' {\n\tlinux /vmlinuz root=/dev/mapper/rhel-root ro rd.luks.uuid=luks-9f1 rd.lvm.lv=rhel/root\n}\n",
		}, myVol, "rd.luks.uuid=luks-9f1"},
		{"mount point /", fakeRoot{"etc/fstab": "\n"}, Volume{Name: "my_enc_fs", MountPoint: "/"}, "needed for boot"},
		// LVM over LUKS with a crypttab-driven initramfs (Debian/Ubuntu installers, dracut
		// host-only): no kernel argument names the LUKS device.
		{"LVM root over a crypttab LUKS device (fstab)", fakeRoot{
			"etc/crypttab": "sda3_crypt UUID=4 none luks,discard\nmy_enc_fs /dev/xvdf none luks\n",
			"etc/fstab":    "/dev/mapper/vgubuntu-root / ext4 errors=remount-ro 0 1\n",
		}, myVol, "crypttab unlocks sda3_crypt at boot"},
		{"LVM root over a crypttab LUKS device (/dev/VG/LV)", fakeRoot{
			"etc/crypttab": "pv_crypt UUID=4 none luks\n",
			"etc/fstab":    "UUID=5 / ext4 defaults 0 1\n/dev/vg0/swap none swap sw 0 0\n",
		}, myVol, "/dev/vg0/swap"},
		{"LVM root over a crypttab LUKS device (kernel argument)", fakeRoot{
			"etc/default/grub": "GRUB_CMDLINE_LINUX=\"root=/dev/mapper/vg-root ro\"\n",
			"etc/crypttab":     "pv_crypt UUID=4 none luks\n",
		}, myVol, "root=/dev/mapper/vg-root"},
		{"rd.lvm.lv with a crypttab LUKS device", fakeRoot{
			"boot/loader/entries/x.conf": "options root=UUID=1 rd.lvm.lv=vg/root\n",
			"etc/crypttab":               "pv_crypt UUID=4 none luks\n",
		}, myVol, "rd.lvm.lv=vg/root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.files.build(t)
			before := treeState(t, root, false)
			sys, err := Detect(root)
			require.NoError(t, err)
			plan, err := sys.PlanDisableUnlock(tt.vol)
			require.Error(t, err)
			assert.Nil(t, plan)
			assert.ErrorIs(t, err, ErrEncryptedBoot)
			var eb *EncryptedBootError
			require.ErrorAs(t, err, &eb)
			assert.Contains(t, err.Error(), tt.want)
			st, err := sys.Status(tt.vol)
			require.NoError(t, err)
			assert.False(t, st.Disabled)
			assert.ErrorIs(t, st.Refused, ErrEncryptedBoot)
			assert.Equal(t, before, treeState(t, root, false), "no change")
		})
	}
}

func TestNotRefused(t *testing.T) {
	// A random-key swap in crypttab is plain dm-crypt, not LUKS: disabling LUKS is safe.
	root := fakeRoot{
		"etc/crypttab":     "cswap /dev/sda3 /dev/urandom swap,cipher=aes-xts-plain64\nmy_enc_fs /dev/xvdf none luks\n",
		"etc/fstab":        "/dev/mapper/cswap none swap sw 0 0\n",
		"etc/default/grub": "GRUB_CMDLINE_LINUX=\"rd.luks.timeout=10\"\n",
	}.build(t)
	sys, err := Detect(root)
	require.NoError(t, err)
	plan, err := sys.PlanDisableUnlock(myVol)
	require.NoError(t, err)
	assert.False(t, plan.Empty())
}

// TestNotRefusedLayeredRoot: a root on LVM is fine when crypttab unlocks no other LUKS
// device at boot (only the volume itself, or others marked noauto).
func TestNotRefusedLayeredRoot(t *testing.T) {
	for _, ct := range []string{
		"my_enc_fs /dev/xvdf none luks\n",
		"other UUID=4 none luks,noauto\nmy_enc_fs /dev/xvdf none luks\n",
		"alias /dev/xvdf none luks\n", // the same device under another name (Volume.Device)
	} {
		root := fakeRoot{
			"etc/crypttab":     ct,
			"etc/fstab":        "/dev/mapper/VolGroup-lv_root / ext4 defaults 1 1\n/dev/VolGroup/lv_swap swap swap defaults 0 0\n",
			"etc/default/grub": "GRUB_CMDLINE_LINUX=\"root=/dev/mapper/VolGroup-lv_root rd.lvm.lv=VolGroup/lv_root\"\n",
		}.build(t)
		sys, err := Detect(root)
		require.NoError(t, err)
		_, err = sys.PlanDisableUnlock(Volume{Name: "my_enc_fs", Device: "/dev/xvdf"})
		require.NoError(t, err, ct)
	}
}

func makeGrubenvString(lines ...string) string { return string(makeGrubenv(grubenvSize, lines...)) }

func TestResolveStaysInRoot(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "boot/grub"), 0o755))
	secret := filepath.Join(parent, "outside.conf")
	require.NoError(t, os.WriteFile(secret, []byte("title outside\nkernel /v ro\n"), 0o644))
	// Relative link climbing above the root, and an absolute link to the host's file.
	require.NoError(t, os.Symlink("../../../../../outside.conf", filepath.Join(root, "etc/grub.conf")))
	require.NoError(t, os.Symlink(secret, filepath.Join(root, "boot/grub/menu.lst")))
	// A loop.
	require.NoError(t, os.Symlink("loop2", filepath.Join(root, "etc/loop1")))
	require.NoError(t, os.Symlink("loop1", filepath.Join(root, "etc/loop2")))

	r, err := resolveIn(root, "/etc/grub.conf")
	assert.ErrorIs(t, err, os.ErrNotExist, "clamped to <root>/outside.conf, which does not exist")
	assert.Equal(t, []string{"/etc/grub.conf"}, r.Chain)
	_, err = resolveIn(root, "/boot/grub/menu.lst")
	assert.ErrorIs(t, err, os.ErrNotExist, "absolute targets are relative to the root")
	_, err = resolveIn(root, "/etc/loop1")
	assert.Error(t, err)

	sys, err := Detect(root)
	require.NoError(t, err)
	assert.Empty(t, sys.Legacy, "nothing outside the root is used")

	// Once the root has its own outside.conf, that one is found.
	require.NoError(t, os.WriteFile(filepath.Join(root, "outside.conf"), []byte("title inside\nkernel /v ro\n"), 0o644))
	r, err = resolveIn(root, "/etc/grub.conf")
	require.NoError(t, err)
	assert.Equal(t, "/outside.conf", r.Final)
}

func TestDetectDracut(t *testing.T) {
	tests := []struct {
		name  string
		files fakeRoot
		fam   Family
		ver   int
		ng    bool
		arg   string
	}{
		{"version file 059", fakeRoot{"usr/lib/dracut/dracut-version.sh": "DRACUT_VERSION=059\n"}, FamilyUnknown, 59, false, "rd.luks=0"},
		{"dracut-ng 105", fakeRoot{"usr/lib/dracut/dracut-version.sh": "DRACUT_VERSION=105\n"}, FamilyLegacySysV, 105, true, "rd.luks=0"},
		{"old share path 004", fakeRoot{"usr/share/dracut/dracut-version.sh": "DRACUT_VERSION=004\n"}, FamilyUnknown, 4, false, "rd_NO_LUKS"},
		{"rpm doc dir", fakeRoot{"usr/share/doc/dracut-004/README": "x"}, FamilyUnknown, 4, false, "rd_NO_LUKS"},
		{"rpm doc dir 009", fakeRoot{"usr/share/doc/dracut-009/README": "x"}, FamilyLegacySysV, 9, false, "rd.luks=0"},
		{"dpkg status", fakeRoot{"var/lib/dpkg/status": "Package: bash\nStatus: install ok installed\nVersion: 5.2\n\nPackage: dracut\nStatus: install ok installed\nVersion: 106-5\n"}, FamilyDebian, 106, true, "rd.luks=0"},
		{"parse-crypt.sh 004 wording", fakeRoot{"usr/share/dracut/modules.d/90crypt/parse-crypt.sh": "if getarg rd_NO_LUKS; then\n"}, FamilyUnknown, 4, false, "rd_NO_LUKS"},
		{"parse-crypt.sh ng wording", fakeRoot{"usr/lib/dracut/modules.d/90crypt/parse-crypt.sh": "if ! getargbool 1 rd.luks; then\n"}, FamilyLegacySysV, 104, true, "rd.luks=0"},
		{"family default sysv", fakeRoot{"etc/redhat-release": "CentOS release 6.10 (Final)\n"}, FamilyLegacySysV, 4, false, "rd_NO_LUKS"},
		{"family default rhel7", fakeRoot{"etc/redhat-release": "CentOS Linux release 7.9.2009 (Core)\n"}, FamilyGRUB2, 33, false, "rd.luks=0"},
		{"debian without dracut", fakeRoot{"etc/debian_version": "12.7\n"}, FamilyDebian, 0, false, "rd.luks=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.files.build(t)
			fam := tt.fam
			if fam == FamilyUnknown {
				fam = familyOf(detectOS(root))
			}
			d := detectDracut(root, fam)
			assert.Equal(t, tt.ver, d.Version)
			assert.Equal(t, tt.ng, d.NG)
			if tt.files["etc/redhat-release"] != "" || tt.files["etc/debian_version"] != "" {
				sys, err := Detect(root)
				require.NoError(t, err)
				assert.Equal(t, tt.fam, sys.Family)
				assert.Equal(t, tt.arg, sys.Arg)
			}
		})
	}
}

func TestFamilyOf(t *testing.T) {
	tests := []struct {
		o   OS
		fam Family
	}{
		{OS{ID: "amzn", VersionID: "2011.09"}, FamilyLegacySysV},
		{OS{ID: "amzn", VersionID: "2018.03"}, FamilyLegacySysV},
		{OS{ID: "amzn", VersionID: "2"}, FamilyGRUB2},
		{OS{ID: "amzn", VersionID: "2023"}, FamilyBLS},
		{OS{ID: "centos", VersionID: "6.10"}, FamilyLegacySysV},
		{OS{ID: "rhel", VersionID: "7.9"}, FamilyGRUB2},
		{OS{ID: "centos", VersionID: "8"}, FamilyBLSKernelopts},
		{OS{ID: "rocky", VersionID: "9.3"}, FamilyBLS},
		{OS{ID: "almalinux", VersionID: "10.0"}, FamilyBLS},
		{OS{ID: "fedora", VersionID: "33"}, FamilyBLSKernelopts},
		{OS{ID: "fedora", VersionID: "40"}, FamilyBLS},
		{OS{ID: "fedora", VersionID: "28"}, FamilyGRUB2},
		{OS{ID: "ubuntu", VersionID: "22.04"}, FamilyDebian},
		{OS{ID: "linuxmint", IDLike: "ubuntu debian"}, FamilyDebian},
		{OS{ID: "ol", VersionID: "8.9"}, FamilyBLSKernelopts},
		{OS{ID: "weird"}, FamilyUnknown},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.fam, familyOf(tt.o), "%+v", tt.o)
	}
}

func TestInvalidVolume(t *testing.T) {
	sys, err := Detect(t.TempDir())
	require.NoError(t, err)
	for _, n := range []string{"a b", "../x", "a/b", "#kernel-args"} {
		_, err := sys.PlanDisableUnlock(Volume{Name: n})
		assert.ErrorIs(t, err, ErrInvalidVolume, "%q", n)
	}
	// No name means kernel arguments only; a device or mount point then names nothing.
	for _, v := range []Volume{{Device: "/dev/xvdf"}, {MountPoint: "/encrypted_vol"}} {
		_, err := sys.PlanDisableUnlock(v)
		assert.ErrorIs(t, err, ErrInvalidVolume, "%+v", v)
	}
	_, err = Detect(filepath.Join(t.TempDir(), "missing"))
	assert.Error(t, err)
}

func BenchmarkPlanCentOS6(b *testing.B) {
	root := rootCases[2].files(b).build(b)
	b.ReportAllocs()
	for b.Loop() {
		sys, err := Detect(root)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sys.PlanDisableUnlock(myVol); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPlanWarningsAndOverflow(t *testing.T) {
	sys, err := Detect(t.TempDir())
	require.NoError(t, err)
	p, err := sys.PlanDisableUnlock(myVol)
	require.NoError(t, err)
	assert.True(t, p.Empty())
	assert.Contains(t, strings.Join(p.Warnings, "\n"), "no boot loader configuration found")
	assert.Contains(t, strings.Join(p.Warnings, "\n"), "no active /etc/crypttab line for my_enc_fs")

	// A dangling /etc/grub.conf (separate /boot not mounted) is reported.
	dl := fakeRoot{"etc/grub.conf": "->../boot/grub/grub.conf", "boot": "dir:"}.build(t)
	sys, err = Detect(dl)
	require.NoError(t, err)
	p, err = sys.PlanDisableUnlock(myVol)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(p.Warnings, "\n"), "/etc/grub.conf is a symlink to a missing file")

	// A grubenv without room for the argument: refused, nothing planned or written.
	full := grubenvSignature + "kernelopts=root=/dev/sda1 ro\n"
	root := fakeRoot{
		"boot/loader/entries/a.conf": "options $kernelopts\n",
		"boot/grub2/grubenv":         full + "###",
	}.build(t)
	before := treeState(t, root, false)
	sys, err = Detect(root)
	require.NoError(t, err)
	_, err = sys.PlanDisableUnlock(myVol)
	assert.ErrorIs(t, err, ErrGrubenvOverflow)
	assert.Contains(t, err.Error(), "/boot/grub2/grubenv")
	assert.Equal(t, before, treeState(t, root, false))
}

// TestJournalMerge: a second apply (e.g. after a kernel update added an entry) extends the
// undo record. Files untouched in between get their first original back; from a file
// changed by someone else in between, undo takes out what each apply added and keeps the
// foreign change (it used to restore the state before the latest apply, which left the
// first apply's argument on the old entry).
func TestJournalMerge(t *testing.T) {
	root := rootCases[0].files(t).build(t)
	orig := treeState(t, root, true)
	origMenu, err := os.ReadFile(hostPath(root, "/boot/grub/menu.lst"))
	require.NoError(t, err)
	sys, err := Detect(root)
	require.NoError(t, err)
	p1, err := sys.PlanDisableUnlock(myVol)
	require.NoError(t, err)
	require.NoError(t, p1.Apply(ApplyOptions{}))

	// A kernel update appends an entry without the argument; an admin adds a new fstab
	// line for the volume under a second mount point.
	menu := hostPath(root, "/boot/grub/menu.lst")
	b, err := os.ReadFile(menu)
	require.NoError(t, err)
	entry := "\ntitle Amazon Linux 2011.09 (2.6.35.14-97.45.amzn1.x86_64)\nroot (hd0)\nkernel /boot/vmlinuz-2.6.35.14-97.45.amzn1.x86_64 root=LABEL=/ console=hvc0\ninitrd /boot/initramfs-2.6.35.14-97.45.amzn1.x86_64.img\n"
	require.NoError(t, os.WriteFile(menu, append(b, entry...), 0o644))

	sys, err = Detect(root)
	require.NoError(t, err)
	p2, err := sys.PlanDisableUnlock(myVol)
	require.NoError(t, err)
	assert.Equal(t, []string{"/boot/grub/menu.lst"}, changedPaths(p2))
	require.NoError(t, p2.Apply(ApplyOptions{}))

	undo, err := sys.PlanUndo(myVol.Name)
	require.NoError(t, err)
	require.NoError(t, undo.Apply(ApplyOptions{}))
	after := treeState(t, root, true)
	assert.Equal(t, orig["etc/crypttab"], after["etc/crypttab"], "first original kept")
	assert.Equal(t, orig["etc/fstab"], after["etc/fstab"], "first original kept")
	got, err := os.ReadFile(menu)
	require.NoError(t, err)
	assert.Equal(t, string(origMenu)+entry, string(got), "the kernel update is kept, every argument added is gone")
	_, err = sys.PlanUndo(myVol.Name)
	assert.ErrorIs(t, err, ErrNoUndo)
}

// TestKernelArgsOnly: with the zero Volume every root gets exactly its boot-loader edits
// (the volume plan's files minus crypttab and fstab), Status and idempotence work on that,
// the crypttab lines that still unlock at boot are named in a warning, undo has its own
// record, and a later plan for the volume still does the crypttab/fstab part.
func TestKernelArgsOnly(t *testing.T) {
	for _, rc := range rootCases {
		t.Run(rc.name, func(t *testing.T) {
			root := rc.files(t).build(t)
			orig := treeState(t, root, false)
			sys, err := Detect(root)
			require.NoError(t, err)

			var want []string
			for _, p := range rc.edited {
				if p != "/etc/crypttab" && p != "/etc/fstab" {
					want = append(want, p)
				}
			}
			plan, err := sys.PlanDisableUnlock(Volume{})
			if errors.Is(err, ErrEncryptedBoot) {
				// Unnamed, the data volume's crypttab line counts as a device boot may
				// need (marked initramfs, or beside a device-mapper root): refused, safely.
				assert.Contains(t, []string{"centos6", "debian-12"}, rc.name)
				_, err = sys.PlanDisableUnlock(rc.vol)
				require.NoError(t, err, "naming the volume resolves it")
				return
			}
			require.NoError(t, err)
			assert.ElementsMatch(t, want, changedPaths(plan))
			if sys.Crypttab != nil && strings.Contains(rc.name, "al1-2011.09") {
				assert.Contains(t, strings.Join(plan.Warnings, "\n"), "still unlocks my_enc_fs at boot")
			}
			for _, w := range plan.Warnings {
				assert.NotContains(t, w, "no active /etc/crypttab line")
			}
			st, err := sys.Status(Volume{})
			require.NoError(t, err)
			assert.Equal(t, len(want) == 0, st.Disabled)

			require.NoError(t, plan.Apply(ApplyOptions{}))
			sys2, err := Detect(root)
			require.NoError(t, err)
			again, err := sys2.PlanDisableUnlock(Volume{})
			require.NoError(t, err)
			assert.True(t, again.Empty(), "second run changes nothing, got %v", changedPaths(again))
			st, err = sys2.Status(Volume{})
			require.NoError(t, err)
			assert.True(t, st.Disabled)
			// The volume itself is not done: crypttab/fstab are still pending there.
			vp, err := sys2.PlanDisableUnlock(rc.vol)
			require.NoError(t, err)
			for _, p := range changedPaths(vp) {
				assert.Contains(t, []string{"/etc/crypttab", "/etc/fstab"}, p)
			}
			_, err = sys2.PlanUndo(rc.vol.Name)
			assert.ErrorIs(t, err, ErrNoUndo, "the volume has no record of its own")

			undo, err := sys2.PlanUndo("")
			if len(want) == 0 {
				assert.ErrorIs(t, err, ErrNoUndo)
				return
			}
			require.NoError(t, err)
			require.NoError(t, undo.Apply(ApplyOptions{}))
			assert.Equal(t, orig, treeState(t, root, true), "undo restores the original tree")
			_, err = sys2.PlanUndo("")
			assert.ErrorIs(t, err, ErrNoUndo)
		})
	}
}

// TestHasBootConfig: every kind of file that can unlock a volume at boot counts, a
// generated grub.cfg alone too; an empty root does not.
func TestHasBootConfig(t *testing.T) {
	for name, files := range map[string]fakeRoot{
		"grub.cfg only": {"boot/grub2/grub.cfg": al2GrubCfg},
		"menu.lst only": {"boot/grub/menu.lst": "title x\n\tkernel /vmlinuz ro\n"},
		"crypttab only": {"etc/crypttab": "my_enc_fs /dev/xvdf none luks\n"},
		"fstab only":    {"etc/fstab": "/dev/xvda1 / ext4 defaults 1 1\n"},
	} {
		sys, err := Detect(files.build(t))
		require.NoError(t, err, name)
		assert.True(t, sys.HasBootConfig(), name)
	}
	sys, err := Detect(t.TempDir())
	require.NoError(t, err)
	assert.False(t, sys.HasBootConfig())
}
