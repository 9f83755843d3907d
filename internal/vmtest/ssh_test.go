//go:build linux

package vmtest_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/cloudluks/cloudluks/internal/vmtest"
)

// TestSSH runs the host's real OpenSSH sshd in a guest and connects to it from the host with
// golang.org/x/crypto/ssh through the forwarded port: the pinned host key matches (and a wrong
// pin is refused before authentication), a restrict,command= key gets its forced command
// whatever it asks for, and an unrestricted key gets a shell with the tools the test asked
// for, including a static program built by BuildStatic. The guest's init is vmtest's own
// program (Options.Init), as for packages whose TestMain cannot call Main.
func TestSSH(t *testing.T) {
	hostKey, hostSigner := vmtest.NewSSHKey(t)
	_, forcedKey := vmtest.NewSSHKey(t)
	_, shellKey := vmtest.NewSSHKey(t)
	ev := vmtest.BuildStatic(t, "github.com/cloudluks/cloudluks/cmd/encrypted-volume")
	vm := vmtest.Start(t, vmtest.Options{
		Net: &vmtest.Net{GuestPort: 22},
		SSH: &vmtest.SSH{
			HostKey: hostKey,
			AuthorizedKeys: vmtest.AuthorizedKey(`restrict,command="echo forced: $SSH_ORIGINAL_COMMAND"`, forcedKey.PublicKey()) +
				vmtest.AuthorizedKey("", shellKey.PublicKey()),
		},
		Tools:      []string{"cat"},
		GuestFiles: map[string]string{"/usr/local/sbin/encrypted-volume": ev},
		Timeout:    3 * time.Minute,
		Init:       vmtest.InitProgram(t),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, vm.WaitConsole(ctx, vmtest.SSHReady))

	dial := func(key ssh.Signer, pin ssh.PublicKey) (*ssh.Client, error) {
		return ssh.Dial("tcp", vm.Addr(), &ssh.ClientConfig{
			User:            "root",
			Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
			HostKeyCallback: ssh.FixedHostKey(pin),
			Timeout:         30 * time.Second,
		})
	}
	run := func(c *ssh.Client, cmd string) string {
		t.Helper()
		s, err := c.NewSession()
		require.NoError(t, err)
		defer s.Close()
		out, err := s.CombinedOutput(cmd)
		require.NoError(t, err, "%s: %s", cmd, out)
		return string(out)
	}

	t.Run("wrong host key", func(t *testing.T) {
		_, impostor := vmtest.NewSSHKey(t)
		_, err := dial(shellKey, impostor.PublicKey())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "host key mismatch")
	})
	t.Run("shell", func(t *testing.T) {
		c, err := dial(shellKey, hostSigner.PublicKey())
		require.NoError(t, err)
		defer c.Close()
		out := run(c, "cat /proc/sys/kernel/random/boot_id; echo user=$USER")
		assert.Regexp(t, regexp.MustCompile(`^[0-9a-f-]{36}\nuser=root\n$`), out)
		assert.Contains(t, run(c, "/usr/local/sbin/encrypted-volume --version"), "encrypted-volume")
	})
	t.Run("forced command", func(t *testing.T) {
		c, err := dial(forcedKey, hostSigner.PublicKey())
		require.NoError(t, err)
		defer c.Close()
		assert.Equal(t, "forced: cat /etc/passwd\n", run(c, "cat /etc/passwd"))
	})
	assert.True(t, strings.Contains(vm.Console(), "Accepted publickey for root"), "sshd logs on the console")
}
