package keeper

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/keeper/internal/sshdtest"
	"github.com/cloudluks/cloudluks/luks"
)

// buildServe builds the real instance side, cmd/encrypted-volume, into a temporary
// directory.
func buildServe(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "encrypted-volume")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/encrypted-volume")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build encrypted-volume: %v\n%s", err, out)
	}
	return bin
}

// TestAgainstRealServe talks to the real `encrypted-volume serve` through a real sshd,
// serving an image file on the host. The host has no NVMe device behind the image (and no
// device-mapper), so the serial check is where an unlock must stop: the test shows the
// refusal comes from real answers, that the State and Header the real serve sends are the
// ones the keeper reads, and that no key goes out.
func TestAgainstRealServe(t *testing.T) {
	serve := buildServe(t)
	img, uuid, vk := luksImage(t)
	dir := t.TempDir()
	rec := filepath.Join(dir, "stdin.rec")
	root := filepath.Join(dir, "root")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	key := sshdtest.NewKey(t)
	forced := `restrict,command="tee -a ` + rec + ` | ` + serve + ` serve --device ` + img +
		` --name data --mount /data --lock-dir ` + filepath.Join(dir, "lock") + ` --root ` + root + `"`
	srv := sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{key.AuthorizedLine(forced)}})
	bootID, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	require.NoError(t, err)

	var audit bytes.Buffer
	k, err := New(Options{NoEC2: true, Secrets: &vault{m: map[string][]byte{"vol-0123456789abcdef0": []byte(testPassphrase)}}, Audit: &audit}, nil)
	require.NoError(t, err)
	tg := Target{Name: "host/data", InstanceID: "i-0123456789abcdef0", VolumeID: "vol-0123456789abcdef0",
		Mapping: "data", MountPoint: "/data", LUKSUUID: uuid,
		SSH: SSHConfig{Addr: srv.Addr, User: srv.User, KeyFile: key.File, KnownHosts: []string{srv.KnownHosts(t)}}}

	t.Run("State and Header over the real protocol", func(t *testing.T) {
		c, err := transport{dialTimeout: DefaultDialTimeout}.dial(context.Background(), &tg.SSH, srv.Addr, tg.InstanceID)
		require.NoError(t, err)
		defer c.Close()
		sess, cl, err := k.openSession(context.Background(), &tg, c)
		require.NoError(t, err)
		defer sess.Close()
		st, err := cl.State(context.Background())
		require.NoError(t, err)
		require.Equal(t, strings.TrimSpace(string(bootID)), st.BootID)
		require.Equal(t, img, st.Device)
		require.Equal(t, uuid, st.LUKSUUID)
		require.Equal(t, 1, st.LUKSVersion)
		require.Equal(t, "data", st.Mapping)
		require.False(t, st.Mapped)
		raw, err := cl.Header(context.Background())
		require.NoError(t, err)
		h, err := luks.ReadHeader(struct{ io.ReaderAt }{bytes.NewReader(raw)})
		require.NoError(t, err)
		require.Equal(t, uuid, h.UUID)
		// The header the real serve sends opens locally with the passphrase.
		_, got, _, err := luks.Unlock(context.Background(), struct{ io.ReaderAt }{bytes.NewReader(raw)}, []byte(testPassphrase), luks.UnlockOptions{})
		require.NoError(t, err)
		require.Equal(t, vk, got.Bytes())
		got.Wipe()
	})
	require.NoError(t, os.Remove(rec))

	t.Run("no NVMe serial behind the device: refused, no key sent", func(t *testing.T) {
		res, uerr := k.UnlockOnce(context.Background(), tg)
		require.ErrorIs(t, uerr, ErrSerialMismatch)
		require.ErrorIs(t, uerr, ErrRefused)
		require.Contains(t, uerr.Error(), img)
		require.Equal(t, OutcomeRefused, res.Outcome)
		require.Equal(t, strings.TrimSpace(string(bootID)), res.BootID)
		waitRecorders(t, rec)
		sent, err := os.ReadFile(rec)
		require.NoError(t, err)
		require.NotEmpty(t, sent, "the keeper did talk to serve")
		require.False(t, bytes.Contains(sent, vk), "the key reached serve")
		noSecrets(t, "the session stream", sent, vk)
		noSecrets(t, "the error", []byte(uerr.Error()), vk)
	})
	t.Run("mount point mismatch: refused", func(t *testing.T) {
		other := tg
		other.MountPoint = "/srv"
		_, err := k.UnlockOnce(context.Background(), other)
		require.ErrorIs(t, err, ErrTargetMismatch)
		require.Contains(t, err.Error(), `mount point "/data"`)
	})
	noSecrets(t, "the audit log", audit.Bytes(), vk)
}
