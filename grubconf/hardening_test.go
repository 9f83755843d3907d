package grubconf

import (
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
