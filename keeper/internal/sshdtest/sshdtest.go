// Package sshdtest starts real OpenSSH sshd servers (/usr/sbin/sshd from Debian's
// openssh-server) for the keeper's tests: each on 127.0.0.1 and a free port, in the
// foreground (`sshd -D -e -f CONFIG`), with its own host key, config and authorized_keys
// in a temporary directory, and killed — with every connection process it forked — when
// the test ends. Keys, host certificates and agents are made with the real ssh-keygen,
// ssh-agent and ssh-add, so what the keeper trusts is what OpenSSH makes.
//
// A missing program skips the test locally and fails it under CI=true (internal/testenv).
// sshd insists on its privilege-separation directory /run/sshd; Start creates it.
package sshdtest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// Hint says how to install what the package runs.
const Hint = "apt-get install openssh-server openssh-client"

const startTimeout = 30 * time.Second

// Config shapes one sshd.
type Config struct {
	// AuthorizedKeys are the lines of the server's authorized_keys, options included
	// (`restrict,command="…" ssh-ed25519 AAAA…`).
	AuthorizedKeys []string
	// CAKey, if set, is a CA private key file (see NewCA) that signs the server's host key;
	// the certificate carries Principals and sshd presents it (HostCertificate).
	CAKey      string
	Principals []string
	// Extra are further sshd_config lines.
	Extra []string
}

// Server is one running sshd.
type Server struct {
	Addr        string        // "127.0.0.1:PORT"
	User        string        // the login the authorized_keys belong to (the test's own user)
	Dir         string        // config, keys, authorized_keys
	HostKey     ssh.PublicKey // the plain host key
	HostKeyFile string        // its private key file

	t      testing.TB
	cfg    string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *lockedBuffer
}

// Start writes the config and starts sshd, waiting until it answers with an SSH banner.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	bin := sshdPath(t)
	keygen := testenv.LookPath(t, "ssh-keygen", Hint)
	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshdtest: current user: %v", err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshdtest: sshd needs /run/sshd: %v", err)
	}
	dir := t.TempDir()
	s := &Server{User: u.Username, Dir: dir, t: t, log: &lockedBuffer{}}
	s.HostKeyFile = filepath.Join(dir, "ssh_host_ed25519_key")
	run(t, keygen, "-q", "-t", "ed25519", "-N", "", "-C", "sshdtest-host", "-f", s.HostKeyFile)
	s.HostKey = readPub(t, s.HostKeyFile+".pub")
	if cfg.CAKey != "" {
		princ := strings.Join(cfg.Principals, ",")
		if princ == "" {
			princ = "127.0.0.1"
		}
		run(t, keygen, "-q", "-s", cfg.CAKey, "-I", "sshdtest-host", "-h", "-n", princ, "-V", "-5m:+1h", s.HostKeyFile+".pub")
	}
	ak := strings.Join(cfg.AuthorizedKeys, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(ak), 0o600); err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	var lastErr error
	for try := 0; try < 3; try++ {
		port := freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.cfg = filepath.Join(dir, "sshd_config")
		lines := []string{
			"ListenAddress " + s.Addr,
			"HostKey " + s.HostKeyFile,
			"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
			"PidFile none",
			"UsePAM no",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"PubkeyAuthentication yes",
			"PermitRootLogin prohibit-password",
			// t.TempDir() lies under a world-writable /tmp, which StrictModes rejects.
			"StrictModes no",
			"LogLevel VERBOSE",
			// The fleet tests open many connections at once.
			"MaxStartups 200:30:400",
			"MaxSessions 50",
			// bash sources ~/.bashrc for a command sshd runs when SHLVL is below 2. A
			// machine whose .bashrc does slow or locking work (pyenv's rehash holds a lock
			// file for up to 60 s after a session is killed) would stall every forced
			// command and turn the tests' deadlines into flakes; the user's rc files are
			// not what they test.
			"SetEnv SHLVL=1",
		}
		if cfg.CAKey != "" {
			lines = append(lines, "HostCertificate "+s.HostKeyFile+"-cert.pub")
		}
		lines = append(lines, cfg.Extra...)
		if err := os.WriteFile(s.cfg, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatalf("sshdtest: %v", err)
		}
		if lastErr = s.start(bin); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("sshdtest: sshd did not start: %v", lastErr)
	return nil
}

func (s *Server) start(bin string) error {
	cmd := exec.Command(bin, "-D", "-e", "-f", s.cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("sshd exited: %s", s.log.String())
		default:
		}
		if banner(s.Addr) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("no banner on %s within %v: %s", s.Addr, startTimeout, s.log.String())
}

// banner reports whether an SSH server answers on addr.
func banner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

