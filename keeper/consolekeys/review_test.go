package consolekeys_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/cloudluks/cloudluks/keeper/consolekeys"
)

// Lines that are not cloud-init's: markers in the middle of someone else's message, a key
// followed by arbitrary text. Accepted as the console vouching for the key.
func TestReviewForgedLines(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	k, _ := ssh.NewPublicKey(pub)
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	console := "[   12.1] Linux version 6.1\n" +
		"[  300.2] audit: apparmor=\"DENIED\" name=\"/home/bob/-----BEGIN SSH HOST KEY KEYS-----\" comm=\"cat\"\n" +
		"[  300.3] audit: apparmor=\"DENIED\" name=\"/home/bob/x " + key + " by bob, not cloud-init\"\n" +
		"[  300.4] audit: apparmor=\"DENIED\" name=\"/home/bob/-----END SSH HOST KEY KEYS-----\" comm=\"cat\"\n"
	r, err := consolekeys.Parse([]byte(console))
	if err != nil {
		t.Fatal(err)
	}
	ok, err := r.Trusts(k)
	t.Logf("keys %d, trusts %v %v", len(r.Keys), ok, err)
	if ok {
		t.Errorf("a key embedded in a log message is vouched for")
	}
}

// A second key block that holds one of the keys three times does not conflict.
func TestReviewSameKeysAsymmetric(t *testing.T) {
	b := sampleText(t)
	r, err := consolekeys.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	one := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(r.Keys[0])))
	extra := "-----BEGIN SSH HOST KEY KEYS-----\n" + one + "\n" + one + "\n" + one + "\n-----END SSH HOST KEY KEYS-----\n"
	if _, err := consolekeys.Parse(append(b, extra...)); err == nil {
		t.Errorf("a key block differing from the first is not a conflict")
	}
}

func sampleText(t *testing.T) []byte { return sample(t, "debian12-first-boot.txt") }
