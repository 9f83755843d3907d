package main

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// While setup waits for the attached volume's device node it says so on stderr, naming what
// it looks for and how long it has waited (the waits are reported by the seam, no clock).
func TestSetupWaitShowsProgress(t *testing.T) {
	h := newHarness(t, testPass+"\n")
	h.local.waited = []time.Duration{10 * time.Second, 20*time.Second + 300*time.Millisecond}
	code := h.run("setup", "--mount-point", tempMountPoint(t))
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", h.stdout, h.stderr)
	const what = "waiting for vol-00000000000000001 to appear as a block device (the NVMe disk with serial vol00000000000000001 as /dev/sdf or /dev/xvdf): "
	assert.Equal(t, what+"10s of 2m0s…\n"+what+"20s of 2m0s…\n", h.stderr.String())
	assert.Equal(t, 2*time.Minute, h.local.lastWait, "after an attach: ec2volume device's default")
}

// The real resolver's progress: ticks while the wait lasts, none after it returned.
func TestWhileTicking(t *testing.T) {
	var mu sync.Mutex
	var ticks []time.Duration
	release := make(chan struct{})
	v, err := whileTicking(time.Millisecond, func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if ticks = append(ticks, d); len(ticks) == 3 {
			close(release)
		}
	}, func() (string, error) {
		<-release // answers only after three progress calls
		return "/dev/nvme1n1", nil
	})
	require.NoError(t, err)
	assert.Equal(t, "/dev/nvme1n1", v)
	mu.Lock()
	n := len(ticks)
	got := append([]time.Duration(nil), ticks...)
	mu.Unlock()
	require.GreaterOrEqual(t, n, 3)
	assert.True(t, slices.IsSorted(got), "the waited time grows: %v", got)
	time.Sleep(5 * time.Millisecond) // a tick after the return would land here
	mu.Lock()
	assert.Equal(t, n, len(ticks), "no progress after the answer")
	mu.Unlock()
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

// A volume EC2 already reports attached gets the long default wait too (its attachment may be
// seconds old), and the help says so.
func TestWaitDefaultAlreadyAttached(t *testing.T) {
	h := newHarness(t, testPass+"\n")
	h.cloud.volumes["vol-0123456789abcdef0"] = "/dev/sdf"
	h.local.resolved["vol-0123456789abcdef0"] = h.dev("nvme1n1")
	require.Equal(t, 0, h.run("setup", "--volume-id", "vol-0123456789abcdef0", "--mount-point", tempMountPoint(t)), h.stderr.String())
	assert.Contains(t, h.stdout.String(), "already attached as /dev/sdf")
	assert.Equal(t, defaultDeviceWait, h.local.lastWait)

	h = newHarness(t, "")
	h.run("setup", "-h")
	assert.Contains(t, h.stderr.String()+h.stdout.String(), "default 2m0s when EC2 reports the attachment, made now or earlier; 3s with --no-aws")
	assert.NotContains(t, h.stderr.String()+h.stdout.String(), "3s otherwise")
}
