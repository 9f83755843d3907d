package grubconf

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var otherVol = Volume{Name: "other_fs", MountPoint: "/other"}

// TestUndoKeepsArgForOtherVolume: two volumes applied, one undone. The kernel argument is
// shared: the second volume's record never listed the boot-loader files (its apply found
// the argument there), so undoing the first used to take the argument out and turn
// boot-time unlock of the second back on. It stays while another record exists, the plan
// says so, and the last undo takes it out.
func TestUndoKeepsArgForOtherVolume(t *testing.T) {
	for _, name := range []string{"al1-2011.09", "al2", "al2023-bls"} {
		t.Run(name, func(t *testing.T) {
			rc := rootCaseNamed(t, name)
			files := rc.files(t)
			files["etc/crypttab"] += "other_fs /dev/xvdg none luks\n"
			files["etc/fstab"] += "/dev/mapper/other_fs /other ext4 defaults 0 2\n"
			root := files.build(t)
			orig := treeState(t, root, true)
			sys, err := Detect(root)
			require.NoError(t, err)
			for _, v := range []Volume{rc.vol, otherVol} {
				p, err := sys.PlanDisableUnlock(v)
				require.NoError(t, err)
				require.NoError(t, p.Apply(ApplyOptions{}))
			}
			undo, err := sys.PlanUndo(rc.vol.Name)
			require.NoError(t, err)
			assert.Contains(t, undo.Warnings, "kept "+rc.arg+": other_fs still needs it")
			require.NoError(t, undo.Apply(ApplyOptions{}))

			sys, err = Detect(root)
			require.NoError(t, err)
			st, err := sys.Status(otherVol)
			require.NoError(t, err)
			assert.True(t, st.Disabled, "other_fs still disabled, pending %v", st.Pending)
			st, err = sys.Status(rc.vol)
			require.NoError(t, err)
			assert.False(t, st.Disabled, "my_enc_fs's crypttab/fstab lines are back")

			undo, err = sys.PlanUndo(otherVol.Name)
			require.NoError(t, err)
			for _, w := range undo.Warnings {
				assert.NotContains(t, w, "kept")
			}
			require.NoError(t, undo.Apply(ApplyOptions{}))
			assert.Equal(t, orig, treeState(t, root, true), "the last undo restores the original tree")
			for _, v := range []string{rc.vol.Name, otherVol.Name} {
				_, err = sys.PlanUndo(v)
				assert.ErrorIs(t, err, ErrNoUndo)
			}
			_, err = os.Stat(hostPath(root, JournalDir))
			assert.True(t, os.IsNotExist(err), "no record left")
		})
	}
}

// TestUndoAfterHandRevert: an edit already reverted by hand (the backup copied back) is
// not a conflict, neither at once nor after a further apply; undo used to refuse for
// ever with "line 3 was changed since it was edited".
func TestUndoAfterHandRevert(t *testing.T) {
	for _, again := range []bool{false, true} {
		root := rootCases[0].files(t).build(t)
		orig := treeState(t, root, true)
		sys, err := Detect(root)
		require.NoError(t, err)
		p, err := sys.PlanDisableUnlock(myVol)
		require.NoError(t, err)
		require.NoError(t, p.Apply(ApplyOptions{Backup: true}))
		bak, err := os.ReadFile(hostPath(root, "/etc/fstab") + BackupSuffix)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(hostPath(root, "/etc/fstab"), bak, 0o644))
		if again {
			p, err := sys.PlanDisableUnlock(myVol)
			require.NoError(t, err)
			require.Equal(t, []string{"/etc/fstab"}, changedPaths(p))
			require.NoError(t, p.Apply(ApplyOptions{}))
		}
		undo, err := sys.PlanUndo(myVol.Name)
		require.NoError(t, err)
		assert.Empty(t, undo.Warnings, "apply again: %v", again)
		require.NoError(t, undo.Apply(ApplyOptions{}), "apply again: %v", again)
		assert.Equal(t, orig, treeState(t, root, true), "apply again: %v", again)
	}
}

// TestUndoLineGone: a kernel update replaced the entry apply had edited (yum installed
// 97.45 and removed 97.44). The edited line is simply gone: undo skips it with a warning
// and reverts the rest instead of refusing.
func TestUndoLineGone(t *testing.T) {
	root := rootCases[0].files(t).build(t)
	orig := treeState(t, root, true)
	sys, err := Detect(root)
	require.NoError(t, err)
	p, err := sys.PlanDisableUnlock(myVol)
	require.NoError(t, err)
	require.NoError(t, p.Apply(ApplyOptions{}))
	menu := hostPath(root, "/boot/grub/menu.lst")
	b, err := os.ReadFile(menu)
	require.NoError(t, err)
	updated := strings.ReplaceAll(strings.ReplaceAll(string(b), "97.44", "97.45"), " rd_NO_LUKS", "")
	require.NoError(t, os.WriteFile(menu, []byte(updated), 0o644))

	undo, err := sys.PlanUndo(myVol.Name)
	require.NoError(t, err)
	assert.Equal(t, []string{"/boot/grub/menu.lst: line 8 is gone since it was edited (a kernel update may have removed its entry); skipped"}, undo.Warnings)
	require.NoError(t, undo.Apply(ApplyOptions{}))
	after := treeState(t, root, true)
	for _, f := range []string{"etc/crypttab", "etc/fstab"} {
		assert.Equal(t, orig[f], after[f], f)
	}
	got, err := os.ReadFile(menu)
	require.NoError(t, err)
	assert.Equal(t, updated, string(got), "the kernel update's file is kept")
	_, err = sys.PlanUndo(myVol.Name)
	assert.ErrorIs(t, err, ErrNoUndo)
}

