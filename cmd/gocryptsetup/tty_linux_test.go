package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/cloudluks/cloudluks/luks"
)

// TestPromptEndsOnSignal (#14 item 6): SIGINT/SIGTERM cancel main's context; at a passphrase
// prompt on a real terminal that now ends the run with cryptsetup's message and exit 1, echo
// back on — it used to wait for a line forever, since the signals are caught.
func TestPromptEndsOnSignal(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(img, make([]byte, 4<<20), 0o600))
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	require.NoError(t, err)
	_, vk, err := luks.Format(context.Background(), f, []byte("tty pass"), luks.FormatOptions{ForceIterations: 1000})
	require.NoError(t, err)
	vk.Wipe()
	require.NoError(t, f.Close())

	master, slave := testenv.OpenPTY(t)
	go io.Copy(io.Discard, master)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"gocryptsetup", "open", "--test-passphrase", img}, slave, &stdout, &stderr, cli.TTY{In: slave, Out: slave, Ctx: ctx})
	}()
	echoOff := func() bool {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		require.NoError(t, err)
		return tio.Lflag&unix.ECHO == 0
	}
	for deadline := time.Now().Add(10 * time.Second); !echoOff() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	require.True(t, echoOff(), "the prompt is up")
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, exitParams, code)
		assert.Contains(t, stderr.String(), "Error reading passphrase from terminal.")
	case <-time.After(10 * time.Second):
		t.Fatal("gocryptsetup kept waiting at the prompt after the signal")
	}
	assert.False(t, echoOff(), "echo is back on")
	master.WriteString("\n") // ends the abandoned read
}
