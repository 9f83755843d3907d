package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/cloudluks/cloudluks/keeper/vault"
)

type result struct {
	stdout, stderr string
	code           int
}

// kp runs the program in-process with stdin.
func kp(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	r := result{out.String(), errb.String(), code}
	t.Logf("keeper %s → %d\nstdout: %sstderr: %s", strings.Join(args, " "), code, r.stdout, r.stderr)
	return r
}

const (
	vol1  = "vol-0123456789abcdef0"
	vol2  = "vol-0fedcba9876543210"
	uuid1 = "6e0a6d4c-9c1b-4c3e-8a5d-1f2e3d4c5b6a"
	uuid2 = "11111111-2222-4333-8444-555555555555"
)

func TestUsage(t *testing.T) {
	r := kp(t, "")
	assert.Equal(t, cli.ExitUsage, r.code)
	assert.Contains(t, r.stderr, "usage: keeper")
	assert.Empty(t, r.stdout)

	r = kp(t, "", "--version")
	assert.Equal(t, cli.ExitOK, r.code)
	assert.True(t, strings.HasPrefix(r.stdout, "keeper "), r.stdout)

	for _, verb := range []string{"vault", "trust", "run", "status", "rescue"} {
		r = kp(t, "", "help", verb)
		assert.Equal(t, cli.ExitOK, r.code)
		assert.Contains(t, r.stdout, "Usage: keeper "+verb)
		assert.Contains(t, r.stdout, "Example:\n  keeper "+verb)
	}
	r = kp(t, "", "trust", "--help")
	assert.Equal(t, cli.ExitOK, r.code)
	assert.Contains(t, r.stdout, "Usage: keeper trust")
	assert.Contains(t, r.stdout, "Flags:\n")
	assert.Contains(t, r.stdout, "-fingerprint string")
	r = kp(t, "", "vault", "add", "--help")
	assert.Equal(t, cli.ExitOK, r.code)
	assert.Contains(t, r.stdout, "-header string")
	assert.Empty(t, r.stderr)

	r = kp(t, "", "frobnicate")
	assert.Equal(t, cli.ExitUsage, r.code)
	assert.Contains(t, r.stderr, `unknown verb "frobnicate"`)
	r = kp(t, "", "help", "frobnicate")
	assert.Equal(t, cli.ExitUsage, r.code)
	r = kp(t, "", "trust")
	assert.Equal(t, cli.ExitUsage, r.code)
	assert.Contains(t, r.stderr, "usage: keeper trust INSTANCE")
	r = kp(t, "", "vault", "frob")
	assert.Equal(t, cli.ExitUsage, r.code)
}

