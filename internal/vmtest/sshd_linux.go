//go:build linux

package vmtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The guest function Start runs when Options.Guest is empty: nothing but the services Main
// started (sshd), until the host kills the VM.
const idleGuest = "vmtest-idle"

func init() {
	GuestMain(idleGuest, func() error {
		for {
			time.Sleep(time.Hour)
		}
	})
}

// sshdWait bounds how long the guest waits for sshd to listen.
const sshdWait = 60 * time.Second

// startSSHD starts sshd in the foreground of its own process (-D: no daemon, so it stays
// this init's child; -e: log to the console) and prints SSHReady once port 22 listens.
func startSSHD() error {
	// The privilege-separation directory: /run is a fresh tmpfs. sshd wants it root-owned
	// and not writable by others.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return err
	}
	if err := os.Chmod("/run/sshd", 0o755); err != nil {
		return err
	}
	cmd := exec.Command(SSHD, "-D", "-e", "-f", "/etc/ssh/sshd_config")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// sshd passes its environment to nobody (sessions get a fresh one), but keep the
	// harness's variables out of it anyway.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C"}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", SSHD, err)
	}
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		fmt.Printf("vmtest: sshd exited: %v\n", err)
		exited <- err
	}()
	deadline := time.Now().Add(sshdWait)
	for !tcpListening(22) {
		select {
		case err := <-exited:
			return fmt.Errorf("sshd exited before listening: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sshd not listening on port 22 after %s", sshdWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
	up, _ := os.ReadFile("/proc/uptime")
	fmt.Printf("%s (uptime %s s)\n", SSHReady, strings.Fields(string(up) + " ?")[0])
	return nil
}

// tcpListening reports whether a TCP socket listens on port (IPv4, any address), from
// /proc/net/tcp: probing with a connection would show up in sshd's log.
func tcpListening(port int) bool {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return false
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st …; st 0A = LISTEN
		if len(fields) > 3 && strings.HasSuffix(fields[1], want) && fields[3] == "0A" {
			return true
		}
	}
	return false
}