// Stop kills sshd and every process it forked (one per connection: they survive their
// parent otherwise, which would keep sessions alive a test means to drop). Idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	s.signalTree(cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// Restart starts sshd again on the same address with the same keys and config (a reboot
// as the keeper sees it). It fails the test if the port was taken meanwhile.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(sshdPath(s.t)); err != nil {
		s.t.Fatalf("sshdtest: restart: %v", err)
	}
}

// Pause stops sshd and its connection processes (SIGSTOP) without closing their sockets:
// a peer that has gone silent, as a frozen or unplugged instance is. Resume undoes it.
func (s *Server) Pause()  { s.signalAll(syscall.SIGSTOP) }
func (s *Server) Resume() { s.signalAll(syscall.SIGCONT) }

func (s *Server) signalAll(sig syscall.Signal) {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd != nil {
		s.signalTree(cmd.Process.Pid, sig)
	}
}

// signalTree signals pid and its descendants, found through /proc (the connection
// processes call setsid, so a process-group signal would miss them).
func (s *Server) signalTree(pid int, sig syscall.Signal) {
	for _, p := range descendants(pid) {
		_ = syscall.Kill(p, sig)
	}
	_ = syscall.Kill(pid, sig)
}

func descendants(root int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name in parentheses may contain blanks: read after the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(root)
	return out
}

// Log returns what sshd printed so far (it logs to stderr with -e).
func (s *Server) Log() string { return s.log.String() }

// KnownHostsLine is the known_hosts line pinning this server's host key at its address
// ("[127.0.0.1]:PORT ssh-ed25519 AAAA…").
func (s *Server) KnownHostsLine() string {
	return knownHostsLine(s.Addr, s.HostKey)
}

// KnownHosts writes a known_hosts file with KnownHostsLine and returns its path.
func (s *Server) KnownHosts(t testing.TB) string {
	t.Helper()
	return WriteFile(t, "known_hosts", s.KnownHostsLine())
}

func knownHostsLine(addr string, key ssh.PublicKey) string {
	host, port, _ := net.SplitHostPort(addr)
	name := host
	if port != "22" {
		name = "[" + host + "]:" + port
	}
	return name + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// WriteFile writes lines to a new file in a temporary directory and returns its path.
func WriteFile(t testing.TB, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	return p
}

// Key is a client key pair made by ssh-keygen.
type Key struct {
	File   string        // private key file (unencrypted OpenSSH format)
	Public ssh.PublicKey //
}

// AuthorizedLine is the authorized_keys line for k with options in front
// (`restrict,command="…"`; "" for none).
func (k Key) AuthorizedLine(options string) string {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Public)))
	if options != "" {
		line = options + " " + line
	}
	return line
}

// NewKey makes an ed25519 key pair with ssh-keygen.
func NewKey(t testing.TB) Key {
	t.Helper()
	keygen := testenv.LookPath(t, "ssh-keygen", Hint)
	f := filepath.Join(t.TempDir(), "id_ed25519")
	run(t, keygen, "-q", "-t", "ed25519", "-N", "", "-C", "sshdtest-client", "-f", f)
	return Key{File: f, Public: readPub(t, f+".pub")}
}

// NewCA makes a host-certificate CA key pair with ssh-keygen; pass File as Config.CAKey
// and trust Public on the client.
func NewCA(t testing.TB) Key { return NewKey(t) }

// StartAgent runs a real ssh-agent on a socket in a temporary directory, loads the given
// key files into it with ssh-add, and returns the socket path. The agent is killed when
// t ends.
func StartAgent(t testing.TB, keyFiles ...string) string {
	t.Helper()
	agentBin := testenv.LookPath(t, "ssh-agent", Hint)
	add := testenv.LookPath(t, "ssh-add", Hint)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command(agentBin, "-D", "-a", sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("sshdtest: ssh-agent: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	deadline := time.Now().Add(startTimeout)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshdtest: ssh-agent did not listen: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, f := range keyFiles {
		c := exec.Command(add, "-q", f)
		c.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if b, err := c.CombinedOutput(); err != nil {
			t.Fatalf("sshdtest: ssh-add %s: %v: %s", f, err, b)
		}
	}
	return sock
}

func sshdPath(t testing.TB) string {
	t.Helper()
	const p = "/usr/sbin/sshd"
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return testenv.LookPath(t, "sshd", Hint)
}

func readPub(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatalf("sshdtest: %s: %v", path, err)
	}
	return k
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("sshdtest: %s %s: %v: %s", name, strings.Join(args, " "), err, b)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshdtest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// sshd with LogLevel VERBOSE is chatty under the fleet tests: keep the last 1 MiB.
	if l.b.Len() > 1<<20 {
		rest := l.b.Bytes()[l.b.Len()-(512<<10):]
		l.b = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
