package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cloudluks/cloudluks/internal/awstest"
	"github.com/cloudluks/cloudluks/internal/cli"
)

// pinned checks known_hosts with x/crypto's own reader, as the engine does: the host key of
// s is accepted for its address.
func pinned(t *testing.T, khFile string, s sshd) error {
	t.Helper()
	cb, err := knownhosts.New(khFile)
	require.NoError(t, err)
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.pub))
	require.NoError(t, err)
	return cb(s.addr, fakeAddr(s.addr), key)
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

const inst = "i-0123456789abcdef0"

func TestTrustFingerprintAndPrompt(t *testing.T) {
	s := startSSHD(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, target(inst, vol1, s.addr))
	kh := filepath.Join(dir, "known_hosts")

	r := kp(t, "", "-c", cfg, "trust", inst, "--fingerprint", "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	assert.Equal(t, cli.ExitPermission, r.code)
	assert.Contains(t, r.stderr, "presents ED25519 key "+s.fp)
	assert.NoFileExists(t, kh, "nothing pinned on a mismatch")
	r = kp(t, "", "-c", cfg, "trust", inst, "--fingerprint", "ab:cd")
	assert.Equal(t, cli.ExitUsage, r.code)

	// OpenSSH's question; anything but "yes" is no.
	r = kp(t, "no\n", "-c", cfg, "trust", inst, "--no-console")
	assert.Equal(t, cli.ExitPermission, r.code)
	assert.Contains(t, r.stderr, "The authenticity of host '"+inst+" ("+s.addr+")' can't be established.\nED25519 key fingerprint is "+s.fp+".\nAre you sure you want to continue connecting (yes/no)? ")
	assert.Contains(t, r.stderr, "Host key verification failed.")
	assert.NoFileExists(t, kh)
	r = kp(t, "", "-c", cfg, "trust", inst, "--no-console")
	assert.Equal(t, cli.ExitPermission, r.code, "end of input is no")

	r = kp(t, "yes\n", "-c", cfg, "trust", inst, "--no-console")
	require.Equal(t, cli.ExitOK, r.code)
	assert.Equal(t, s.fp+"\n", r.stdout)
	require.NoError(t, pinned(t, kh, s))
	data, err := os.ReadFile(kh)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(data), inst+","+knownhosts.Normalize(s.addr)+" ssh-ed25519 "), string(data))

	// Again: already pinned, the file is unchanged.
	r = kp(t, "", "-c", cfg, "trust", inst, "--fingerprint", s.fp)
	require.Equal(t, cli.ExitOK, r.code)
	assert.Contains(t, r.stderr, "already pinned")
	again, err := os.ReadFile(kh)
	require.NoError(t, err)
	assert.Equal(t, data, again)

	// The instance rebuilt behind the same address (another sshd, another key): refused,
	// then replaced on request.
	s2 := startSSHD(t)
	cfg2 := writeConfig(t, dir, target(inst, vol1, s2.addr))
	require.NoError(t, os.WriteFile(kh, []byte(inst+" "+s.pub+"\n"), 0o644))
	r = kp(t, "", "-c", cfg2, "trust", inst, "--fingerprint", s2.fp)
	assert.Equal(t, cli.ExitPermission, r.code)
	assert.Contains(t, r.stderr, "pins another ED25519 key ("+s.fp+")")
	r = kp(t, "", "-c", cfg2, "trust", inst, "--fingerprint", s2.fp, "--replace")
	require.Equal(t, cli.ExitOK, r.code)
	require.NoError(t, pinned(t, kh, s2))
	data, err = os.ReadFile(kh)
	require.NoError(t, err)
	assert.NotContains(t, string(data), s.pub[:60])

	// An instance not in the configuration.
	r = kp(t, "", "-c", cfg, "trust", "i-0fedcba9876543210", "--yes")
	assert.Equal(t, cli.ExitNoDevice, r.code)
}

// console is what the proxy in front of moto answers to GetConsoleOutput.
func consoleXML(instance, text string) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<GetConsoleOutputResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <instanceId>%s</instanceId>
  <timestamp>2026-12-04T19:00:12.000Z</timestamp>
  <output>%s</output>
