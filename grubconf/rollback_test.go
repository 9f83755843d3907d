package grubconf

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestApplyFailureRollsBackEverything: when a write fails part way, Apply puts back the
// files already written and also the undo record and the backup copies it made, so the
// root is exactly as before and there is nothing to undo (the record used to stay, and
// PlanUndo then failed with ErrConflict on a system that had no change at all).
func TestApplyFailureRollsBackEverything(t *testing.T) {
	root := rootCases[0].files(t).build(t)
	sys, err := Detect(root)
	require.NoError(t, err)
	plan, err := sys.PlanDisableUnlock(myVol)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(plan.Changes), 2)
	// The backup copy of the last file cannot be written: a directory is in its place.
	last := plan.Changes[len(plan.Changes)-1].Path
	require.NoError(t, os.Mkdir(hostPath(root, last)+BackupSuffix, 0o755))
	before := treeState(t, root, false)

	err = plan.Apply(ApplyOptions{Backup: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), last)
	assert.Equal(t, before, treeState(t, root, false), "root exactly as before")
	_, err = sys.PlanUndo(myVol.Name)
	assert.ErrorIs(t, err, ErrNoUndo)

	// With an earlier record, a failed apply leaves that record as it was.
	require.NoError(t, os.Remove(hostPath(root, last)+BackupSuffix))
	first, err := sys.PlanDisableUnlock(myVol)
	require.NoError(t, err)
	require.NoError(t, first.Apply(ApplyOptions{}))
	journal, err := os.ReadFile(hostPath(root, journalPath(myVol.Name)))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(hostPath(root, "/etc/fstab"), []byte(fstabData), 0o644))
	again, err := sys.PlanDisableUnlock(myVol)
	require.NoError(t, err)
	require.Len(t, again.Changes, 1)
	require.NoError(t, os.Mkdir(hostPath(root, "/etc/fstab")+BackupSuffix, 0o755))
	require.Error(t, again.Apply(ApplyOptions{Backup: true}))
	got, err := os.ReadFile(hostPath(root, journalPath(myVol.Name)))
	require.NoError(t, err)
	assert.Equal(t, string(journal), string(got), "earlier undo record kept")
}

// TestNewFilesStayInRoot: files Apply creates (the undo record, a new drop-in) are placed
// by resolving their directories inside the root like the existing files: an absolute
// symlink in a mounted image (var -> /somewhere) names /somewhere in the image, not on
// the host. The record used to be written through the host's view of the link, outside
// the root.
func TestNewFilesStayInRoot(t *testing.T) {
	t.Run("undo record", func(t *testing.T) { testNewFilesStayInRoot(t, 0, "var", "lib/cloudluks/grubconf/"+myVol.Name+".json") })
	// al2023-bls: /etc/kernel/cmdline is created from the newest BLS entry.
	al2023 := -1
	for i, rc := range rootCases {
		if rc.name == "al2023-bls" {
			al2023 = i
		}
	}
	require.GreaterOrEqual(t, al2023, 0)
	t.Run("created /etc/kernel/cmdline", func(t *testing.T) { testNewFilesStayInRoot(t, al2023, "etc/kernel", "cmdline") })
}

func testNewFilesStayInRoot(t *testing.T, rootCase int, link, created string) {
	outside := t.TempDir() // a host directory outside the root
	files := rootCases[rootCase].files(t)
	files[link] = "->" + outside
	root := files.build(t)
	inRoot := strings.TrimPrefix(outside, "/")
	state := func() map[string]string {
		m := treeState(t, root, true)
		for k := range m {
			if strings.HasPrefix(k, inRoot) || strings.HasPrefix(inRoot, k+"/") {
				delete(m, k)
			}
		}
		return m
	}
	before := state()

	sys, err := Detect(root)
	require.NoError(t, err)
	plan, err := sys.PlanDisableUnlock(rootCases[rootCase].vol)
	require.NoError(t, err)
	require.NoError(t, plan.Apply(ApplyOptions{}))
	ents, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing written outside the root")
	_, err = os.Stat(filepath.Join(root, inRoot, created))
	require.NoError(t, err, "created where the link points inside the root")

	undo, err := sys.PlanUndo(rootCases[rootCase].vol.Name)
	require.NoError(t, err)
	require.NoError(t, undo.Apply(ApplyOptions{}))
	assert.Equal(t, before, state())
	ents, err = os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, ents)
}

// TestUndoKeepsLaterChanges: on every kind of root, files changed by someone else after
// the apply (a comment added at the top, grub2-set-default setting saved_entry in grubenv)
// lose exactly what the apply added and keep that change; a file the apply created keeps
// only the foreign lines. Undo used to refuse all of this with ErrConflict.
func TestUndoKeepsLaterChanges(t *testing.T) {
	const foreign = "# added later by someone else\n"
	for _, rc := range rootCases {
		t.Run(rc.name, func(t *testing.T) {
			root := rc.files(t).build(t)
			sys, err := Detect(root)
			require.NoError(t, err)
			plan, err := sys.PlanDisableUnlock(rc.vol)
			require.NoError(t, err)
			require.NoError(t, plan.Apply(ApplyOptions{}))
			want := map[string]string{}
			for _, c := range plan.Changes {
				hp := hostPath(root, c.Path)
				b, err := os.ReadFile(hp)
				require.NoError(t, err)
				if bytes.HasPrefix(b, []byte(grubenvSignature)) {
					env := parseGrubenv(b)
					require.NoError(t, env.Set("saved_entry", "later"))
					require.NoError(t, os.WriteFile(hp, env.Bytes(), 0o644))
					orig := parseGrubenv(c.Old)
					require.NoError(t, orig.Set("saved_entry", "later"))
					want[c.Path] = string(orig.Bytes())
					continue
				}
				require.NoError(t, os.WriteFile(hp, append([]byte(foreign), b...), 0o644))
				want[c.Path] = foreign + string(c.Old)
			}
			undo, err := sys.PlanUndo(rc.vol.Name)
			require.NoError(t, err)
			assert.Empty(t, undo.Warnings)
			require.NoError(t, undo.Apply(ApplyOptions{}))
			for p, w := range want {
				got, err := os.ReadFile(hostPath(root, p))
				require.NoError(t, err, p)
				assert.Equal(t, w, string(got), p)
			}
		})
	}
}
