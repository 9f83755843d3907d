package keeper

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/keeper/internal/sshdtest"
	"github.com/cloudluks/cloudluks/keeper/wire"
)

// The keeper going away mid-unlock (a timeout, a restart, the network) does not kill
// the real serve: its progress lines on stderr, the SSH channel, hit a closed pipe after
// the keeper left, and serve goes on to the end of the unlock instead of dying of SIGPIPE.
func TestServeSurvivesTheKeeperLeaving(t *testing.T) {
	serve := buildServe(t)
	img, uuid, vk := luksImage(t)
	dir := t.TempDir()
	lockDir := filepath.Join(dir, "lock")
	require.NoError(t, os.MkdirAll(lockDir, 0o700))
	root := filepath.Join(dir, "root")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	exitLog := filepath.Join(dir, "exit")
	key := sshdtest.NewKey(t)
	forced := `restrict,command="` + serve + ` serve --device ` + img + ` --name data --mount /data --lock-dir ` + lockDir +
		` --root ` + root + `; echo exit=$? > ` + exitLog + `"`
	srv := sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{key.AuthorizedLine(forced)}})
	lf, err := os.OpenFile(filepath.Join(lockDir, "serve-data.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(lf.Fd()), syscall.LOCK_EX))
	k, err := New(Options{NoEC2: true, Secrets: &vault{m: map[string][]byte{}}}, nil)
	require.NoError(t, err)
	tg := Target{Name: "h", InstanceID: "i-0123456789abcdef0", VolumeID: "vol-0123456789abcdef0", LUKSUUID: uuid,
		SSH: SSHConfig{Addr: srv.Addr, User: srv.User, KeyFile: key.File, KnownHosts: []string{srv.KnownHosts(t)}}}
	c, err := transport{dialTimeout: DefaultDialTimeout}.dial(context.Background(), &tg.SSH, srv.Addr, tg.InstanceID)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sess, cl, err := k.openSession(ctx, &tg, c)
	require.NoError(t, err)
	st, err := cl.State(ctx)
	require.NoError(t, err)
	_, err = cl.Unlock(ctx, wire.UnlockRequest{BootID: st.BootID, LUKSUUID: uuid}, vk) // serve waits for the lock; ctx ends
	require.Error(t, err)
	sess.Close()
	c.Close()
	time.Sleep(500 * time.Millisecond)
	lf.Close() // released: serve goes on with the unlock, writing its steps to a dead channel
	require.Eventually(t, func() bool { _, err := os.Stat(exitLog); return err == nil }, 30*time.Second, 50*time.Millisecond)
	b, err := os.ReadFile(exitLog)
	require.NoError(t, err)
	require.NotEqual(t, "exit=141", strings.TrimSpace(string(b)), "serve was killed by SIGPIPE mid-unlock")
}
