package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// signalWriter is a stderr that closes seen once a write contains want.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// While setup waits for the attached volume's device node it says so on stderr, naming what
// it looks for; the device "appears" only once that line was printed, so no clock is
// asserted.
func TestSetupWaitShowsProgress(t *testing.T) {
	old := waitProgressEvery
	waitProgressEvery = time.Millisecond
	t.Cleanup(func() { waitProgressEvery = old })

	h := newHarness(t, testPass+"\n")
	stderr := &signalWriter{want: "waiting for vol-00000000000000001 to appear as a block device", seen: make(chan struct{})}
	h.app.stderr = stderr
	h.local.waitUntil = stderr.seen
	code := h.run("setup", "--mount-point", tempMountPoint(t))
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", h.stdout, stderr)
	assert.Contains(t, stderr.String(), "waiting for vol-00000000000000001 to appear as a block device (the NVMe disk with serial vol00000000000000001 as /dev/sdf or /dev/xvdf): ")
	assert.Contains(t, stderr.String(), " of 2m0s…\n")
	assert.Equal(t, 2*time.Minute, h.local.lastWait, "after an attach: ec2volume device's default")
}

// --wait sets the wait, as in ec2volume device; a node that never appears is exit 4 with a
// message that says how long it waited and what for.
func TestSetupWaitFlag(t *testing.T) {
	h := newHarness(t, testPass+"\n")
	h.local.blockResolve = true
	code := h.run("setup", "--mount-point", tempMountPoint(t), "--wait", "20ms")
	assert.Equal(t, exitNoDevice, code)
	assert.Equal(t, 20*time.Millisecond, h.local.lastWait)
	assert.Contains(t, h.stderr.String(), "step 2/9 failed (attach vol-00000000000000001 to i-0123456789abcdef0 and resolve its local device): "+
		"vol-00000000000000001: no block device appeared within 20ms (the NVMe disk with serial vol00000000000000001 as /dev/sdf or /dev/xvdf; --wait to wait longer)")
	assert.Contains(t, h.stdout.String(), "Note: volume vol-00000000000000001 (created by this run) stays attached")

	// Without an attach (--no-aws) the node should be there: a short default wait.
	h = newHarness(t, testPass+"\n")
	h.local.resolved["vol-0123456789abcdef0"] = h.dev("nvme1n1")
	require.Equal(t, 0, h.run("setup", "--no-aws", "--volume-id", "vol-0123456789abcdef0", "--mount-point", tempMountPoint(t)), h.stderr.String())
	assert.Equal(t, shortDeviceWait, h.local.lastWait)

	// unlock takes --wait too.
	h.setStdin(testPass + "\n")
	require.Equal(t, 0, h.run("teardown", "--mount-point", tempMountPoint(t)))
	require.Equal(t, 0, h.run("unlock", "--no-aws", "--volume-id", "vol-0123456789abcdef0", "--wait", "90s", "--mount-point", tempMountPoint(t)), h.stderr.String())
	assert.Equal(t, 90*time.Second, h.local.lastWait)
}
