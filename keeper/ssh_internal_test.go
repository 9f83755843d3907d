package keeper

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/keeper/internal/sshdtest"
)

var testTransport = transport{dialTimeout: 10 * time.Second}

// runForced runs the session's (forced) command and returns its output.
func runForced(t *testing.T, c *sshConn) string {
	t.Helper()
	s, err := c.client.NewSession()
	require.NoError(t, err)
	defer s.Close()
	out, err := s.Output("ignored by the forced command")
	require.NoError(t, err)
	return string(out)
}

// marker is a forced command that leaves a file behind when it runs: a test that expects
// nothing to reach the instance checks the file is absent.
func marker(t *testing.T) (opts, path string) {
	p := filepath.Join(t.TempDir(), "ran")
	return `restrict,command="touch ` + p + `; echo forced-ok"`, p
}

func TestSSHKnownHosts(t *testing.T) {
	key := sshdtest.NewKey(t)
	opts, ran := marker(t)
	srv := sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{key.AuthorizedLine(opts)}})
	other := sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{key.AuthorizedLine(opts)}})
	ctx := context.Background()
	base := SSHConfig{User: srv.User, KeyFile: key.File}

	t.Run("pinned", func(t *testing.T) {
		cfg := base
		cfg.KnownHosts = []string{srv.KnownHosts(t)}
		c, err := testTransport.dial(ctx, &cfg, srv.Addr, "")
		require.NoError(t, err)
		defer c.Close()
		require.Equal(t, "forced-ok\n", runForced(t, c))
		require.FileExists(t, ran)
		require.NoError(t, os.Remove(ran))
	})
	t.Run("unknown", func(t *testing.T) {
		cfg := base
		cfg.KnownHosts = []string{other.KnownHosts(t)} // pins another address only
		_, err := testTransport.dial(ctx, &cfg, srv.Addr, "")
		require.ErrorIs(t, err, ErrHostKeyUnknown)
		var hke *HostKeyError
		require.True(t, errors.As(err, &hke))
		require.Equal(t, srv.HostKey.Marshal(), hke.Key.Marshal(), "the offered key is reported for `keeper trust`")
		require.NoFileExists(t, ran, "nothing may run on an unpinned host")
	})
	t.Run("changed", func(t *testing.T) {
		cfg := base
		// The other server's key, pinned at this server's address: a man in the middle.
		line := strings.Replace(other.KnownHostsLine(), other.Addr[len("127.0.0.1:"):], srv.Addr[len("127.0.0.1:"):], 1)
		cfg.KnownHosts = []string{sshdtest.WriteFile(t, "known_hosts", line)}
		_, err := testTransport.dial(ctx, &cfg, srv.Addr, "")
		require.ErrorIs(t, err, ErrHostKeyChanged)
		require.NotErrorIs(t, err, ErrHostKeyUnknown)
		require.NoFileExists(t, ran)
	})
	t.Run("revoked", func(t *testing.T) {
		cfg := base
		cfg.KnownHosts = []string{sshdtest.WriteFile(t, "known_hosts",
			"@revoked * "+strings.SplitN(srv.KnownHostsLine(), " ", 2)[1], srv.KnownHostsLine())}
		_, err := testTransport.dial(ctx, &cfg, srv.Addr, "")
		require.ErrorIs(t, err, ErrHostKeyChanged)
		require.NoFileExists(t, ran)
	})
	t.Run("wrong client key", func(t *testing.T) {
		cfg := base
		cfg.KeyFile = sshdtest.NewKey(t).File
		cfg.KnownHosts = []string{srv.KnownHosts(t)}
		_, err := testTransport.dial(ctx, &cfg, srv.Addr, "")
		require.ErrorIs(t, err, ErrAuth)
		require.NoFileExists(t, ran)
	})
	t.Run("HostKey", func(t *testing.T) {
		k, err := HostKey(ctx, SSHConfig{}, srv.Addr, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, srv.HostKey.Marshal(), k.Marshal())
		require.NoFileExists(t, ran)
	})
}

