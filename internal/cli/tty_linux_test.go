package cli

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// TestTTYPromptsWithoutEcho: on a real terminal the verified prompt shows both prompts, takes
// both answers without echo (the passphrase never appears on the terminal), and a mismatch
// is ErrPassphraseMismatch.
func TestTTYPromptsWithoutEcho(t *testing.T) {
	master, slave := testenv.OpenPTY(t)
	shown := &testenv.SyncBuffer{}
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := master.Read(buf)
			shown.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	// Out is the pty too, so prompts and any echo land in shown. No DevTTY: the test
	// process has no controlling terminal to give.
	tty := TTY{In: slave, Out: slave}
	require.True(t, tty.IsTerminal())
	type result struct {
		p   []byte
		err error
	}
	ask := func(answers ...string) result {
		done := make(chan result, 1)
		go func() {
			p, err := ReadPassphrase(tty, "Enter passphrase for g.img: ", true)
			done <- result{p, err}
		}()
		for _, a := range answers {
			// Wait for the prompt, then type: term.ReadPassword turns echo off first.
			want := strings.Count(shown.String(), ": ") + 1
			deadline := time.Now().Add(10 * time.Second)
			for strings.Count(shown.String(), ": ") < want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			_, err := master.WriteString(a + "\n")
			require.NoError(t, err)
		}
		select {
		case r := <-done:
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("no answer; terminal: %q", shown.String())
			return result{}
		}
	}
	r := ask("s3cret-one", "s3cret-one")
	require.NoError(t, r.err)
	assert.Equal(t, "s3cret-one", string(r.p))
	r = ask("s3cret-two", "s3cret-2")
	assert.ErrorIs(t, r.err, ErrPassphraseMismatch)
	assert.Nil(t, r.p)
	time.Sleep(100 * time.Millisecond)
	s := strings.ReplaceAll(shown.String(), "\r", "")
	assert.Equal(t, strings.Repeat("Enter passphrase for g.img: \nVerify passphrase: \n", 2), s)
	assert.NotContains(t, s, "s3cret")
}

// TestTTYIsTerminal: a pipe or a regular file is not a terminal.
func TestTTYIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "f")
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, TTY{In: f}.IsTerminal())
	assert.False(t, TTY{}.IsTerminal())
}

// TestTTYPromptEndsOnSignal: with the program's signal context, a prompt nobody answers
// ends as soon as the context is cancelled (SIGINT/SIGTERM are caught for cleanup, so
// Ctrl-C used to do nothing there), with cryptsetup's message, and echo is on again.
func TestTTYPromptEndsOnSignal(t *testing.T) {
	master, slave := testenv.OpenPTY(t)
	go io.Copy(io.Discard, master)
	ctx, cancel := context.WithCancel(context.Background())
	tty := TTY{In: slave, Out: slave, Ctx: ctx}
	done := make(chan error, 1)
	go func() {
		_, err := ReadPassphrase(tty, "Enter passphrase for g.img: ", false)
		done <- err
	}()
	echoOff := func() bool {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		require.NoError(t, err)
		return tio.Lflag&unix.ECHO == 0
	}
	deadline := time.Now().Add(10 * time.Second)
	for !echoOff() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.True(t, echoOff(), "the prompt turned echo off")
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ErrTerminalRead)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, "Error reading passphrase from terminal.", err.Error())
	case <-time.After(10 * time.Second):
		t.Fatal("the prompt did not end after its context was cancelled")
	}
	assert.False(t, echoOff(), "echo is restored")
	// The abandoned read takes the next line and throws it away.
	master.WriteString("late\n")
}
