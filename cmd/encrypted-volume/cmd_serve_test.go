package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/keeper/wire"
	"github.com/cloudluks/cloudluks/luks"
)

const serveTestBootID = "0f5e3b7c-8d21-4c55-9a3e-2b8e4e1d6a90"

// serveImage formats an image with luks.Format and returns its path, header and key.
func serveImage(t *testing.T, dir string) (string, *luks.Header, []byte) {
	t.Helper()
	img := filepath.Join(dir, "disk.img")
	require.NoError(t, os.WriteFile(img, nil, 0o600))
	require.NoError(t, os.Truncate(img, fakeDeviceSize))
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	h, vk, err := luks.Format(context.Background(), f, []byte(testPass), luks.FormatOptions{ForceIterations: 1000})
	require.NoError(t, err)
	key := bytes.Clone(vk.Bytes())
	vk.Wipe()
	return img, h, key
}

// syncBuf is a bytes.Buffer safe for the serve goroutine and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// serveSession runs `encrypted-volume serve args` in-process on pipes and returns a
// Client that has done Hello, the program's stderr, and a func that closes the keeper's
// side and returns the exit code.
func serveSession(t *testing.T, a *app, args ...string) (*wire.Client, *syncBuf, func() int) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	stderr := &syncBuf{}
	a.stdin, a.stdout, a.stderr = inR, outW, stderr
	done := make(chan int, 1)
	go func() {
		code := a.main(context.Background(), append([]string{"serve"}, args...))
		outW.Close()
		inR.Close()
		done <- code
	}()
	cl := wire.NewClient(struct {
		io.Reader
		io.Writer
	}{outR, inW}, "serve-test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := cl.Hello(ctx)
	require.NoError(t, err, "stderr: %s", stderr)
	return cl, stderr, func() int {
		inW.Close()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not end after the keeper closed")
			return -1
		}
	}
}

func serveApp(t *testing.T, l local) *app {
	t.Helper()
	bootID := filepath.Join(t.TempDir(), "boot_id")
	require.NoError(t, os.WriteFile(bootID, []byte(serveTestBootID+"\n"), 0o644))
	return &app{local: l, boot: &fakeBoot{disabled: map[string]bool{"/": true}}, bootID: bootID}
}

// TestServeHost: on the host (no device-mapper) State and Header answer from a real
// luks.Format image; every Unlock is refused with a clear reason and leaves nothing.
func TestServeHost(t *testing.T) {
	dir := t.TempDir()
	img, h, key := serveImage(t, dir)
	mp := filepath.Join(dir, "mnt")
	lockDir := filepath.Join(dir, "lock")
	a := serveApp(t, sysLocal{})
	cl, stderr, closeFn := serveSession(t, a, "--device", img, "--name", "kt_serve", "--mount", mp, "--lock-dir", lockDir)
	ctx := context.Background()

	st, err := cl.State(ctx)
	require.NoError(t, err)
	assert.Equal(t, wire.State{BootID: serveTestBootID, Device: img, LUKSVersion: 1, LUKSUUID: h.UUID,
		Mapping: "kt_serve", MountPoint: mp, BootUnlockDisabled: true}, st)

	hdr, err := cl.Header(ctx)
	require.NoError(t, err)
	assert.Len(t, hdr, int(h.MetadataSectors()*luks.SectorSize))
	// What the keeper does with it: unlock the header alone, locally.
	_, vk, _, err := luks.Unlock(ctx, bytes.NewReader(hdr), []byte(testPass), luks.UnlockOptions{})
	require.NoError(t, err)
	assert.Equal(t, key, vk.Bytes())
	vk.Wipe()

	wrong := bytes.Clone(key)
	wrong[0] ^= 0x80
	for _, tc := range []struct {
		name   string
		req    wire.UnlockRequest
		key    []byte
		reason string
	}{
		{"stale boot id", wire.UnlockRequest{BootID: "11111111-2222-3333-4444-555555555555", LUKSUUID: h.UUID}, key, "boot id is " + serveTestBootID + ", the keeper expected 11111111-"},
		{"other UUID", wire.UnlockRequest{BootID: serveTestBootID, LUKSUUID: "00000000-0000-0000-0000-000000000000"}, key, "LUKS UUID of " + img + " is " + h.UUID},
		{"wrong key", wire.UnlockRequest{BootID: serveTestBootID, LUKSUUID: h.UUID}, wrong, "volume key does not match the volume"},
		{"short key", wire.UnlockRequest{BootID: serveTestBootID, LUKSUUID: h.UUID}, key[:32], "volume key does not match the volume"},
		{"right key, no device-mapper", wire.UnlockRequest{BootID: serveTestBootID, LUKSUUID: h.UUID}, key, "step 1/3 failed (luksOpen " + img + " kt_serve (volume key from the keeper)): "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := cl.Unlock(ctx, tc.req, tc.key)
			require.NoError(t, err)
			assert.Equal(t, wire.StatusRefused, r.Status)
			assert.Contains(t, r.Reason, tc.reason)
			assert.Empty(t, r.Mounted)
			_, err = os.Stat("/dev/mapper/kt_serve")
			assert.True(t, os.IsNotExist(err), "nothing mapped")
			_, err = os.Stat(mp)
			assert.True(t, os.IsNotExist(err), "mount point not even created")
		})
	}
	assert.Equal(t, 0, closeFn())
	out := stderr.String()
	t.Logf("serve's stderr:\n%s", out)
	assert.Contains(t, out, `serve: keeper "serve-test" connected (protocol 1)`)
	assert.Contains(t, out, "serve: unlock: refused: boot id is")
	assert.NotContains(t, out, hex.EncodeToString(key[:8]))
	assert.False(t, bytes.Contains([]byte(out), key[:8]), "no key bytes on stderr")
	assert.NotContains(t, out, testPass)
}

