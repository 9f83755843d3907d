package keeper

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError is the error for a host key the keeper does not trust. It carries the key
// the server offered so that a caller (`keeper trust`) can show its fingerprint; it
// unwraps to ErrHostKeyUnknown or ErrHostKeyChanged.
type HostKeyError struct {
	Addr string
	Key  ssh.PublicKey // what the server presented (a certificate's plain key); nil if it offered no acceptable algorithm
	Err  error         // ErrHostKeyUnknown or ErrHostKeyChanged
	why  string
}

func (e *HostKeyError) Error() string {
	s := fmt.Sprintf("%s: %v", e.Addr, e.Err)
	if e.Key != nil {
		s += fmt.Sprintf(" (%s %s)", e.Key.Type(), ssh.FingerprintSHA256(e.Key))
	}
	if e.why != "" {
		s += ": " + e.why
	}
	return s
}

func (e *HostKeyError) Unwrap() error { return e.Err }

// transport is the part of the dial configuration that does not change between dials.
type transport struct {
	dialTimeout time.Duration
	keepalive   time.Duration
}

// sshConn is a connected, authenticated client, with the jump hosts it runs through.
type sshConn struct {
	client *ssh.Client
	hops   []*ssh.Client // jump hosts, innermost last
	addr   string
	dead   chan struct{} // closed when the connection (or a keepalive) fails
	once   sync.Once
}

func (c *sshConn) Close() error {
	c.once.Do(func() { close(c.dead) })
	err := c.client.Close()
	for i := len(c.hops) - 1; i >= 0; i-- {
		_ = c.hops[i].Close()
	}
	return err
}

// Dead is closed once the connection is gone.
func (c *sshConn) Dead() <-chan struct{} { return c.dead }

// dial connects to addr as cfg says, through cfg.JumpHost if set. instanceID is an
// extra principal host certificates may name.
func (tr transport) dial(ctx context.Context, cfg *SSHConfig, addr, instanceID string) (*sshConn, error) {
	var hops []*ssh.Client
	var via *ssh.Client
	if cfg.JumpHost != nil {
		jc, err := tr.dial(ctx, cfg.JumpHost, cfg.JumpHost.Addr, "")
		if err != nil {
			return nil, jumpErr(cfg.JumpHost.Addr, err)
		}
		hops = append(jc.hops, jc.client)
		via = jc.client
	}
	closeHops := func() {
		for i := len(hops) - 1; i >= 0; i-- {
			_ = hops[i].Close()
		}
	}
	client, err := tr.dialOne(ctx, cfg, addr, instanceID, via)
	if err != nil {
		closeHops()
		return nil, err
	}
	c := &sshConn{client: client, hops: hops, addr: addr, dead: make(chan struct{})}
	go func() {
		_ = client.Wait()
		c.once.Do(func() { close(c.dead) })
	}()
	if tr.keepalive > 0 {
		go c.keepalive(tr.keepalive)
	}
	return c, nil
}

// keepaliveMisses is how many keepalive intervals an answer may be late before the
// connection is given up, as OpenSSH's ServerAliveCountMax (3): one late reply is a busy
// link (a large header transfer queued in front of it), three are a silent peer.
const keepaliveMisses = 3

// keepalive sends keepalive@openssh.com every interval, one at a time, and closes the
// connection when an answer is keepaliveMisses intervals late: a silent peer (frozen,
// unplugged, its NAT state gone) would otherwise leave a connection that looks alive for
// hours. OpenSSH answers the unknown request with a failure, which is an answer.
func (c *sshConn) keepalive(interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	answered := make(chan error, 1)
	waiting, missed := false, 0
	for {
		select {
		case <-c.dead:
			return
		case err := <-answered:
			waiting, missed = false, 0
			if err != nil {
				_ = c.Close()
				return
			}
			continue
		case <-tick.C:
		}
		if waiting {
			if missed++; missed >= keepaliveMisses {
				_ = c.Close()
				return
			}
			continue
		}
		waiting = true
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
	}
}

