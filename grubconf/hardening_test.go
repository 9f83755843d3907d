package grubconf

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUndoRestoresExactTree: in a bare root (only a boot loader configuration), Apply
// has to make /var, /var/lib, … for its undo record (and /etc/kernel for a created
// /etc/kernel/cmdline); undo removes every directory Apply made, so the tree (every path
// and mode) is as before. /var and /var/lib used to stay behind.
func TestUndoRestoresExactTree(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files fakeRoot
	}{
		{"legacy menu.lst", fakeRoot{"boot/grub/menu.lst": "fixture:02-amazon-linux-2018.03-hvm-menu.lst"}},
		// BLS: /etc/kernel/cmdline is created, and /etc/kernel with it.
		{"bls entry", fakeRoot{"boot/loader/entries/a-6.1.conf": "fixture:08-al2023-bls-entry.conf",
			"etc/os-release": "ID=\"amzn\"\nVERSION_ID=\"2023\"\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tc.files.build(t)
			before := treeState(t, root, false)
			sys, err := Detect(root)
			require.NoError(t, err)
			plan, err := sys.PlanDisableUnlock(Volume{})
			require.NoError(t, err)
			require.NotEmpty(t, plan.Changes)
			require.NoError(t, plan.Apply(ApplyOptions{}))
			require.NotEqual(t, before, treeState(t, root, false))
			if tc.name == "bls entry" {
				require.Equal(t, FamilyBLS, sys.Family)
				require.FileExists(t, hostPath(root, "/etc/kernel/cmdline"))
			}

			undo, err := sys.PlanUndo("")
			require.NoError(t, err)
			require.NoError(t, undo.Apply(ApplyOptions{}))
			assert.Equal(t, before, treeState(t, root, false), "tree exactly as before")
		})
	}
}

// TestUndoRestoresExactTreeTwoVolumes: the directories made for the first volume's
// record are removed by whichever record is undone last.
func TestUndoRestoresExactTreeTwoVolumes(t *testing.T) {
	for _, order := range [][2]string{{"a", "b"}, {"b", "a"}} {
		t.Run(order[0]+" first", func(t *testing.T) {
			root := fakeRoot{
				"boot/grub/menu.lst": "fixture:02-amazon-linux-2018.03-hvm-menu.lst",
				"etc/crypttab":       "a /dev/xvdf none luks\nb /dev/xvdg none luks\n",
			}.build(t)
			before := treeState(t, root, false)
			sys, err := Detect(root)
			require.NoError(t, err)
			for _, v := range []string{"a", "b"} {
				plan, err := sys.PlanDisableUnlock(Volume{Name: v})
				require.NoError(t, err)
				require.NotEmpty(t, plan.Changes)
				require.NoError(t, plan.Apply(ApplyOptions{}))
			}
			for _, v := range order {
				undo, err := sys.PlanUndo(v)
				require.NoError(t, err)
				require.NoError(t, undo.Apply(ApplyOptions{}), v)
			}
			assert.Equal(t, before, treeState(t, root, false), "tree exactly as before")
		})
	}
}

func rootCaseNamed(t testing.TB, name string) rootCase {
	t.Helper()
	for _, rc := range rootCases {
		if rc.name == name {
			return rc
		}
	}
	t.Fatalf("no root case %q", name)
	return rootCase{}
}

// sparse makes the root-relative file p a 2 GiB sparse file (it takes no disk space).
func sparse(t testing.TB, root, p string) {
	t.Helper()
	require.NoError(t, os.Truncate(hostPath(root, p), 2<<30))
}

// requireTooLarge checks err is a *FileTooLargeError naming p.
func requireTooLarge(t testing.TB, err error, p string) {
	t.Helper()
	require.ErrorIs(t, err, ErrFileTooLarge)
	var big *FileTooLargeError
	require.True(t, errors.As(err, &big), "%v", err)
	assert.Equal(t, p, big.Path)
	assert.Contains(t, err.Error(), p)
}

