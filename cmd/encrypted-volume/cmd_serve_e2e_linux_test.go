package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/dmcrypt"
	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/internal/vmtest"
	"github.com/cloudluks/cloudluks/keeper/wire"
	"github.com/cloudluks/cloudluks/luks"
)

// runProgramArg makes the test binary act as encrypted-volume itself (TestMain), so the
// VM test can start serve as a separate process, as sshd would.
const runProgramArg = "run-encrypted-volume"

const envServeVolume = "SERVE_VOLUME"

// serveProc is one `encrypted-volume serve` child and the keeper's Client on its pipes.
type serveProc struct {
	cmd    *exec.Cmd
	cl     *wire.Client
	stdin  io.WriteCloser
	stderr *syncBuf
}

func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(self, append([]string{runProgramArg, "serve"}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"} // what sshd's forced command gets, near enough
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p := &serveProc{cmd: cmd, stdin: stdin, stderr: &syncBuf{}}
	cmd.Stderr = p.stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	p.cl = wire.NewClient(struct {
		io.Reader
		io.Writer
	}{stdout, stdin}, "vm-keeper")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = p.cl.Hello(ctx)
	require.NoError(t, err, "stderr: %s", p.stderr)
	return p
}

// end closes the keeper's side and returns serve's exit code.
func (p *serveProc) end(t *testing.T) int {
	t.Helper()
	p.stdin.Close()
	err := p.cmd.Wait()
	t.Logf("serve pid %d stderr:\n%s", p.cmd.Process.Pid, p.stderr)
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	require.NoError(t, err)
	return 0
}

// requireNoKeyInProc reads /proc/PID/cmdline and environ of a live process.
func requireNoKeyInProc(t *testing.T, pid int, key []byte) {
	t.Helper()
	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		require.NoError(t, err)
		require.NotEmpty(t, b, f) // the process is alive and readable: the check means something
		assert.False(t, bytes.Contains(b, key[:16]), "key bytes in /proc/%d/%s", pid, f)
		low := strings.ToLower(string(b))
		assert.NotContains(t, low, hex.EncodeToString(key[:8]), "key hex in /proc/%d/%s", pid, f)
	}
}