func (tr transport) dialOne(ctx context.Context, cfg *SSHConfig, addr, instanceID string, via *ssh.Client) (*ssh.Client, error) {
	auth, closeAuth, err := authMethods(cfg)
	if err != nil {
		return nil, err
	}
	defer closeAuth()
	hk, algos, pinned, err := hostKeyCheck(cfg, addr, instanceID)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, tr.dialTimeout)
	defer cancel()
	var conn net.Conn
	if via != nil {
		conn, err = via.DialContext(dctx, "tcp", addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, tcpErr(addr, via, err)
	}
	// A peer that accepts and then says nothing (a half-booted instance, a firewall
	// black hole behind a jump host) must not hold the dial forever. Channel connections
	// through a jump host have no deadlines, so the watchdog closes the connection.
	var timedOut bool
	var mu sync.Mutex
	watchdog := time.AfterFunc(tr.dialTimeout, func() { mu.Lock(); timedOut = true; mu.Unlock(); conn.Close() })
	stopCtx := context.AfterFunc(ctx, func() { conn.Close() })
	ccfg := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth,
		HostKeyCallback:   hk,
		HostKeyAlgorithms: algos,
		Timeout:           tr.dialTimeout,
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, ccfg)
	watchdog.Stop()
	stopCtx()
	if err != nil {
		conn.Close()
		var hke *HostKeyError
		switch {
		case errors.As(err, &hke):
			return nil, hke
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("%s: %w for user %s: %v", addr, ErrAuth, cfg.User, err)
		case strings.Contains(err.Error(), "no common algorithm for host key"):
			// The server has none of the key types pinned for it: as good as another key.
			hke := &HostKeyError{Addr: addr, Err: ErrHostKeyUnknown, why: oneLine(err.Error())}
			if pinned {
				hke.Err = ErrHostKeyChanged
			}
			return nil, hke
		}
		mu.Lock()
		to := timedOut
		mu.Unlock()
		if to {
			return nil, fmt.Errorf("%s: %w: no SSH handshake within %v", addr, ErrHandshake, tr.dialTimeout)
		}
		return nil, fmt.Errorf("%s: %w: %v", addr, ErrHandshake, err)
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// tcpErr classifies a failed TCP connect to addr: directly or as the jump host's refusal
// to connect (its channel-open failure), the instance's port took no connection; any
// other failure through a jump host is the jump host's.
func tcpErr(addr string, via *ssh.Client, err error) error {
	var oce *ssh.OpenChannelError
	if via == nil || errors.As(err, &oce) {
		return fmt.Errorf("%s: %w: %v", addr, ErrNoConnection, err)
	}
	return fmt.Errorf("%s: %w: %v", addr, ErrJumpHost, err)
}

// jumpErr names the jump host in front of err. The jump host's own unreachability is
// ErrJumpHost and never ErrNoConnection: it says nothing about the target behind it. Its
// host-key and authentication errors keep their sentinels.
func jumpErr(addr string, err error) error {
	if errors.Is(err, ErrUnreachable) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("jump host %s: %w: %v", addr, ErrJumpHost, err)
	}
	return fmt.Errorf("jump host %s: %w", addr, err)
}

// authMethods offers the key file first, then the agent's keys. The returned func closes
// the agent connection (needed only during the handshake).
func authMethods(cfg *SSHConfig) ([]ssh.AuthMethod, func(), error) {
	var signers []ssh.Signer
	closeFn := func() {}
	if cfg.KeyFile != "" {
		b, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, closeFn, fmt.Errorf("ssh key: %w", err)
		}
		s, err := ssh.ParsePrivateKey(b)
		clear(b)
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, closeFn, fmt.Errorf("ssh key %s is passphrase-protected: load it into ssh-agent and set Agent: %w", cfg.KeyFile, ErrInvalid)
		}
		if err != nil {
			return nil, closeFn, fmt.Errorf("ssh key %s: %w: %v", cfg.KeyFile, ErrInvalid, err)
		}
		signers = append(signers, s)
	}
	if cfg.Agent {
		sock := cfg.AgentSocket
		if sock == "" {
			sock = os.Getenv("SSH_AUTH_SOCK")
		}
		if sock == "" {
			return nil, closeFn, fmt.Errorf("ssh-agent: SSH_AUTH_SOCK is not set: %w", ErrInvalid)
		}
		ac, err := net.Dial("unix", sock)
		if err != nil {
			return nil, closeFn, fmt.Errorf("ssh-agent %s: %w", sock, err)
		}
		closeFn = func() { ac.Close() }
		ag := agent.NewClient(ac)
		// One publickey method: the client gives up on a method name once it failed, so
		// the file's key and the agent's keys must be offered by the same callback.
		fileSigners := signers
		return []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			as, err := ag.Signers()
			if err != nil && len(fileSigners) == 0 {
				return nil, err
			}
			return append(append([]ssh.Signer(nil), fileSigners...), as...), nil
		})}, closeFn, nil
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, closeFn, nil
}

