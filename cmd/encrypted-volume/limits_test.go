package main

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mainWithin runs the program with a context cancelled after cancelAfter (the signal
// context of main: SIGTERM/SIGINT cancel it) and fails the test if it has not returned
// within a few seconds of that.
func mainWithin(t *testing.T, h *harness, cancelAfter time.Duration, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(cancelAfter, cancel)
	done := make(chan int, 1)
	go func() { done <- h.app.main(ctx, args) }()
	select {
	case code := <-done:
		return code
	case <-time.After(cancelAfter + 10*time.Second):
		t.Fatalf("encrypted-volume %v still running 10 s after it was told to stop", args)
		return -1
	}
}

func fifo(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fifo")
	require.NoError(t, syscall.Mkfifo(p, 0o600))
	t.Cleanup(func() {
		// Release an abandoned open so no goroutine outlives the test.
		if w, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
	return p
}

// TestBlockingReadsEndOnSignal: a --key-file or --hooks-file that is a FIFO nobody writes to
// used to keep unlock waiting for minutes after SIGTERM; now the read ends with the signal,
// with an error naming the file, and nothing was opened or mounted.
func TestBlockingReadsEndOnSignal(t *testing.T) {
	setup := func(t *testing.T) (*harness, string) {
		h := newHarness(t, testPass+"\n")
		h.local.resolved["vol-0123456789abcdef0"] = h.dev("nvme1n1")
		mp := tempMountPoint(t)
		require.Equal(t, 0, h.run("setup", "--volume-id", "vol-0123456789abcdef0", "--no-aws", "--mount-point", mp), h.stderr.String())
		require.Equal(t, 0, h.run("teardown", "--mount-point", mp), h.stderr.String())
		h.stdout.Reset()
		h.stderr.Reset()
		return h, mp
	}
	t.Run("key file", func(t *testing.T) {
		h, mp := setup(t)
		kf := fifo(t)
		code := mainWithin(t, h, 200*time.Millisecond, "unlock", "--volume-id", "vol-0123456789abcdef0", "--no-aws", "--mount-point", mp, "--key-file", kf)
		assert.Equal(t, exitOtherFail, code)
		assert.Contains(t, h.stderr.String(), "Failed to open key file. "+kf)
		assert.Empty(t, h.local.mappings)
		assert.Empty(t, h.local.mounts)
	})
	t.Run("hooks file", func(t *testing.T) {
		h, mp := setup(t)
		hf := fifo(t)
		code := mainWithin(t, h, 200*time.Millisecond, "unlock", "--volume-id", "vol-0123456789abcdef0", "--no-aws", "--mount-point", mp, "--hooks-file", hf)
		assert.NotEqual(t, exitOK, code)
		assert.Contains(t, h.stderr.String(), "hooks file: "+hf+": context canceled")
		assert.Empty(t, h.local.mappings, "the hooks file is read before anything is opened")
	})
}

// TestHooksFileLimit: --hooks-file /dev/zero grew the process to 24 GB; now it is refused
// at maxHooksFile bytes, before the first step.
func TestHooksFileLimit(t *testing.T) {
	h := newHarness(t, testPass+"\n")
	h.local.resolved["vol-0123456789abcdef0"] = h.dev("nvme1n1")
	mp := tempMountPoint(t)
	code := h.run("unlock", "--volume-id", "vol-0123456789abcdef0", "--no-aws", "--mount-point", mp, "--hooks-file", "/dev/zero")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, h.stderr.String(), "hooks file: /dev/zero: file too large (limit 1048576 bytes)")
	assert.NotContains(t, h.stdout.String(), "Step 1/4")

	big := filepath.Join(t.TempDir(), "hooks")
	require.NoError(t, os.WriteFile(big, make([]byte, maxHooksFile+1), 0o600))
	assert.Equal(t, exitUsage, h.run("unlock", "--volume-id", "vol-0123456789abcdef0", "--no-aws", "--mount-point", mp, "--hooks-file", big))
	assert.Contains(t, h.stderr.String(), "file too large")
}
