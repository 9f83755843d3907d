package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// On a real terminal setup prompts twice without echo, then asks cryptsetup's question with
// echo: what the terminal shows (the master side) holds the YES but never the passphrase.
func TestTerminalPromptsWithoutEcho(t *testing.T) {
	master, slave := testenv.OpenPTY(t)
	echoed := &testenv.SyncBuffer{}
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := master.Read(buf)
			echoed.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()

	h := newHarness(t, "")
	out := &testenv.SyncBuffer{}
	h.app.stdout = out
	h.app.stdin = slave
	h.app.term = detectTerminal(slave)
	require.NotNil(t, h.app.term, "a pty slave is a terminal")
	xvdf := h.dev("xvdf")

	done := make(chan int, 1)
	go func() {
		done <- h.app.main(context.Background(), []string{"setup", "--device", xvdf, "--mount-point", tempMountPoint(t), "--pbkdf-force-iterations", "4", "--pbkdf-memory", "32", "--pbkdf-parallel", "1"})
	}()
	echoOff := func() bool {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		return err == nil && tio.Lflag&unix.ECHO == 0
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s; output so far:\n%s", what, out.String())
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	type answer struct{ prompt, text string }
	for _, a := range []answer{
		{"Enter passphrase for " + xvdf + ": ", testPass},
		{"Verify passphrase: ", testPass},
	} {
		waitFor(a.prompt, func() bool { return strings.Contains(out.String(), a.prompt) && echoOff() })
		_, err := master.WriteString(a.text + "\n")
		require.NoError(t, err)
	}
	waitFor("the confirmation", func() bool {
		return strings.Contains(out.String(), "Are you sure? (Type 'yes' in capital letters): ") && !echoOff()
	})
	_, err := master.WriteString("YES\n")
	require.NoError(t, err)
	select {
	case code := <-done:
		require.Equal(t, 0, code, "%s\n%s", out.String(), h.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("setup did not finish")
	}
	_, vk, err := luksUnlock(context.Background(), xvdf, []byte(testPass))
	require.NoError(t, err, "the typed passphrase reached luksFormat")
	vk.Wipe()
	waitFor("the echo of YES", func() bool { return strings.Contains(echoed.String(), "YES") })
	assert.NotContains(t, echoed.String(), testPass, "the passphrase is never echoed")
	assert.NotContains(t, out.String(), testPass)
}

// TestTerminalPromptEndsOnSignal (#14 item 6): main catches SIGINT/SIGTERM into its
// context; a passphrase prompt on a real terminal now ends when that context is cancelled,
// with echo back on and nothing created — it used to wait for a line forever.
func TestTerminalPromptEndsOnSignal(t *testing.T) {
	master, slave := testenv.OpenPTY(t)
	go func() {
		buf := make([]byte, 256)
		for {
			if _, err := master.Read(buf); err != nil {
				return
			}
		}
	}()
	h := newHarness(t, "")
	h.app.stdin = slave
	h.app.term = detectTerminal(slave)
	require.NotNil(t, h.app.term)
	xvdf := h.dev("xvdf")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- h.app.main(ctx, []string{"setup", "--device", xvdf, "--mount-point", tempMountPoint(t), "--pbkdf-force-iterations", "4", "--pbkdf-memory", "32", "--pbkdf-parallel", "1"})
	}()
	echoOff := func() bool {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		return err == nil && tio.Lflag&unix.ECHO == 0
	}
	for deadline := time.Now().Add(20 * time.Second); !echoOff() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	require.True(t, echoOff(), "the prompt is up")
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, exitOtherFail, code)
		assert.Contains(t, h.stderr.String(), "Error reading passphrase from terminal.")
	case <-time.After(10 * time.Second):
		t.Fatal("setup kept waiting at the prompt after the signal")
	}
	assert.False(t, echoOff(), "echo is back on")
	assert.Empty(t, h.local.mappings)
	master.WriteString("\n") // ends the abandoned read
}