// hostKeyCheck builds the host-key callback and the host-key algorithms to ask for, and
// says whether known_hosts pins a plain key for the address or the instance ID.
// Asking only for the algorithms of pinned keys matters: a server holding an ed25519
// and an RSA key would otherwise present the one the client likes best, which need not be
// the one in known_hosts, and a pinned host would look changed.
//
// known_hosts lines are looked up under the dialled address and under the instance ID
// (the identity that survives a stop/start); either may vouch for the key, and either
// pinning another key refuses it. @revoked lines refuse a plain key, a certificate and a
// certificate's signing CA on every path, the HostCA one included.
func hostKeyCheck(cfg *SSHConfig, addr, instanceID string) (ssh.HostKeyCallback, []string, bool, error) {
	var kh ssh.HostKeyCallback
	var db *knownHostsDB
	if len(cfg.KnownHosts) > 0 {
		var err error
		kh, err = knownhosts.New(cfg.KnownHosts...)
		if err != nil {
			return nil, nil, false, fmt.Errorf("known_hosts: %w: %v", ErrInvalid, err)
		}
		if db, err = readKnownHosts(cfg.KnownHosts); err != nil {
			return nil, nil, false, fmt.Errorf("known_hosts: %w: %v", ErrInvalid, err)
		}
	}
	var cas []ssh.PublicKey
	for _, f := range cfg.HostCA {
		keys, err := readPublicKeys(f)
		if err != nil {
			return nil, nil, false, err
		}
		cas = append(cas, keys...)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, false, fmt.Errorf("address %q: %w: %v", addr, ErrInvalid, err)
	}
	var idKeys []ssh.PublicKey
	if db != nil && instanceID != "" {
		idKeys = db.pins(instanceID)
	}

	var algos []string
	if len(cas) > 0 || knownHostsHaveCA(cfg.KnownHosts) {
		algos = append(algos, ssh.CertAlgoED25519v01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01,
			ssh.CertAlgoECDSA521v01, ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01)
	}
	var plainAlgos []string
	if kh != nil {
		plainAlgos = pinnedAlgos(kh, addr, idKeys)
	}
	algos = append(algos, plainAlgos...)
	if len(algos) == 0 {
		// Nothing pinned for this address: let the server pick, the callback refuses.
		algos = nil
	}

	checker := &ssh.CertChecker{}
	revoked := func(k ssh.PublicKey) bool { return db != nil && db.revoked[string(k.Marshal())] }
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		plain := key
		cert, isCert := key.(*ssh.Certificate)
		if isCert {
			plain = cert.Key
		}
		switch {
		case revoked(plain):
			return &HostKeyError{Addr: addr, Key: plain, Err: ErrHostKeyChanged, why: "revoked in known_hosts"}
		case isCert && revoked(cert):
			return &HostKeyError{Addr: addr, Key: plain, Err: ErrHostKeyChanged, why: "certificate revoked in known_hosts"}
		case isCert && revoked(cert.SignatureKey):
			return &HostKeyError{Addr: addr, Key: plain, Err: ErrHostKeyChanged,
				why: "certificate's CA " + ssh.FingerprintSHA256(cert.SignatureKey) + " revoked in known_hosts"}
		}
		if isCert {
			if len(cas) > 0 {
				why := certTrusted(checker, cert, cas, instanceID, host)
				if why == "" {
					return nil
				}
				if kh == nil {
					return &HostKeyError{Addr: addr, Key: plain, Err: ErrHostKeyUnknown, why: why}
				}
			}
			// known_hosts may vouch for it with a @cert-authority line; if not, as OpenSSH
			// does, an untrusted certificate falls back to its plain key.
			if kh != nil && kh(hostname, remote, cert) == nil {
				return nil
			}
		}
		if kh == nil {
			return &HostKeyError{Addr: addr, Key: plain, Err: ErrHostKeyUnknown}
		}
		// The instance ID's pins: another key there refuses whatever the address says.
		idOK := false
		if len(idKeys) > 0 {
			for _, k := range idKeys {
				if bytes.Equal(k.Marshal(), plain.Marshal()) {
					idOK = true
				}
			}
			if !idOK {
				return &HostKeyError{Addr: addr, Key: plain, Err: ErrHostKeyChanged,
					why: fmt.Sprintf("known_hosts pins %s for %s", ssh.FingerprintSHA256(idKeys[0]), instanceID)}
			}
		}
		err := kh(hostname, remote, plain)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &re):
			return &HostKeyError{Addr: addr, Key: plain, Err: ErrHostKeyChanged, why: "revoked"}
		case errors.As(err, &ke) && len(ke.Want) > 0:
			return &HostKeyError{Addr: addr, Key: plain, Err: ErrHostKeyChanged,
				why: fmt.Sprintf("known_hosts %s:%d pins %s", ke.Want[0].Filename, ke.Want[0].Line, ssh.FingerprintSHA256(ke.Want[0].Key))}
		case idOK:
			return nil // pinned by instance ID, nothing at the address
		default:
			return &HostKeyError{Addr: addr, Key: plain, Err: ErrHostKeyUnknown}
		}
	}
	return cb, algos, len(plainAlgos) > 0, nil
}

