package vmtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// envSSH, when "1", makes the guest start sshd after its network is up.
const envSSH = "CLOUDLUKS_VM_SSHD"

// SSHD is the host's OpenSSH server binary the guest runs (Debian's openssh-server).
const SSHD = "/usr/sbin/sshd"

// SSHReady is printed on the guest console once sshd accepts connections (its port is in
// LISTEN state), followed by the guest's uptime: wait for it with VM.WaitConsole.
const SSHReady = "vmtest: sshd accepting connections"

// SSH runs the host's real OpenSSH sshd in the guest on port 22, started by Main after the
// network is up (so it needs Options.Net, normally with GuestPort 22). Host key and root's
// authorized_keys come from the test, so the host side knows what to pin and which keys get in.
type SSH struct {
	// HostKey is the private ed25519 host key in OpenSSH PEM form (NewSSHKey makes one); the
	// test pins its public half.
	HostKey []byte
	// AuthorizedKeys is root's ~/.ssh/authorized_keys, options (restrict, command="…")
	// included.
	AuthorizedKeys string
}

// sshdConfig is the guest's /etc/ssh/sshd_config: keys only, root only, no PAM (the guest has
// none), logs on stderr (the console).
const sshdConfig = `Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PidFile /run/sshd.pid
LogLevel VERBOSE
`

// NewSSHKey makes an ed25519 key: its private half in OpenSSH PEM form (for SSH.HostKey or a
// client key file) and a signer (for golang.org/x/crypto/ssh: the client's auth, or
// signer.PublicKey() to pin a host key).
func NewSSHKey(t testing.TB) (pemBytes []byte, signer ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "vmtest")
	if err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	signer, err = ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	return pem.EncodeToMemory(block), signer
}

// AuthorizedKey formats one authorized_keys line: options (may be empty, e.g.
// `restrict,command="…"`) and the public key.
func AuthorizedKey(options string, pub ssh.PublicKey) string {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	if options != "" {
		line = options + " " + line
	}
	return line + "\n"
}

// withSSH adds what Options.SSH needs to opts: sshd and a shell as tools, the configuration,
// host key and authorized_keys as guest files (written to the scratch directory under a name
// derived from their content, so equal settings share an initramfs).
func withSSH(opts Options) (Options, error) {
	if opts.SSH == nil {
		return opts, nil
	}
	if _, err := ssh.ParsePrivateKey(opts.SSH.HostKey); err != nil {
		return opts, fmt.Errorf("vmtest: SSH.HostKey: %w", err)
	}
	for i, line := range strings.Split(opts.SSH.AuthorizedKeys, "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err != nil {
			return opts, fmt.Errorf("vmtest: SSH.AuthorizedKeys line %d: %w", i+1, err)
		}
	}
	host.mu.Lock()
	dir, err := scratch()
	host.mu.Unlock()
	if err != nil {
		return opts, err
	}
	sum := sha256.Sum256([]byte(string(opts.SSH.HostKey) + "\x00" + opts.SSH.AuthorizedKeys))
	dir = filepath.Join(dir, "ssh-"+hex.EncodeToString(sum[:8]))
	files := []struct {
		guest string
		data  []byte
		perm  os.FileMode
	}{
		{"/etc/ssh/sshd_config", []byte(sshdConfig), 0o644},
		// sshd refuses a host key others can read.
		{"/etc/ssh/ssh_host_ed25519_key", opts.SSH.HostKey, 0o600},
		{"/root/.ssh/authorized_keys", []byte(opts.SSH.AuthorizedKeys), 0o600},
	}
	gf := map[string]string{}
	for g, h := range opts.GuestFiles {
		gf[g] = h
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.Base(f.guest))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return opts, err
		}
		if err := os.WriteFile(p, f.data, f.perm); err != nil {
			return opts, err
		}
		if err := os.Chmod(p, f.perm); err != nil {
			return opts, err
		}
		if _, dup := gf[f.guest]; dup {
			return opts, fmt.Errorf("vmtest: GuestFiles %s: Options.SSH provides it", f.guest)
		}
		gf[f.guest] = p
	}
	opts.GuestFiles = gf
	opts.Tools = append(append([]string(nil), opts.Tools...), SSHD, "sh")
	return opts, nil
}