func TestSSHHostCertificate(t *testing.T) {
	key := sshdtest.NewKey(t)
	ca := sshdtest.NewCA(t)
	opts, ran := marker(t)
	const instance = "i-0123456789abcdef0"
	srv := sshdtest.Start(t, sshdtest.Config{
		AuthorizedKeys: []string{key.AuthorizedLine(opts)},
		CAKey:          ca.File, Principals: []string{instance},
	})
	caFile := sshdtest.WriteFile(t, "host_ca.pub", key0(ca))
	ctx := context.Background()
	cfg := SSHConfig{User: srv.User, KeyFile: key.File, HostCA: []string{caFile}}

	c, err := testTransport.dial(ctx, &cfg, srv.Addr, instance)
	require.NoError(t, err, "certificate for the instance ID, signed by the trusted CA")
	require.Equal(t, "forced-ok\n", runForced(t, c))
	c.Close()
	require.NoError(t, os.Remove(ran))

	_, err = testTransport.dial(ctx, &cfg, srv.Addr, "i-0ffffffffffffffff")
	require.ErrorIs(t, err, ErrHostKeyUnknown, "certificate names another instance")
	require.NoFileExists(t, ran)

	cfg.HostCA = []string{sshdtest.WriteFile(t, "other_ca.pub", key0(sshdtest.NewCA(t)))}
	_, err = testTransport.dial(ctx, &cfg, srv.Addr, instance)
	require.ErrorIs(t, err, ErrHostKeyUnknown, "certificate from an untrusted CA")
	require.NoFileExists(t, ran)

	// An untrusted certificate falls back to its plain key, as in OpenSSH.
	cfg.KnownHosts = []string{srv.KnownHosts(t)}
	c, err = testTransport.dial(ctx, &cfg, srv.Addr, instance)
	require.NoError(t, err)
	c.Close()
}

func TestSSHKnownHostsCertAuthority(t *testing.T) {
	key := sshdtest.NewKey(t)
	ca := sshdtest.NewCA(t)
	opts, ran := marker(t)
	srv := sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{key.AuthorizedLine(opts)}, CAKey: ca.File})
	cfg := SSHConfig{User: srv.User, KeyFile: key.File,
		KnownHosts: []string{sshdtest.WriteFile(t, "known_hosts", "@cert-authority ["+srv.Addr[:len("127.0.0.1")]+"]"+srv.Addr[len("127.0.0.1"):]+" "+key0(ca))}}
	c, err := testTransport.dial(context.Background(), &cfg, srv.Addr, "")
	require.NoError(t, err, "OpenSSH's @cert-authority line vouches for the host certificate")
	require.Equal(t, "forced-ok\n", runForced(t, c))
	c.Close()
	require.NoError(t, os.Remove(ran))

	cfg.KnownHosts = []string{sshdtest.WriteFile(t, "known_hosts", "@cert-authority * "+key0(sshdtest.NewCA(t)))}
	_, err = testTransport.dial(context.Background(), &cfg, srv.Addr, "")
	require.ErrorIs(t, err, ErrHostKeyUnknown, "another CA")
	require.NoFileExists(t, ran)
}

func key0(k sshdtest.Key) string { return k.AuthorizedLine("") }

func TestSSHAgent(t *testing.T) {
	key := sshdtest.NewKey(t)
	opts, ran := marker(t)
	srv := sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{key.AuthorizedLine(opts)}})
	sock := sshdtest.StartAgent(t, key.File)
	cfg := SSHConfig{User: srv.User, Agent: true, KnownHosts: []string{srv.KnownHosts(t)}}
	t.Setenv("SSH_AUTH_SOCK", sock)
	c, err := testTransport.dial(context.Background(), &cfg, srv.Addr, "")
	require.NoError(t, err)
	require.Equal(t, "forced-ok\n", runForced(t, c))
	c.Close()
	require.FileExists(t, ran)

	empty := sshdtest.StartAgent(t)
	cfg.AgentSocket = empty
	_, err = testTransport.dial(context.Background(), &cfg, srv.Addr, "")
	require.ErrorIs(t, err, ErrAuth, "an agent without the key")
}