// knownHostsDB is what the keeper reads of known_hosts itself, beside x/crypto's
// callback: every @revoked key, and the plain lines, for lookups under a name that is not
// an address (the instance ID).
type knownHostsDB struct {
	revoked map[string]bool
	lines   []knownHostsLine
}

type knownHostsLine struct {
	hosts []string
	key   ssh.PublicKey
}

func readKnownHosts(files []string) (*knownHostsDB, error) {
	db := &knownHostsDB{revoked: map[string]bool{}}
	for _, f := range files {
		rest, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for len(rest) > 0 {
			marker, hosts, key, _, r, err := ssh.ParseKnownHosts(rest)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %v", f, err)
			}
			rest = r
			switch marker {
			case "revoked":
				db.revoked[string(key.Marshal())] = true
			case "":
				db.lines = append(db.lines, knownHostsLine{hosts: hosts, key: key})
			}
		}
	}
	return db, nil
}

// pins returns the plain keys known_hosts lines give name (plain, hashed or wildcard
// patterns; a matching negated pattern excludes the line).
func (db *knownHostsDB) pins(name string) []ssh.PublicKey {
	var out []ssh.PublicKey
	for _, l := range db.lines {
		match := false
		for _, h := range l.hosts {
			if neg, ok := strings.CutPrefix(h, "!"); ok {
				if hostMatches(neg, name) {
					match = false
					break
				}
				continue
			}
			if hostMatches(h, name) {
				match = true
			}
		}
		if match {
			out = append(out, l.key)
		}
	}
	return out
}

func hostMatches(pattern, name string) bool {
	if salt, hash, ok := strings.Cut(strings.TrimPrefix(pattern, "|1|"), "|"); ok && strings.HasPrefix(pattern, "|1|") {
		s, err1 := base64.StdEncoding.DecodeString(salt)
		want, err2 := base64.StdEncoding.DecodeString(hash)
		if err1 != nil || err2 != nil {
			return false
		}
		m := hmac.New(sha1.New, s)
		m.Write([]byte(name))
		return hmac.Equal(m.Sum(nil), want)
	}
	if strings.ContainsAny(pattern, "*?") {
		ok, _ := path.Match(pattern, name)
		return ok
	}
	return pattern == name
}

