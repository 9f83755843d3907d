package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/cloudluks/cloudluks/keeper/vault"
)

// SIGINT (the signal context ending) at the vault passphrase prompt, through run() as main calls it.
func TestReviewInterruptAtPrompt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.age")
	v, _ := vault.Create(path, []byte("vault pass"), vault.Options{WorkFactor: 10})
	v.Close()
	master, slave := testenv.OpenPTY(t)
	go io.Copy(io.Discard, master)
	errb := &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"--vault", path, "vault", "list"}, slave, io.Discard, errb) }()
	for !strings.Contains(errb.String(), "Enter passphrase for vault") {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case c := <-done:
		t.Logf("ended with %d: %s", c, errb.String())
		if c != cli.ExitFailure || !strings.Contains(errb.String(), "keeper: Operation interrupted.\n") {
			t.Errorf("want exit 1 and \"Operation interrupted.\", have %d: %q", c, errb.String())
		}
	case <-time.After(3 * time.Second):
		t.Error("Ctrl-C at the vault prompt: still waiting 3 s later")
		master.Write([]byte("\n"))
	}
}

// SIGINT at trust's yes/no question.
func TestReviewInterruptAtTrustQuestion(t *testing.T) {
	s := startSSHD(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, target("i-0123456789abcdef0", vol1, s.addr))
	pr, pw := io.Pipe()
	defer pw.Close()
	errb := &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-c", cfg, "trust", "i-0123456789abcdef0", "--no-console"}, pr, io.Discard, errb)
	}()
	for !strings.Contains(errb.String(), "(yes/no)?") {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case c := <-done:
		t.Logf("ended with %d: %s", c, errb.String())
		if c != cli.ExitFailure || !strings.Contains(errb.String(), "keeper: Operation interrupted.\n") {
			t.Errorf("want exit 1 and \"Operation interrupted.\", have %d: %q", c, errb.String())
		}
	case <-time.After(3 * time.Second):
		t.Error("Ctrl-C at the yes/no question: still waiting 3 s later")
	}
}