// TestUndoTakesOutCopiedArg: a kernel update after apply built its new entry from the
// edited configuration, so the entry carries the argument too (grubby --copy-default on
// Amazon Linux AMI, kernel-install from /etc/kernel/cmdline on AL2023). Undo used to
// leave the argument there, silently; the argument is the record's, so undo takes it
// out of those entries as well, keeps the entries and says which it edited.
func TestUndoTakesOutCopiedArg(t *testing.T) {
	t.Run("al1 grubby --copy-default", func(t *testing.T) {
		root := rootCases[0].files(t).build(t)
		orig := treeState(t, root, true)
		menu := hostPath(root, "/boot/grub/menu.lst")
		origMenu, err := os.ReadFile(menu)
		require.NoError(t, err)
		sys, err := Detect(root)
		require.NoError(t, err)
		p, err := sys.PlanDisableUnlock(myVol)
		require.NoError(t, err)
		require.NoError(t, p.Apply(ApplyOptions{}))
		b, err := os.ReadFile(menu)
		require.NoError(t, err)
		entry := "title Amazon Linux 2011.09 (2.6.35.14-97.45.amzn1.x86_64)\nroot (hd0)\nkernel /boot/vmlinuz-2.6.35.14-97.45.amzn1.x86_64 root=LABEL=/ console=hvc0 LANG=en_US.UTF-8 KEYTABLE=us%s\ninitrd /boot/initramfs-2.6.35.14-97.45.amzn1.x86_64.img\n"
		i := strings.Index(string(b), "title ")
		require.NoError(t, os.WriteFile(menu, []byte(string(b[:i])+fmt.Sprintf(entry, " rd_NO_LUKS")+string(b[i:])), 0o644))

		undo, err := sys.PlanUndo(myVol.Name)
		require.NoError(t, err)
		assert.Equal(t, []string{"/boot/grub/menu.lst: line 8 was added since the apply with rd_NO_LUKS copied in; rd_NO_LUKS taken out"}, undo.Warnings)
		require.NoError(t, undo.Apply(ApplyOptions{}))
		got, err := os.ReadFile(menu)
		require.NoError(t, err)
		j := strings.Index(string(origMenu), "title ")
		assert.Equal(t, string(origMenu[:j])+fmt.Sprintf(entry, "")+string(origMenu[j:]), string(got))
		after := treeState(t, root, true)
		for _, f := range []string{"etc/crypttab", "etc/fstab"} {
			assert.Equal(t, orig[f], after[f], f)
		}
	})
	t.Run("al2023 kernel-install", func(t *testing.T) {
		rc := rootCaseNamed(t, "al2023-bls")
		root := rc.files(t).build(t)
		orig := treeState(t, root, true)
		sys, err := Detect(root)
		require.NoError(t, err)
		p, err := sys.PlanDisableUnlock(rc.vol)
		require.NoError(t, err)
		require.NoError(t, p.Apply(ApplyOptions{}))
		const dir = "/boot/loader/entries/"
		old := "ec2a0b39b1e83ac01ea1c63c4fb0e6ba-6.1.170-213.321.amzn2023.x86_64.conf"
		b, err := os.ReadFile(hostPath(root, dir+old))
		require.NoError(t, err)
		require.Contains(t, string(b), " rd.luks=0\n")
		newName := strings.ReplaceAll(old, "6.1.170-213.321", "6.1.175-220.330")
		newEntry := strings.ReplaceAll(string(b), "6.1.170-213.321", "6.1.175-220.330")
		require.NoError(t, os.WriteFile(hostPath(root, dir+newName), []byte(newEntry), 0o644))

		sys, err = Detect(root)
		require.NoError(t, err)
		undo, err := sys.PlanUndo(rc.vol.Name)
		require.NoError(t, err)
		assert.Equal(t, []string{dir + newName + ": line 5 was added since the apply with rd.luks=0 copied in; rd.luks=0 taken out"}, undo.Warnings)
		require.NoError(t, undo.Apply(ApplyOptions{}))
		after := treeState(t, root, true)
		got, err := os.ReadFile(hostPath(root, dir+newName))
		require.NoError(t, err)
		assert.Equal(t, strings.Replace(newEntry, " rd.luks=0", "", 1), string(got))
		delete(after, strings.TrimPrefix(dir+newName, "/"))
		assert.Equal(t, orig, after, "everything else as before the apply")
	})
}
