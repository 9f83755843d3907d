package grubconf

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rootCaseNamed(t *testing.T, name string) rootCase {
	t.Helper()
	for _, rc := range rootCases {
		if rc.name == name {
			return rc
		}
	}
	t.Fatalf("no root case %s", name)
	return rootCase{}
}

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