// TestServeVM: one boot. The keeper's end (this test) speaks wire to real serve
// processes over pipes on a real kernel: the NVMe serial from sysfs, a wrong key and a
// stale boot id refused with nothing mapped, two serves racing with the right key (one
// unlocked, one already-unlocked), the key in a keyring, never in /proc.
func TestServeVM(t *testing.T) {
	var disk string
	volumeID := "vol-0a1b2c3d4e5f60718"
	if !vmtest.InVM() {
		disk = vmtest.NewDiskImage(t, 64<<20)
	}
	if !vmtest.Run(t, vmtest.Options{
		Disks:   []vmtest.Disk{{Path: disk, NVMeSerial: ebs.NVMeSerial(volumeID)}},
		Tools:   []string{"mkfs.ext4"},
		Env:     map[string]string{envServeVolume: volumeID},
		Timeout: 4 * time.Minute,
	}) {
		return
	}
	volumeID = os.Getenv(envServeVolume)
	ctx := context.Background()
	dev := vmtest.GuestDisk(0)
	const name, mp = "kt_data", "/srv/data"

	// The operator's side of setup, done here with the library: the passphrase is made in
	// the guest and never leaves this process.
	pass := make([]byte, 24)
	_, err := rand.Read(pass)
	require.NoError(t, err)
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	require.NoError(t, err)
	hdr, vk, err := luks.Format(ctx, f, pass, luks.FormatOptions{ForceIterations: 1000})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	m, err := dmcrypt.OpenWithKey(ctx, dev, name, hdr, vk, dmcrypt.OpenOptions{})
	require.NoError(t, err)
	out, err := exec.Command("mkfs.ext4", "-q", m.Path).CombinedOutput()
	require.NoError(t, err, string(out))
	require.NoError(t, dmcrypt.Close(ctx, name))
	vk.Wipe()

	self, err := os.Executable()
	require.NoError(t, err)
	probe := filepath.Join(t.TempDir(), "hook.json")
	args := []string{"--volume-id", volumeID, "--name", name, "--mount", mp, "--hook", self + " " + hookProbeArg + " " + probe}

	// The keeper's checks, against what serve reports from the real kernel.
	p := startServe(t, args...)
	st, err := p.cl.State(ctx)
	require.NoError(t, err)
	bootID, err := os.ReadFile(bootIDPath)
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSpace(string(bootID)), st.BootID)
	assert.Equal(t, dev, st.Device)
	assert.Equal(t, ebs.NVMeSerial(volumeID), st.Serial, "serial read from sysfs")
	assert.Equal(t, 1, st.LUKSVersion)
	assert.Equal(t, hdr.UUID, st.LUKSUUID)
	assert.False(t, st.Mapped)
	assert.False(t, st.Mounted)

	// The keeper unlocks the header it was sent, locally.
	hb, err := p.cl.Header(ctx)
	require.NoError(t, err)
	_, kvk, _, err := luks.Unlock(ctx, bytes.NewReader(hb), pass, luks.UnlockOptions{})
	require.NoError(t, err)
	key := bytes.Clone(kvk.Bytes())
	kvk.Wipe()
	req := wire.UnlockRequest{BootID: st.BootID, LUKSUUID: st.LUKSUUID}

	wrong := bytes.Clone(key)
	wrong[7] ^= 1
	r, err := p.cl.Unlock(ctx, req, wrong)
	require.NoError(t, err)
	assert.Equal(t, wire.StatusRefused, r.Status)
	assert.Contains(t, r.Reason, "volume key does not match the volume")
	assert.False(t, mapped(t, name), "wrong key: nothing mapped")

	r, err = p.cl.Unlock(ctx, wire.UnlockRequest{BootID: "6c1e8f00-0000-4000-8000-000000000000", LUKSUUID: st.LUKSUUID}, key)
	require.NoError(t, err)
	assert.Equal(t, wire.StatusRefused, r.Status)
	assert.Contains(t, r.Reason, "the instance rebooted since")
	assert.False(t, mapped(t, name), "stale boot id: nothing mapped")
	assert.Equal(t, 0, p.end(t))

	// Two keepers at once: two serve processes, the same key, released together.
	a, b := startServe(t, args...), startServe(t, args...)
	var wg sync.WaitGroup
	results := make([]wire.Result, 2)
	errs := make([]error, 2)
	startLine := make(chan struct{})
	start := time.Now()
	for i, sp := range []*serveProc{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startLine
			results[i], errs[i] = sp.cl.Unlock(ctx, req, key)
		}()
	}
	close(startLine)
	wg.Wait()
	t.Logf("guest: two racing Unlocks over wire answered within %s", time.Since(start).Round(time.Millisecond))
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	got := []wire.Status{results[0].Status, results[1].Status}
	assert.ElementsMatch(t, []wire.Status{wire.StatusUnlocked, wire.StatusAlreadyUnlocked}, got, "%+v", results)
	for _, r := range results {
		assert.Equal(t, mp, r.Mounted)
		if r.Status == wire.StatusUnlocked {
			assert.True(t, r.HooksOK, r.Reason)
		}
	}
	// While both are still alive: the key is in neither's argv nor environment.
	requireNoKeyInProc(t, a.cmd.Process.Pid, key)
	requireNoKeyInProc(t, b.cmd.Process.Pid, key)

	ms, err := dmcrypt.Status(name)
	require.NoError(t, err)
	assert.True(t, ms.KeyInKeyring, "the key went through the kernel keyring")
	assert.Equal(t, dev, ms.Device)
	assert.True(t, mountedAt(t, mp))
	rec := readProbe(t, probe)
	assert.Contains(t, rec.Env, "ENCRYPTED_VOLUME_MOUNT="+mp)
	assert.Empty(t, rec.Stdin)
	assert.NotContains(t, strings.Join(rec.Env, " ")+strings.Join(rec.Args, " "), hex.EncodeToString(key[:8]))

	// The filesystem is the one mkfs made, and usable.
	require.NoError(t, os.WriteFile(filepath.Join(mp, "hello"), []byte("from the keeper"), 0o600))
	st, err = a.cl.State(ctx)
	require.NoError(t, err)
	assert.True(t, st.Mapped)
	assert.True(t, st.Mounted)
	assert.Equal(t, 0, a.end(t))
	assert.Equal(t, 0, b.end(t))
	for _, sp := range []*serveProc{a, b} {
		assert.NotContains(t, sp.stderr.String(), hex.EncodeToString(key[:8]))
		assert.False(t, bytes.Contains([]byte(sp.stderr.String()), key[:8]))
	}

	code, out2 := runProgram(t, "", "teardown", "--name", name, "--mount-point", mp)
	require.Equal(t, 0, code, out2)
	assert.False(t, mapped(t, name))
}