// TestServeUnlockFlow: with the privileged parts faked (fakeLocal), a right key maps,
// mounts and runs the hooks; a second request sees it done; a failing hook still reports
// the volume unlocked and mounted.
func TestServeUnlockFlow(t *testing.T) {
	dir := t.TempDir()
	img, h, key := serveImage(t, dir)
	l := newFakeLocal(dir)
	l.resolved["vol-0123456789abcdef0"] = img
	mp := filepath.Join(dir, "mnt")
	self, err := os.Executable()
	require.NoError(t, err)
	probe := filepath.Join(dir, "probe.json")
	a := serveApp(t, l)
	cl, stderr, closeFn := serveSession(t, a, "--volume-id", "vol-0123456789abcdef0", "--name", "data",
		"--mount-point", mp, "--lock-dir", filepath.Join(dir, "lock"), "--hook", self+" "+hookProbeArg+" "+probe)
	ctx := context.Background()
	req := wire.UnlockRequest{BootID: serveTestBootID, LUKSUUID: h.UUID}

	st, err := cl.State(ctx)
	require.NoError(t, err)
	assert.Equal(t, img, st.Device)
	assert.Equal(t, "vol-0123456789abcdef0", st.VolumeID)
	assert.False(t, st.Mapped)

	r, err := cl.Unlock(ctx, req, key)
	require.NoError(t, err)
	assert.Equal(t, wire.Result{Status: wire.StatusUnlocked, Mounted: mp, HooksOK: true}, r, "stderr: %s", stderr)
	assert.Contains(t, l.calls, "keyring-open "+img+" data")
	assert.Contains(t, l.calls, "mount /dev/mapper/data "+mp)
	rec := readProbe(t, probe)
	assert.Empty(t, rec.Stdin, "a hook gets no stdin (the protocol)")
	assert.NotContains(t, strings.Join(rec.Env, " "), hex.EncodeToString(key[:4]))

	st, err = cl.State(ctx)
	require.NoError(t, err)
	assert.True(t, st.Mapped)
	assert.True(t, st.Mounted)

	r, err = cl.Unlock(ctx, req, key)
	require.NoError(t, err)
	assert.Equal(t, wire.StatusAlreadyUnlocked, r.Status)
	assert.Equal(t, mp, r.Mounted)
	assert.Equal(t, 0, closeFn())
	assert.Contains(t, stderr.String(), "Step 3/3: post-mount hooks (1)...", "step lines go to stderr")
}

