package vault_test

import (
	"bytes"
	"filippo.io/age"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cloudluks/cloudluks/keeper/vault"
)

// Two writers (two `keeper vault add` at once): the second rename drops the first's entry.
func TestReviewLostUpdate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.age")
	v, err := vault.Create(path, []byte("pw"), fast)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	a, _ := vault.Open(path, []byte("pw"), fast)
	b, _ := vault.Open(path, []byte("pw"), fast)
	if err := a.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(vault.Entry{VolumeID: vol2, LUKSUUID: uuid2}, []byte("two")); err != nil {
		t.Fatal(err)
	}
	c, _ := vault.Open(path, []byte("pw"), fast)
	t.Logf("entries after two adds: %v", c.List())
	if len(c.List()) != 2 {
		t.Errorf("lost update: want 2 entries, have %d", len(c.List()))
	}
}

// A removed passphrase comes back when a writer that opened the vault earlier writes.
func TestReviewRemoveResurrected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.age")
	v, _ := vault.Create(path, []byte("pw"), fast)
	v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, []byte("retired"))
	v.Close()
	slow, _ := vault.Open(path, []byte("pw"), fast) // `vault add` waiting at its prompt
	rm, _ := vault.Open(path, []byte("pw"), fast)
	if err := rm.Remove(vol1); err != nil {
		t.Fatal(err)
	}
	slow.Add(vault.Entry{VolumeID: vol2, LUKSUUID: uuid2}, []byte("two"))
	c, _ := vault.Open(path, []byte("pw"), fast)
	if _, err := c.Passphrase(vol1); err == nil {
		t.Errorf("removed entry %s is back in the vault: %v", vol1, c.List())
	}
}

// Two Create at once: both succeed, one vault silently replaces the other.
func TestReviewCreateRace(t *testing.T) {
	both := 0
	for i := 0; i < 30; i++ {
		path := filepath.Join(t.TempDir(), "vault.age")
		var wg sync.WaitGroup
		var ok [2]bool
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := vault.Create(path, []byte{byte('a' + j)}, fast)
				if err == nil {
					ok[j] = true
					v.Close()
				}
			}()
		}
		wg.Wait()
		if ok[0] && ok[1] {
			both++
		}
	}
	if both > 0 {
		t.Errorf("%d/30 runs: both Create calls succeeded on one path", both)
	}
}

// Anyone who can write the vault file and knows the operator's (public) recipient can plant
// a vault listing an extra recipient; the operator's next Add encrypts every passphrase to it.
func TestReviewRecipientInjection(t *testing.T) {
	op, _ := age.GenerateX25519Identity()
	path := filepath.Join(t.TempDir(), "vault.age")
	v, err := vault.CreateForRecipients(path, []string{op.Recipient().String()}, fast)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	// The attacker: no secret needed.
	att, _ := age.GenerateX25519Identity()
	var buf bytes.Buffer
	w, _ := age.Encrypt(&buf, op.Recipient())
	w.Write([]byte("cloudluks-vault 1\nrecipient " + op.Recipient().String() + "\nrecipient " + att.Recipient().String() + "\n"))
	w.Close()
	os.WriteFile(path, buf.Bytes(), 0o600)
	// The operator adds a volume as usual.
	v, err = vault.OpenWithIdentities(path, []age.Identity{op}, fast)
	if err != nil {
		t.Fatal(err)
	}
	v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, []byte("the real disk passphrase"))
	v.Close()
	// The attacker reads it back.
	if got, err := vault.OpenWithIdentities(path, []age.Identity{att}, fast); err == nil {
		p, _ := got.Passphrase(vol1)
		t.Errorf("attacker's identity opens the vault: %s = %q", vol1, p)
	}
}
