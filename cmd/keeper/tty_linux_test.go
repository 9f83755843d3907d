package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/cloudluks/cloudluks/keeper/vault"
)

// vault add at a real terminal: the vault's passphrase once, the volume's twice, never
// echoed; a mistyped verification adds nothing.
func TestVaultAddTerminal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.age")
	v, err := vault.Create(path, []byte("vault pass"), vault.Options{WorkFactor: 10})
	require.NoError(t, err)
	v.Close()
	const volPass = "typed at the terminal 5b2e"

	type answer struct{ prompt, text string }
	addAt := func(answers []answer) (int, string, string) {
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
		out, errb := &testenv.SyncBuffer{}, &testenv.SyncBuffer{}
		done := make(chan int, 1)
		go func() {
			done <- runWith(context.Background(), []string{"--vault", path, "vault", "add", vol1, "--uuid", uuid1}, slave, out, errb, cli.TTY{In: slave, Out: errb})
		}()
		echoOff := func() bool {
			tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
			return err == nil && tio.Lflag&unix.ECHO == 0
		}
		for _, a := range answers {
			deadline := time.Now().Add(20 * time.Second)
			for !(strings.Count(errb.String(), a.prompt) > 0 && echoOff()) {
				if time.Now().After(deadline) {
					t.Fatalf("waiting for %q; stderr so far:\n%s", a.prompt, errb.String())
				}
				time.Sleep(2 * time.Millisecond)
			}
			_, err := master.WriteString(a.text + "\n")
			require.NoError(t, err)
			// The next prompt may be the same text: wait until this answer is taken.
			time.Sleep(50 * time.Millisecond)
		}
		select {
		case code := <-done:
			return code, errb.String(), echoed.String()
		case <-time.After(30 * time.Second):
			t.Fatal("vault add did not finish")
		}
		return 0, "", ""
	}

	code, stderr, _ := addAt([]answer{
		{"Enter passphrase for vault " + path + ": ", "vault pass"},
		{"Enter passphrase for " + vol1 + ": ", volPass},
		{"Verify passphrase: ", "something else"},
	})
	assert.Equal(t, cli.ExitPermission, code)
	assert.Contains(t, stderr, "Passphrases do not match.")

	code, stderr, echoed := addAt([]answer{
		{"Enter passphrase for vault " + path + ": ", "vault pass"},
		{"Enter passphrase for " + vol1 + ": ", volPass},
		{"Verify passphrase: ", volPass},
	})
	require.Equal(t, cli.ExitOK, code, stderr)
	assert.NotContains(t, echoed, volPass, "never echoed")
	assert.NotContains(t, echoed, "vault pass")
	assert.NotContains(t, stderr, volPass)

	v, err = vault.Open(path, []byte("vault pass"), vault.Options{})
	require.NoError(t, err)
	defer v.Close()
	p, err := v.Passphrase(vol1)
	require.NoError(t, err)
	assert.Equal(t, volPass, string(p))
}