func TestServeHookFailsMountFails(t *testing.T) {
	dir := t.TempDir()
	img, h, key := serveImage(t, dir)
	req := wire.UnlockRequest{BootID: serveTestBootID, LUKSUUID: h.UUID}
	ctx := context.Background()

	t.Run("hook fails", func(t *testing.T) {
		l := newFakeLocal(dir)
		cl, _, closeFn := serveSession(t, serveApp(t, l), "--device", img, "--name", "data",
			"--mount-point", filepath.Join(dir, "m1"), "--lock-dir", dir, "--hook", "/bin/false")
		r, err := cl.Unlock(ctx, req, key)
		require.NoError(t, err)
		assert.Equal(t, wire.StatusUnlocked, r.Status)
		assert.False(t, r.HooksOK)
		assert.Contains(t, r.Reason, "step 3/3 failed (post-mount hooks (1))")
		assert.Equal(t, 0, closeFn())
	})
	t.Run("mount point busy", func(t *testing.T) {
		l := newFakeLocal(dir)
		mp := filepath.Join(dir, "m2")
		l.mounts = append(l.mounts, mountEntry{Source: "tmpfs", MountPoint: mp, FSType: "tmpfs"})
		cl, _, closeFn := serveSession(t, serveApp(t, l), "--device", img, "--name", "data",
			"--mount-point", mp, "--lock-dir", dir)
		r, err := cl.Unlock(ctx, req, key)
		require.NoError(t, err)
		assert.Equal(t, wire.StatusRefused, r.Status)
		assert.Contains(t, r.Reason, "mapping closed again")
		assert.Empty(t, l.mappings, "the mapping was closed")
		assert.Equal(t, 0, closeFn())
	})
}

// TestServeLock: an Unlock waits while another process (here: this test) holds the lock,
// and goes on when it is released.
func TestServeLock(t *testing.T) {
	dir := t.TempDir()
	img, h, key := serveImage(t, dir)
	release, err := lockFile(context.Background(), filepath.Join(dir, "serve-data.lock"), time.Second, func() {})
	require.NoError(t, err)
	l := newFakeLocal(dir)
	cl, stderr, closeFn := serveSession(t, serveApp(t, l), "--device", img, "--name", "data",
		"--mount-point", filepath.Join(dir, "m"), "--lock-dir", dir)
	time.AfterFunc(300*time.Millisecond, release)
	start := time.Now()
	r, err := cl.Unlock(context.Background(), wire.UnlockRequest{BootID: serveTestBootID, LUKSUUID: h.UUID}, key)
	require.NoError(t, err)
	assert.Equal(t, wire.StatusUnlocked, r.Status)
	assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond)
	assert.Equal(t, 0, closeFn())
	assert.Contains(t, stderr.String(), "serve: waiting for another serve of data to finish")
}

func TestServeFlags(t *testing.T) {
	h := newHarness(t, "")
	assert.Equal(t, exitUsage, h.run("serve", "--name", "data"))
	assert.Contains(t, h.stderr.String(), "serve needs --volume-id or --device")
	h = newHarness(t, "")
	assert.Equal(t, exitUsage, h.run("serve", "--device", "/dev/x", "--lock-dir", "rel"))
	h = newHarness(t, "")
	assert.Equal(t, exitUsage, h.run("serve", "--device", "/dev/x", "--key-file", "/k"), "no key file: the key comes from the keeper")
}

// TestServeBadProtocol: garbage on stdin ends serve with an error exit, a bad-request
// Error frame on stdout and nothing else there.
func TestServeBadProtocol(t *testing.T) {
	var out, errb bytes.Buffer
	a := serveApp(t, newFakeLocal(t.TempDir()))
	a.stdin, a.stdout, a.stderr = strings.NewReader("GET / HTTP/1.1\r\n\r\n"), &out, &errb
	code := a.main(context.Background(), []string{"serve", "--device", "/dev/null"})
	assert.Equal(t, exitOtherFail, code)
	assert.Contains(t, errb.String(), "encrypted-volume serve: wire: ")
	require.Greater(t, out.Len(), 5)
	assert.Equal(t, byte(wire.TypeError), out.Bytes()[4])
	assert.Contains(t, out.String(), `"code":"bad-request"`)
}

