package keeper

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A pure rename (SetTargets with the same target under another name, as a retag into
// another group does) does not restart the target's watcher: no new connection, and the
// passes over the open one are audited under the new name.
func TestRunRenameKeepsWatcher(t *testing.T) {
	client, inst, vol := motoFleet(t)
	in := newInstance(t, inst[0], vol[0])
	sec := &vault{m: map[string][]byte{vol[0]: []byte(testPassphrase)}}
	tg := in.target()
	var audit lockedAudit
	k, err := New(Options{EC2: client, Secrets: sec, Audit: &audit, Keepalive: 200 * time.Millisecond, PollEvery: 200 * time.Millisecond,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 400 * time.Millisecond}, []Target{tg})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitStatus(t, k, tg.Name, 30*time.Second, func(s TargetStatus) bool { return s.State == StateUnlocked })
	const dialled = `"step":"connect","decision":"ok"`
	before := strings.Count(audit.String(), dialled)
	require.Equal(t, 1, before)

	renamed := tg
	renamed.Name = "db/" + tg.InstanceID
	require.NoError(t, k.SetTargets([]Target{renamed}))
	// Passes over the open connection (every PollEvery) name it anew.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(audit.String(), `"target":"`+renamed.Name+`","instance":"`+tg.InstanceID+`","volume":"`+tg.VolumeID+`","boot_id"`) {
		require.True(t, time.Now().Before(deadline), "no pass under the new name:\n%s", audit.String())
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, before, strings.Count(audit.String(), dialled), "the rename redialled the instance")
	require.Equal(t, renamed.Name, k.Status()[0].Name)
}
