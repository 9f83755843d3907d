package grubconf

import (
	"os"
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