// OpenWithKeyring is the fake's keyring open: recorded, then the same fake mapping.
func (f *fakeLocal) OpenWithKeyring(ctx context.Context, device, name string, hdr luks.Metadata, vk *luks.VolumeKey) (string, error) {
	f.call("keyring-open %s %s", device, name)
	return f.OpenWithKey(ctx, device, name, hdr, vk)
}

// TestServeMountsExistingMapping: a mapping of the served device that exists but is not
// mounted (an unlock cut short between luksOpen and mount) is mounted, once the key checks
// out, instead of being refused forever; a mapping of another device is refused.
func TestServeMountsExistingMapping(t *testing.T) {
	dir := t.TempDir()
	img, h, key := serveImage(t, dir)
	req := wire.UnlockRequest{BootID: serveTestBootID, LUKSUUID: h.UUID}
	ctx := context.Background()
	wrong := bytes.Clone(key)
	wrong[0] ^= 1

	l := newFakeLocal(dir)
	l.mappings["data"] = img
	mp := filepath.Join(dir, "m")
	cl, _, closeFn := serveSession(t, serveApp(t, l), "--device", img, "--name", "data", "--mount-point", mp, "--lock-dir", dir)
	r, err := cl.Unlock(ctx, req, wrong)
	require.NoError(t, err)
	assert.Equal(t, wire.StatusRefused, r.Status, "a wrong key mounts nothing")
	assert.NotContains(t, l.calls, "mount /dev/mapper/data "+mp)
	r, err = cl.Unlock(ctx, req, key)
	require.NoError(t, err)
	assert.Equal(t, wire.StatusUnlocked, r.Status, r.Reason)
	assert.True(t, r.HooksOK)
	assert.Equal(t, mp, r.Mounted)
	assert.Contains(t, l.calls, "mount /dev/mapper/data "+mp)
	assert.NotContains(t, strings.Join(l.calls, "\n"), "keyring-open")
	r, err = cl.Unlock(ctx, req, key)
	require.NoError(t, err)
	assert.Equal(t, wire.StatusAlreadyUnlocked, r.Status)
	assert.Equal(t, 0, closeFn())

	l = newFakeLocal(dir)
	l.mappings["data"] = filepath.Join(dir, "other.img")
	cl, _, closeFn = serveSession(t, serveApp(t, l), "--device", img, "--name", "data", "--mount-point", mp, "--lock-dir", dir)
	r, err = cl.Unlock(ctx, req, key)
	require.NoError(t, err)
	assert.Equal(t, wire.StatusRefused, r.Status)
	assert.Contains(t, r.Reason, "exists on "+filepath.Join(dir, "other.img"))
	assert.Equal(t, 0, closeFn())
}

// TestServeEndsWithContext: serve blocked reading a keeper that says nothing returns when
// its context ends (a signal), even on a stdin without read deadlines.
func TestServeEndsWithContext(t *testing.T) {
	dir := t.TempDir()
	img, _, _ := serveImage(t, dir)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	defer inW.Close()
	a := serveApp(t, newFakeLocal(dir))
	a.stdin, a.stdout, a.stderr = inR, outW, &syncBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- a.main(ctx, []string{"serve", "--device", img, "--name", "data", "--lock-dir", dir})
		outW.Close()
	}()
	cl := wire.NewClient(struct {
		io.Reader
		io.Writer
	}{outR, inW}, "serve-test")
	hctx, hcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer hcancel()
	_, err := cl.Hello(hctx)
	require.NoError(t, err)
	cancel() // serve now waits in a read of stdin
	select {
	case code := <-done:
		assert.NotEqual(t, 0, code)
	case <-time.After(10 * time.Second):
		t.Fatal("serve still reading stdin 10 s after its context ended")
	}
}
