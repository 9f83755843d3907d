package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for one writer and one polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// openPTY returns the master and the slave of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testenv.Missing(t, "a pseudo-terminal (/dev/ptmx)", "mount devpts")
	}
	require.NoError(t, unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		testenv.Missing(t, "a pseudo-terminal slave (/dev/pts)", "mount devpts")
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// On a real terminal setup prompts twice without echo, then asks cryptsetup's question with
// echo: what the terminal shows (the master side) holds the YES but never the passphrase.
func TestTerminalPromptsWithoutEcho(t *testing.T) {
	master, slave := openPTY(t)
	echoed := &syncBuffer{}
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
	out := &syncBuffer{}
	h.app.stdout = out
	h.app.stdin = slave
	h.app.term = detectTerminal(slave)
	require.NotNil(t, h.app.term, "a pty slave is a terminal")
	xvdf := h.dev("xvdf")

	done := make(chan int, 1)
	go func() {
		done <- h.app.main(context.Background(), []string{"setup", "--device", xvdf, "--mount-point", tempMountPoint(t)})
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