// writeConfig writes a keeper.toml in dir with the lines given after the vault's.
func writeConfig(t *testing.T, dir string, lines ...string) string {
	t.Helper()
	p := filepath.Join(dir, "keeper.toml")
	body := fmt.Sprintf("vault = %q\nknown_hosts = %q\nstatus_file = %q\n", filepath.Join(dir, "vault.age"), filepath.Join(dir, "known_hosts"), filepath.Join(dir, "status.json")) + strings.Join(lines, "\n") + "\n"
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func target(instance, volume, addr string) string {
	return fmt.Sprintf("[ssh]\nuser = \"keeper\"\nkey = \"/nonexistent/id\"\n[[target]]\ninstance = %q\nvolume = %q\n  [target.ssh]\n  address = %q\n", instance, volume, addr)
}

func TestVault(t *testing.T) {
	// Every command's output, to search for the passphrases at the end.
	var outputs []string
	k := func(stdin string, args ...string) result {
		r := kp(t, stdin, args...)
		outputs = append(outputs, r.stdout, r.stderr)
		return r
	}
	dir := t.TempDir()
	cfg := writeConfig(t, dir, target("i-0123456789abcdef0", vol1, "127.0.0.1:1"))
	path := filepath.Join(dir, "vault.age")
	const vaultPass, volPass = "vault pass 7c1e", "volume pass 93ad"

	// A bad entry is refused before anything is read or made.
	r := k(vaultPass+"\n", "-c", cfg, "vault", "add", "vol-nothex", "--uuid", uuid1)
	assert.Equal(t, cli.ExitUsage, r.code)
	assert.NoFileExists(t, path)
	r = k(vaultPass+"\n", "-c", cfg, "vault", "add", vol1)
	assert.Equal(t, cli.ExitUsage, r.code, "no --uuid")
	assert.NoFileExists(t, path)
	r = k("", "-c", cfg, "vault", "list")
	assert.Equal(t, cli.ExitNoDevice, r.code, "no vault yet")

	// A vault made with a small scrypt work factor, so that the many opens below are quick
	// (TestVaultCreate makes one with the program's own, age's default).
	v, err := vault.Create(path, []byte(vaultPass), vault.Options{WorkFactor: 10})
	require.NoError(t, err)
	v.Close()
	r = k(vaultPass+"\n"+volPass+"\n", "-c", cfg, "vault", "add", vol1, "--uuid", uuid1, "--label", "web-1/data")
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// Flags after the positional argument work too; a key file is read whole.
	kf := filepath.Join(dir, "pass2")
	require.NoError(t, os.WriteFile(kf, []byte("second\nline"), 0o600))
	r = k(vaultPass+"\n", "-c", cfg, "vault", "add", "--key-file", kf, vol2, "--uuid", uuid2)
	require.Equal(t, cli.ExitOK, r.code, r.stderr)

	r = k(vaultPass+"\n", "-c", cfg, "vault", "list")
	require.Equal(t, cli.ExitOK, r.code)
	assert.Equal(t, "VOLUME                 LUKS UUID                             LABEL\n"+
		vol1+"  "+uuid1+"  web-1/data\n"+
		vol2+"  "+uuid2+"  \n", r.stdout)
	r = k(vaultPass+"\n", "-c", cfg, "vault", "list", "--json")
	require.Equal(t, cli.ExitOK, r.code)
	var entries []map[string]string
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &entries))
	assert.Equal(t, []map[string]string{{"volume_id": vol1, "luks_uuid": uuid1, "label": "web-1/data"}, {"volume_id": vol2, "luks_uuid": uuid2}}, entries)

	r = k("wrong\n", "-c", cfg, "vault", "list")
	assert.Equal(t, cli.ExitPermission, r.code)
	assert.Contains(t, r.stderr, "no key available")
	r = k(vaultPass+"\nagain\n", "-c", cfg, "vault", "add", vol1, "--uuid", uuid1)
	assert.Equal(t, cli.ExitBusy, r.code)

	r = k(vaultPass+"\n", "--vault", path, "vault", "remove", vol2)
	require.Equal(t, cli.ExitOK, r.code, "--vault instead of a configuration")
	r = k(vaultPass+"\n", "-c", cfg, "vault", "remove", vol2)
	assert.Equal(t, cli.ExitNoDevice, r.code)

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, s := range []string{vaultPass, volPass, "second", vol1, uuid1} {
		assert.NotContains(t, string(data), s)
	}
	require.Len(t, outputs, 2*11, "every command of the test")
	for _, out := range outputs {
		assert.NotContains(t, out, volPass)
		assert.NotContains(t, out, "second\nline")
	}
}

// The first add makes the vault: a new passphrase, then the volume's.
func TestVaultCreate(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, target("i-0123456789abcdef0", vol1, "127.0.0.1:1"))
	path := filepath.Join(dir, "vault.age")
	r := kp(t, "vault pass\nvolume pass\n", "-c", cfg, "vault", "add", vol1, "--uuid", uuid1)
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stderr, "creating vault "+path)
	v, err := vault.Open(path, []byte("vault pass"), vault.Options{})
	require.NoError(t, err)
	defer v.Close()
	p, err := v.Passphrase(vol1)
	require.NoError(t, err)
	assert.Equal(t, "volume pass", string(p))
}

func TestVaultIdentity(t *testing.T) {
	dir := t.TempDir()
	keygen := agePair(t, dir)
	path := filepath.Join(dir, "v.age")
	r := kp(t, "pw\n", "--vault", path, "vault", "add", vol1, "--uuid", uuid1, "--recipient", keygen.recipient)
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	r = kp(t, "", "--vault", path, "--identity", keygen.file, "vault", "list", "--json")
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, vol1)
	r = kp(t, "pw\n", "--vault", path, "vault", "list")
	assert.Equal(t, cli.ExitPermission, r.code, "a passphrase does not open a recipient vault")
}

