package keeper_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/keeper"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(p, got, 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

func statusRows() []keeper.TargetStatus {
	at := time.Date(2026, 12, 4, 18, 2, 3, 0, time.UTC)
	return []keeper.TargetStatus{
		{Name: "db-1/data", InstanceID: "i-0aaaaaaaaaaaaaaa1", VolumeID: "vol-0bbbbbbbbbbbbbbb1", Addr: "203.0.113.7:22",
			BootID: "3f1c2b9e-6d4a-4f0e-9a51-2d7c8e1f0a42", State: keeper.StateUnlocked, LastSeen: at.Add(time.Minute), LastUnlock: at},
		{Name: "web-1/data", InstanceID: "i-0aaaaaaaaaaaaaaa2", VolumeID: "vol-0bbbbbbbbbbbbbbb2",
			State: keeper.StateUnreachable, Reason: "203.0.113.8:22: unreachable: dial tcp: i/o timeout"},
		{Name: "web-2/data", InstanceID: "i-0aaaaaaaaaaaaaaa3", VolumeID: "vol-0bbbbbbbbbbbbbbb3", BootID: "9d0e",
			State: keeper.StateRefused, Reason: "volume not attached to this instance:\nvol-0bbbbbbbbbbbbbbb3 is attached to i-0ccc (attached)", Attempts: 0},
		{Name: "web-3/data", InstanceID: "i-0aaaaaaaaaaaaaaa4", VolumeID: "vol-0bbbbbbbbbbbbbbb4",
			State: keeper.StateStuck, Reason: "console shows a passphrase prompt"},
		{Name: "web-4/data", InstanceID: "i-0aaaaaaaaaaaaaaa5", VolumeID: "vol-0bbbbbbbbbbbbbbb5", BootID: "77aa01bc-0000-4000-8000-000000000000",
			State: keeper.StateNeedsUnlock, Attempts: 1, LastUnlock: at.Add(-48 * time.Hour)},
		{Name: "new/data", InstanceID: "i-0aaaaaaaaaaaaaaa6", VolumeID: "vol-0bbbbbbbbbbbbbbb6", State: keeper.StateUnknown},
	}
}

func TestStatusTableGolden(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, keeper.WriteStatusTable(&b, statusRows()))
	golden(t, "status.txt", b.Bytes())
	b.Reset()
	require.NoError(t, keeper.WriteStatusTable(&b, nil))
	golden(t, "status-empty.txt", b.Bytes())
}

func TestStatusJSONGolden(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, keeper.WriteStatusJSON(&b, statusRows()))
	golden(t, "status.json", b.Bytes())
	b.Reset()
	require.NoError(t, keeper.WriteStatusJSON(&b, nil))
	golden(t, "status-empty.json", b.Bytes())
}