// knownHostsHaveCA reports whether a known_hosts file has a @cert-authority line: then
// host certificates are worth asking for.
func knownHostsHaveCA(files []string) bool {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && bytes.Contains(b, []byte("@cert-authority")) {
			return true
		}
	}
	return false
}

// certTrusted returns "" when cert is a valid host certificate from one of cas for the
// instance ID or the dialled host, or why not.
func certTrusted(checker *ssh.CertChecker, cert *ssh.Certificate, cas []ssh.PublicKey, instanceID, host string) string {
	if cert.CertType != ssh.HostCert {
		return "not a host certificate"
	}
	signed := false
	for _, ca := range cas {
		if bytes.Equal(ca.Marshal(), cert.SignatureKey.Marshal()) {
			signed = true
			break
		}
	}
	if !signed {
		return "certificate signed by an untrusted CA " + ssh.FingerprintSHA256(cert.SignatureKey)
	}
	var last error
	for _, p := range []string{instanceID, host} {
		if p == "" {
			continue
		}
		if last = checker.CheckCert(p, cert); last == nil {
			return ""
		}
	}
	return last.Error()
}

// pinnedAlgos lists the host-key algorithms of the keys known_hosts pins for addr, learned
// by asking the callback about a key it cannot know: its KeyError lists what it wants.
func pinnedAlgos(kh ssh.HostKeyCallback, addr string, extra []ssh.PublicKey) []string {
	var want []ssh.PublicKey
	err := kh(addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, probeKey{})
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		for _, w := range ke.Want {
			want = append(want, w.Key)
		}
	}
	want = append(want, extra...)
	var out []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, w := range want {
		switch t := w.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
		default:
			add(t)
		}
	}
	return out
}

// probeKey is a public key no known_hosts line can contain.
type probeKey struct{}

func (probeKey) Type() string                        { return "cloudluks-probe" }
func (probeKey) Marshal() []byte                     { return []byte("\x00\x00\x00\x0fcloudluks-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

func readPublicKeys(path string) ([]ssh.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("host CA: %w", err)
	}
	var keys []ssh.PublicKey
	for rest := b; len(bytes.TrimSpace(rest)) > 0; {
		k, _, _, r, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			return nil, fmt.Errorf("host CA %s: %w: %v", path, ErrInvalid, err)
		}
		keys = append(keys, k)
		rest = r
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("host CA %s: no key: %w", path, ErrInvalid)
	}
	return keys, nil
}

// HostKey dials addr and returns the host key it presents, without authenticating and
// without trusting it: for `keeper trust`, which shows the fingerprint to compare with
// the one cloud-init printed on the console. cfg's JumpHost (which must be trusted) is
// used to get there; cfg's KnownHosts and HostCA are ignored.
func HostKey(ctx context.Context, cfg SSHConfig, addr string, timeout time.Duration) (ssh.PublicKey, error) {
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	tr := transport{dialTimeout: timeout}
	var via *ssh.Client
	if cfg.JumpHost != nil {
		jc, err := tr.dial(ctx, cfg.JumpHost, cfg.JumpHost.Addr, "")
		if err != nil {
			return nil, jumpErr(cfg.JumpHost.Addr, err)
		}
		defer jc.Close()
		via = jc.client
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var conn net.Conn
	var err error
	if via != nil {
		conn, err = via.DialContext(dctx, "tcp", addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		return nil, tcpErr(addr, via, err)
	}
	defer conn.Close()
	watchdog := time.AfterFunc(timeout, func() { conn.Close() })
	defer watchdog.Stop()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var got ssh.PublicKey
	errGot := errors.New("host key received")
	user := cfg.User
	if user == "" {
		user = "keeper"
	}
	_, _, _, err = ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User: user,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if cert, ok := key.(*ssh.Certificate); ok {
				key = cert.Key
			}
			got = key
			return errGot
		},
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384,
			ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256},
	})
	if got != nil {
		return got, nil
	}
	return nil, fmt.Errorf("%s: %w: %v", addr, ErrHandshake, err)
}