// TestOversizedFilesRefused: every file grubconf reads has a size limit (MaxFileSize),
// checked before reading, so a 2 GiB sparse grub.cfg in a mounted image is refused with
// ErrFileTooLarge naming it instead of being read into memory (it used to take a minute
// and gigabytes). Detect refuses, and so do Plan, Apply and PlanUndo when the file grows
// after the step before.
func TestOversizedFilesRefused(t *testing.T) {
	for _, tc := range []struct{ rootCase, file string }{
		{"al1-2011.09", "/boot/grub/menu.lst"},
		{"rhel6-xen-no-arg-yet", "/boot/grub/grub.conf"},
		{"al2", "/boot/grub2/grub.cfg"},
		{"al2", "/etc/default/grub"},
		{"al2", "/etc/crypttab"},
		{"al2", "/etc/fstab"},
		{"ubuntu-22.04", "/etc/default/grub.d/50-cloudimg-settings.cfg"},
		{"centos8-kernelopts", "/boot/efi/EFI/centos/grubenv"},
		{"al2023-bls", "/boot/loader/entries/ec2a0b39b1e83ac01ea1c63c4fb0e6ba-6.1.170-213.321.amzn2023.x86_64.conf"},
		{"rhel9-kernel-cmdline", "/etc/kernel/cmdline"},
	} {
		t.Run(tc.rootCase+tc.file, func(t *testing.T) {
			rc := rootCaseNamed(t, tc.rootCase)
			vol := rc.vol

			root := rc.files(t).build(t)
			sparse(t, root, tc.file)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			_, err := Detect(root)
			runtime.ReadMemStats(&ms1)
			requireTooLarge(t, err, tc.file)
			assert.Less(t, ms1.TotalAlloc-ms0.TotalAlloc, uint64(MaxFileSize), "the file was not read")

			// Grown after Detect: Plan refuses.
			root = rc.files(t).build(t)
			sys, err := Detect(root)
			require.NoError(t, err)
			sparse(t, root, tc.file)
			_, err = sys.PlanDisableUnlock(vol)
			requireTooLarge(t, err, tc.file)
		})
	}
	t.Run("apply and undo", func(t *testing.T) {
		rc := rootCaseNamed(t, "al2")
		root := rc.files(t).build(t)
		sys, err := Detect(root)
		require.NoError(t, err)
		plan, err := sys.PlanDisableUnlock(rc.vol)
		require.NoError(t, err)
		sparse(t, root, "/etc/fstab")
		requireTooLarge(t, plan.Apply(ApplyOptions{}), "/etc/fstab")

		root = rc.files(t).build(t)
		sys, err = Detect(root)
		require.NoError(t, err)
		plan, err = sys.PlanDisableUnlock(rc.vol)
		require.NoError(t, err)
		require.NoError(t, plan.Apply(ApplyOptions{}))
		sparse(t, root, "/etc/fstab")
		_, err = sys.PlanUndo(rc.vol.Name)
		requireTooLarge(t, err, "/etc/fstab")
		require.NoError(t, os.Truncate(hostPath(root, "/etc/fstab"), 0))
		sparse(t, root, journalPath(rc.vol.Name))
		_, err = sys.PlanUndo(rc.vol.Name)
		requireTooLarge(t, err, journalPath(rc.vol.Name))
	})
}

// TestReadLimitedWhileReading: a file whose size says nothing (or that grows while it
// is read) is still cut off at the limit: /dev/zero has size 0 and no end.
func TestReadLimitedWhileReading(t *testing.T) {
	_, err := readLimited("/", "/dev/zero")
	requireTooLarge(t, err, "/dev/zero")
	var big *FileTooLargeError
	require.True(t, errors.As(err, &big))
	assert.Equal(t, int64(-1), big.Size)
}

// copyTree copies the regular files and directories under src to dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
}

// TestApplyRefusesSwappedDirectory: a directory under the root replaced by a symlink to
// a directory outside between Plan and Apply (holding the same files, so every content
// check passes through the link) makes Apply refuse with ErrConflict: nothing is written
// outside the root, and nothing inside either. Apply used to follow the link and edit
// the files outside.
func TestApplyRefusesSwappedDirectory(t *testing.T) {
	for _, dir := range []string{"etc", "boot/grub2", "etc/default"} {
		t.Run(dir, func(t *testing.T) {
			rc := rootCaseNamed(t, "al2")
			root := rc.files(t).build(t)
			sys, err := Detect(root)
			require.NoError(t, err)
			plan, err := sys.PlanDisableUnlock(rc.vol)
			require.NoError(t, err)
			require.NotEmpty(t, plan.Changes)

			outside := t.TempDir()
			copyTree(t, hostPath(root, dir), outside)
			require.NoError(t, os.RemoveAll(hostPath(root, dir)))
			require.NoError(t, os.Symlink(outside, hostPath(root, dir)))
			outBefore, inBefore := treeState(t, outside, false), treeState(t, root, false)

			err = plan.Apply(ApplyOptions{Backup: true})
			require.ErrorIs(t, err, ErrConflict)
			assert.Equal(t, outBefore, treeState(t, outside, false), "nothing written outside the root")
			assert.Equal(t, inBefore, treeState(t, root, false), "nothing written inside the root")
		})
	}
}

// TestWritesRefuseSymlinkedDirectory: the write primitives themselves (used after Check
// passed, so a swap in between is caught too) never go through a symlinked directory.
func TestWritesRefuseSymlinkedDirectory(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "fstab"), []byte("x\n"), 0o644))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "etc")))
	before := treeState(t, outside, false)
	require.ErrorIs(t, writeAtomic(root, "/etc/fstab", []byte("y\n"), 0o644), ErrConflict)
	require.ErrorIs(t, removeDurable(root, "/etc/fstab"), ErrConflict)
	require.ErrorIs(t, mkdirBeneath(root, "/etc/kernel", 0o755), ErrConflict)
	require.ErrorIs(t, removeEmptyDir(root, "/etc/x/y"), ErrConflict)
	_, err := readLimited(root, "/etc/fstab")
	require.ErrorIs(t, err, ErrConflict)
	assert.Equal(t, before, treeState(t, outside, false))
}