// sshd is a real OpenSSH sshd on 127.0.0.1 with a fresh ed25519 host key: enough for trust,
// which reads the host key and never authenticates.
type sshd struct {
	addr    string
	pubFile string // the host key's .pub
	fp      string // ssh-keygen -l's SHA256 fingerprint of it
	pub     string // the .pub line
}

func startSSHD(t *testing.T, authorized ...string) sshd {
	t.Helper()
	bin := "/usr/sbin/sshd"
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, "sshd", "apt-get install openssh-server")
	}
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		testenv.Missing(t, "ssh-keygen", "apt-get install openssh-client")
	}
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
	dir := t.TempDir()
	hk := filepath.Join(dir, "host_ed25519")
	out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "root@test", "-f", hk).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(strings.Join(authorized, "\n")+"\n"), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conf := filepath.Join(dir, "sshd_config")
	require.NoError(t, os.WriteFile(conf, []byte(strings.Join([]string{
		"ListenAddress " + addr, "HostKey " + hk, "PidFile none", "UsePAM no", "StrictModes no",
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"), "LogLevel ERROR",
	}, "\n")+"\n"), 0o600))
	cmd := exec.Command(bin, "-D", "-e", "-f", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var logs bytes.Buffer
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "SSH-2.0-") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not come up on %s: %s", addr, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	fpOut, err := exec.Command(keygen, "-l", "-f", hk+".pub").Output()
	require.NoError(t, err)
	pub, err := os.ReadFile(hk + ".pub")
	require.NoError(t, err)
	return sshd{addr: addr, pubFile: hk + ".pub", fp: strings.Fields(string(fpOut))[1], pub: strings.TrimSpace(string(pub))}
}

type ageKey struct{ recipient, file string }

// A recipient vault's writes go to the recipients the operator gives, never to a list
// planted in the file (age does not authenticate who wrote it); list shows them.
func TestVaultPlantedRecipient(t *testing.T) {
	dir := t.TempDir()
	k := agePair(t, dir)
	path := filepath.Join(dir, "v.age")
	r := kp(t, "p1\n", "--vault", path, "vault", "add", vol1, "--uuid", uuid1, "--recipient", k.recipient)
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	r = kp(t, "", "--vault", path, "--identity", k.file, "vault", "list")
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "recipient "+k.recipient+"\n")

	op, err := age.ParseX25519Recipient(k.recipient)
	require.NoError(t, err)
	att, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, op)
	require.NoError(t, err)
	fmt.Fprintf(w, "cloudluks-vault 1\nrecipient %s\nrecipient %s\n", k.recipient, att.Recipient())
	require.NoError(t, w.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))

	r = kp(t, "", "--vault", path, "--identity", k.file, "vault", "list")
	assert.Contains(t, r.stderr, "need its recipients")
	r = kp(t, "secret two\n", "--vault", path, "--identity", k.file, "vault", "add", vol2, "--uuid", uuid2)
	assert.NotEqual(t, cli.ExitOK, r.code)
	assert.Contains(t, r.stderr, "recipients of the vault not known")
	r = kp(t, "secret two\n", "--vault", path, "--identity", k.file, "vault", "add", vol2, "--uuid", uuid2, "--recipient", k.recipient)
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	_, err = age.Decrypt(f, att)
	assert.Error(t, err, "the planted recipient opens the rewritten vault")
}

// vault add makes a new vault only once the entry is complete, and never a passphrase vault
// when an identity is set (it would not open with it).
func TestVaultAddCreatesLast(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v.age")
	r := kp(t, "vault pass\n", "--vault", path, "vault", "add", vol1, "--uuid", uuid1)
	assert.Equal(t, cli.ExitUsage, r.code, r.stderr)
	assert.NoFileExists(t, path)
	k := agePair(t, dir)
	r = kp(t, "vault pass\nvolume pass\n", "--vault", path, "--identity", k.file, "vault", "add", vol1, "--uuid", uuid1)
	assert.Equal(t, cli.ExitUsage, r.code)
	assert.Contains(t, r.stderr, "--recipient")
	assert.NoFileExists(t, path)
	r = kp(t, "", "--vault", path, "vault", "add", vol1, "--uuid", uuid1, "--recipient", k.recipient)
	assert.NotEqual(t, cli.ExitOK, r.code)
	assert.NoFileExists(t, path)
}
