package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// luksKillSlot N wants the passphrase of a slot that remains, as cryptsetup 2.6.1's
// verify_keyslot does; the passphrase of slot N itself is refused with exit 2 and the slot
// stays, so a user cannot destroy the only passphrase they know (issue #14 item 2: the
// old code accepted it). Only when N is the last slot must its own passphrase be given.
func TestKillSlotNeedsRemainingPassphraseSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	dir := copyTemplates(t, "cbc.img", "xts.img") // cbc: slots 0 "pass0", 1 "pass1"; xts: slot 0 "pass0"
	src, single := filepath.Join(dir, "cbc.img"), filepath.Join(dir, "xts.img")

	for _, tc := range []struct {
		name, img, slot, pass string
		code                  int
	}{
		{"own passphrase refused", src, "1", "pass1", 2},
		{"remaining passphrase", src, "1", "pass0", 0},
		{"other slot's own passphrase refused", src, "0", "pass0", 2},
		{"last slot: its own passphrase", single, "0", "pass0", 0},
		{"last slot: wrong passphrase", single, "0", "pass1", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res [2]result
			var dumps [2]string
			for i, prog := range []string{cs, binPath} {
				img := filepath.Join(dir, "t.img")
				copyFile(t, tc.img, img)
				res[i] = runIn(t, dir, prog, tc.pass+"\n", "luksKillSlot", "-q", "t.img", tc.slot)
				d := runIn(t, dir, cs, "", "luksDump", "t.img")
				dumps[i] = d.stdout
			}
			assert.Equal(t, tc.code, res[0].code, "cryptsetup: %s", res[0].stderr)
			assert.Equal(t, res[0], res[1], "same exit code and messages")
			assert.Equal(t, dumps[0] != "" && strings.Contains(dumps[0], "Key Slot "+tc.slot+": ENABLED"),
				strings.Contains(dumps[1], "Key Slot "+tc.slot+": ENABLED"), "slot %s state after both", tc.slot)
		})
	}
}

// A message that starts with a relative device path keeps the path as typed: the old code
// capitalised it into another file's name ("C.img: cipher …"; issue #14 item 12).
func TestMessageKeepsRelativeDevicePath(t *testing.T) {
	dir := copyTemplates(t, "xts.img")
	img := filepath.Join(dir, "c.img")
	require.NoError(t, os.Rename(filepath.Join(dir, "xts.img"), img))
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("foo\x00\x00\x00"), 8) // cipher name field
	require.NoError(t, err)
	require.NoError(t, f.Close())
	r := runIn(t, dir, binPath, "pass0", "open", "--test-passphrase", "c.img")
	assert.Equal(t, 1, r.code)
	assert.True(t, strings.HasPrefix(r.stderr, "c.img: cipher foo-xts-plain64: "), "%q", r.stderr)
	assert.Equal(t, "Img", sentence("", "img")[:3], "other messages are still capitalised")
}

// SIGTERM while a key file read blocks (a FIFO whose writer sends nothing) ends the program
// at once with cryptsetup's "Failed to open key file." and exit 1; it used to sit until
// killed (issue #14 item 6). The test opens the FIFO's write end itself: that open returns
// only once the program has opened the read end, so the signal arrives while it reads.
func TestSignalEndsBlockedKeyFileRead(t *testing.T) {
	dir := copyTemplates(t, "xts.img")
	img := filepath.Join(dir, "xts.img")
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	cmd := exec.Command(binPath, "open", "--test-passphrase", "--key-file", fifo, img)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// A non-blocking open of the write end fails with ENXIO until the program has opened
	// the read end; then the program is in (or entering) its read, which never gets data.
	var w int
	var err error
	for {
		w, err = syscall.Open(fifo, syscall.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			break
		}
		require.ErrorIs(t, err, syscall.ENXIO)
		select {
		case err := <-done:
			t.Fatalf("gocryptsetup ended before reading the key file: %v: %s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	defer syscall.Close(w)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err = <-done:
	case <-time.After(30 * time.Second): // a hang, not a slow machine
		_ = cmd.Process.Kill()
		t.Fatal("gocryptsetup still blocked in the key file read 30 s after SIGTERM")
	}
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "exit status, not death by signal: %s", stderr.String())
	assert.Equal(t, 1, ee.ExitCode())
	assert.Equal(t, "Failed to open key file.\n", stderr.String())
}