</GetConsoleOutputResponse>`, instance, base64.StdEncoding.EncodeToString([]byte(text)))
}

// cloudInit prints the blocks as cloud-init's write-ssh-key-fingerprints helper does, through
// logger -t ec2.
func cloudInit(fpLine, pub string) string {
	return "[    0.000000] Linux version 6.1.0-28-cloud-amd64\n" +
		"<14>Dec  4 19:00:11 ec2: \n<14>Dec  4 19:00:11 ec2: #############################################################\n" +
		"<14>Dec  4 19:00:11 ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n<14>Dec  4 19:00:11 ec2: " + fpLine + "\n" +
		"<14>Dec  4 19:00:11 ec2: -----END SSH HOST KEY FINGERPRINTS-----\n<14>Dec  4 19:00:11 ec2: #############################################################\n" +
		"-----BEGIN SSH HOST KEY KEYS-----\n" + pub + "\n-----END SSH HOST KEY KEYS-----\n" +
		"\nDebian GNU/Linux 12 ip-172-31-17-42 ttyS0\n\nip-172-31-17-42 login: \n"
}

func TestTrustConsole(t *testing.T) {
	s := startSSHD(t)
	other := startSSHD(t) // a key the instance does not have
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	id := awstest.RunInstance(t, ctx, awstest.NewEC2Client(moto), "us-east-1a")
	var console atomic.Value
	console.Store("")
	var calls atomic.Int32
	proxy := awstest.StartProxy(t, moto, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		text := console.Load().(string)
		if !strings.Contains(string(body), "Action=GetConsoleOutput") || text == "" {
			return false // moto answers, with its own canned console
		}
		calls.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprint(w, consoleXML(id, text))
		return true
	})
	for _, kv := range awstest.Env(proxy, "") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	cfg := writeConfig(t, dir, target(id, vol1, s.addr))
	kh := filepath.Join(dir, "known_hosts")

	// moto's own console has no host keys: trust falls back to the question.
	r := kp(t, "no\n", "-c", cfg, "trust", id)
	assert.Equal(t, cli.ExitPermission, r.code)
	assert.Contains(t, r.stderr, "holds no host-key fingerprints")
	assert.Contains(t, r.stderr, "Are you sure you want to continue connecting (yes/no)?")

	// The console shows another key than the one presented: refused, nothing asked.
	fpOther := "256 " + other.fp + " root@ip-172-31-17-42 (ED25519)"
	console.Store(cloudInit(fpOther, other.pub))
	r = kp(t, "yes\n", "-c", cfg, "trust", id)
	assert.Equal(t, cli.ExitPermission, r.code)
	assert.Contains(t, r.stderr, "which its console output does not show")
	assert.NotContains(t, r.stderr, "Are you sure")
	assert.NoFileExists(t, kh)

	// The console shows the key presented: pinned without a question.
	console.Store(cloudInit("256 "+s.fp+" root@ip-172-31-17-42 (ED25519)", s.pub))
	r = kp(t, "", "-c", cfg, "trust", id)
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stderr, "matches the fingerprint cloud-init printed on the console of "+id)
	require.NoError(t, pinned(t, kh, s))
	assert.Positive(t, calls.Load())

	// A console tampered with (two key blocks that disagree) is refused outright.
	console.Store(cloudInit("256 "+s.fp+" root@ip-172-31-17-42 (ED25519)", s.pub) + "-----BEGIN SSH HOST KEY KEYS-----\n" + other.pub + "\n-----END SSH HOST KEY KEYS-----\n")
	r = kp(t, "", "-c", cfg, "trust", id, "--known-hosts", filepath.Join(dir, "kh2"))
	assert.Equal(t, cli.ExitPermission, r.code)
	assert.Contains(t, r.stderr, "conflicting SSH host keys")
	assert.NoFileExists(t, filepath.Join(dir, "kh2"))
}

// Two `keeper trust` at once: each pin reads and rewrites known_hosts under its lock, so
// neither drops the other's line.
func TestPinConcurrent(t *testing.T) {
	kh := filepath.Join(t.TempDir(), "known_hosts")
	const n = 8
	keys := make([]ssh.PublicKey, n)
	for i := range keys {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		keys[i], err = ssh.NewPublicKey(pub)
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := pin(context.Background(), kh, []string{fmt.Sprintf("i-%017x", i)}, keys[i], false)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	data, err := os.ReadFile(kh)
	require.NoError(t, err)
	assert.Equal(t, n, strings.Count(string(data), "\n"), "%s", data)
}

// An unvouched key next to an existing pin (another type, or a hashed line) is refused; a
// vouched one is pinned beside it; --replace drops the old lines, hashed ones included,
// and the question says what is known already, as OpenSSH's does.
func TestTrustExistingPin(t *testing.T) {
	s := startSSHD(t)
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	cfg := writeConfig(t, dir, target("i-0123456789abcdef0", vol1, s.addr))
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	old, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	hashed := knownhosts.HashHostname(knownhosts.Normalize(s.addr)) + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(old))) + "\n"

	require.NoError(t, os.WriteFile(kh, []byte(hashed), 0o644))
	r := kp(t, "", "-c", cfg, "trust", "i-0123456789abcdef0", "--no-console", "--yes", "--known-hosts", kh)
	assert.Equal(t, cli.ExitPermission, r.code)
	assert.Contains(t, r.stderr, "not vouched for")
	assert.Contains(t, r.stderr, ssh.FingerprintSHA256(old))

	r = kp(t, "yes\n", "-c", cfg, "trust", "i-0123456789abcdef0", "--no-console", "--replace", "--known-hosts", kh)
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stderr, "but another ED25519 key is already known for this host")
	data, err := os.ReadFile(kh)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(data), "\n"), "the hashed line is replaced:\n%s", data)
	require.NoError(t, pinned(t, kh, s))

	// Vouched for by its fingerprint: pinned beside a key of another type.
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	other, err := ssh.NewPublicKey(&ek.PublicKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(kh, []byte(knownhosts.Line([]string{s.addr}, other)+"\n"), 0o644))
	r = kp(t, "no\n", "-c", cfg, "trust", "i-0123456789abcdef0", "--no-console", "--replace", "--known-hosts", kh)
	assert.Equal(t, cli.ExitPermission, r.code)
	assert.Contains(t, r.stderr, "but keys of different type are already known for this host (ECDSA")
	r = kp(t, "", "-c", cfg, "trust", "i-0123456789abcdef0", "--no-console", "--fingerprint", s.fp, "--known-hosts", kh)
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	data, err = os.ReadFile(kh)
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(data), "\n"), "%s", data)
}