func TestSSHJumpHost(t *testing.T) {
	key := sshdtest.NewKey(t)
	opts, ran := marker(t)
	target := sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{key.AuthorizedLine(opts)}})
	// The bastion lets this key forward to the target's address and nothing else.
	jump := sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{
		key.AuthorizedLine(`restrict,port-forwarding,permitopen="` + target.Addr + `",command="/bin/false"`)}})
	cfg := SSHConfig{User: target.User, KeyFile: key.File, KnownHosts: []string{target.KnownHosts(t)},
		JumpHost: &SSHConfig{Addr: jump.Addr, User: jump.User, KeyFile: key.File, KnownHosts: []string{jump.KnownHosts(t)}}}
	c, err := testTransport.dial(context.Background(), &cfg, target.Addr, "")
	require.NoError(t, err)
	require.Equal(t, "forced-ok\n", runForced(t, c))
	require.FileExists(t, ran)
	// Proof that the connection runs through the bastion: killing it drops the session.
	jump.Stop()
	select {
	case <-c.Dead():
	case <-time.After(5 * time.Second):
		t.Fatal("the target connection survived the bastion: it did not go through it")
	}
	c.Close()
	jump.Restart()

	// The bastion's own key is pinned too: an unknown bastion stops the dial before the target.
	require.NoError(t, os.Remove(ran))
	cfg.JumpHost.KnownHosts = []string{target.KnownHosts(t)}
	_, err = testTransport.dial(context.Background(), &cfg, target.Addr, "")
	require.ErrorIs(t, err, ErrHostKeyUnknown)
	require.Contains(t, err.Error(), "jump host")
	require.NoFileExists(t, ran)
}

func TestSSHKeepaliveDropsSilentPeer(t *testing.T) {
	key := sshdtest.NewKey(t)
	srv := sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{key.AuthorizedLine(`restrict,command="cat"`)}})
	cfg := SSHConfig{User: srv.User, KeyFile: key.File, KnownHosts: []string{srv.KnownHosts(t)}}
	tr := transport{dialTimeout: 10 * time.Second, keepalive: 200 * time.Millisecond}
	c, err := tr.dial(context.Background(), &cfg, srv.Addr, "")
	require.NoError(t, err)
	defer c.Close()
	// An answering server keeps the connection: OpenSSH answers keepalives.
	select {
	case <-c.Dead():
		t.Fatal("connection dropped while the server answered keepalives")
	case <-time.After(1 * time.Second):
	}
	srv.Pause()
	defer srv.Resume()
	start := time.Now()
	select {
	case <-c.Dead():
		t.Logf("silent peer noticed after %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("keepalive did not notice a silent peer")
	}
}

func TestSSHHandshakeTimeout(t *testing.T) {
	// A fault no real sshd produces on purpose: a peer that accepts and never speaks.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	key := sshdtest.NewKey(t)
	cfg := SSHConfig{User: "u", KeyFile: key.File, KnownHosts: []string{sshdtest.WriteFile(t, "kh", "")}}
	tr := transport{dialTimeout: 300 * time.Millisecond}
	start := time.Now()
	_, err = tr.dial(context.Background(), &cfg, l.Addr().String(), "")
	require.ErrorIs(t, err, ErrUnreachable)
	require.Less(t, time.Since(start), 3*time.Second)

	// The caller's context ends a dial too.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	tr.dialTimeout = time.Minute
	start = time.Now()
	_, err = tr.dial(ctx, &cfg, l.Addr().String(), "")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 3*time.Second)
}
