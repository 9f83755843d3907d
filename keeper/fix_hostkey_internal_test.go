package keeper

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cloudluks/cloudluks/keeper/internal/sshdtest"
)

const testInstanceID = "i-0123456789abcdef0"

// A host certificate from a trusted HostCA is refused when known_hosts @revoked lists the
// host's key, the certificate's CA, or the certificate.
func TestSSHHostCARespectsRevoked(t *testing.T) {
	key := sshdtest.NewKey(t)
	ca := sshdtest.NewCA(t)
	opts, ran := marker(t)
	srv := sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{key.AuthorizedLine(opts)}, CAKey: ca.File, Principals: []string{testInstanceID}})
	caFile := sshdtest.WriteFile(t, "ca.pub", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca.Public))))
	cert, err := os.ReadFile(srv.HostKeyFile + "-cert.pub")
	require.NoError(t, err)
	line := func(k ssh.PublicKey) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) }
	base := SSHConfig{User: srv.User, KeyFile: key.File, HostCA: []string{caFile}}

	c, err := testTransport.dial(context.Background(), &base, srv.Addr, testInstanceID)
	require.NoError(t, err, "the certificate alone is trusted")
	c.Close()
	for name, revoked := range map[string]string{
		"host key": line(srv.HostKey), "CA": line(ca.Public), "certificate": strings.TrimSpace(string(cert)),
	} {
		t.Run(name, func(t *testing.T) {
			cfg := base
			cfg.KnownHosts = []string{sshdtest.WriteFile(t, "known_hosts", "@revoked * "+revoked)}
			_, err := testTransport.dial(context.Background(), &cfg, srv.Addr, testInstanceID)
			require.ErrorIs(t, err, ErrHostKeyChanged)
			require.Contains(t, err.Error(), "revoked")
			require.NoFileExists(t, ran)
		})
	}
}

// A server without any key of the pinned type is a host-key failure, not an
// unreachable instance: changed when a key is pinned for the address, unknown when only
// a CA (and no certificate) would vouch for it.
func TestSSHHostKeyAlgorithmMismatch(t *testing.T) {
	key := sshdtest.NewKey(t)
	opts, _ := marker(t)
	srv := sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{key.AuthorizedLine(opts)}})
	f := filepath.Join(t.TempDir(), "k")
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", f).CombinedOutput()
	require.NoError(t, err, "%s", out)
	pub, err := os.ReadFile(f + ".pub")
	require.NoError(t, err)
	fields := strings.Fields(string(pub))
	kh := sshdtest.WriteFile(t, "known_hosts", knownhosts.Normalize(srv.Addr)+" "+fields[0]+" "+fields[1])
	cfg := SSHConfig{User: srv.User, KeyFile: key.File, KnownHosts: []string{kh}}
	_, err = testTransport.dial(context.Background(), &cfg, srv.Addr, "")
	require.ErrorIs(t, err, ErrHostKeyChanged)
	require.NotErrorIs(t, err, ErrUnreachable)

	ca := sshdtest.NewCA(t)
	caFile := sshdtest.WriteFile(t, "ca.pub", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca.Public))))
	cfg = SSHConfig{User: srv.User, KeyFile: key.File, HostCA: []string{caFile}}
	_, err = testTransport.dial(context.Background(), &cfg, srv.Addr, "")
	require.ErrorIs(t, err, ErrHostKeyUnknown)
	require.NotErrorIs(t, err, ErrUnreachable)
}

// known_hosts is looked up under the instance ID too (plain and hashed): either may pin
// the key, and either pinning another key refuses it.
func TestSSHKnownHostsByInstanceID(t *testing.T) {
	key := sshdtest.NewKey(t)
	opts, ran := marker(t)
	srv := sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{key.AuthorizedLine(opts)}})
	other := sshdtest.Start(t, sshdtest.Config{})
	right := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.HostKey)))
	wrong := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other.HostKey)))
	addr := knownhosts.Normalize(srv.Addr)
	dial := func(lines ...string) error {
		cfg := SSHConfig{User: srv.User, KeyFile: key.File, KnownHosts: []string{sshdtest.WriteFile(t, "kh", lines...)}}
		c, err := testTransport.dial(context.Background(), &cfg, srv.Addr, testInstanceID)
		if err == nil {
			c.Close()
		}
		return err
	}
	require.NoError(t, dial(testInstanceID+" "+right), "pinned under the instance ID")
	require.NoError(t, dial(knownhosts.HashHostname(testInstanceID)+" "+right), "hashed instance ID")
	err := dial(addr+" "+right, testInstanceID+" "+wrong)
	require.ErrorIs(t, err, ErrHostKeyChanged, "the instance ID pins another key")
	err = dial(addr+" "+wrong, testInstanceID+" "+right)
	require.ErrorIs(t, err, ErrHostKeyChanged, "the address pins another key")
	require.NoFileExists(t, ran)
}
