package consolekeys_test

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/cloudluks/cloudluks/keeper/consolekeys"
)

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// The samples' keys were made by ssh-keygen and their fingerprint lines printed by
// ssh-keygen -l, in the two prefixes cloud-init's helper leaves on real consoles.
func TestSamples(t *testing.T) {
	for _, name := range []string{"debian12-first-boot.txt", "al2023-first-boot.txt"} {
		t.Run(name, func(t *testing.T) {
			r, err := consolekeys.Parse(sample(t, name))
			require.NoError(t, err)
			require.Len(t, r.Fingerprints, 3)
			assert.Equal(t, consolekeys.Fingerprint{Bits: 256, Hash: "SHA256:zKgVlzcwK0DD60hPax3ZzYg3Yo59utv835p66yjMid8", Comment: "root@ip-172-31-17-42", Type: "ECDSA"}, r.Fingerprints[0])
			assert.Equal(t, "ED25519", r.Fingerprints[1].Type)
			assert.Equal(t, 3072, r.Fingerprints[2].Bits)
			require.Len(t, r.Keys, 3)
			assert.Equal(t, "SHA256:eabEa6drGglgNsQcSgysG/ThETrWRC/yLLVIi+1Aaok", ssh.FingerprintSHA256(r.Keys[1]))
			for _, k := range r.Keys {
				ok, err := r.Trusts(k)
				require.NoError(t, err)
				assert.True(t, ok)
			}
			assert.Nil(t, r.Prompt, "a finished boot")
			lines, err := r.KnownHostsLines("i-0123456789abcdef0")
			require.NoError(t, err)
			require.Len(t, lines, 3)
			assert.True(t, strings.HasPrefix(lines[1], "i-0123456789abcdef0 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJZwUr8K"), lines[1])
		})
	}
}

func TestOtherKeyNotTrusted(t *testing.T) {
	r, err := consolekeys.Parse(sample(t, "debian12-first-boot.txt"))
	require.NoError(t, err)
	other, _, _, _, err := ssh.ParseAuthorizedKey([]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPr0qEXD9H8WcRPG6Z3Vj6Gy9Ts1CWyHh1rGeqXkq5yJ"))
	require.NoError(t, err)
	ok, err := r.Trusts(other)
	require.NoError(t, err)
	assert.False(t, ok)

	// Fingerprints alone (cloud-init told not to print the keys) still vouch for a key.
	text := string(sample(t, "debian12-first-boot.txt"))
	i, j := strings.Index(text, "-----BEGIN SSH HOST KEY KEYS-----"), strings.Index(text, "-----END SSH HOST KEY KEYS-----")
	onlyFP := text[:i] + text[j+len("-----END SSH HOST KEY KEYS-----"):]
	r2, err := consolekeys.Parse([]byte(onlyFP))
	require.NoError(t, err)
	assert.Empty(t, r2.Keys)
	ok, err = r2.Trusts(r.Keys[0])
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = r2.Trusts(other)
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = r2.KnownHostsLines("h")
	require.ErrorIs(t, err, consolekeys.ErrNoKeys)
}

func TestNoKeys(t *testing.T) {
	r, err := consolekeys.Parse(sample(t, "stuck-crypttab.txt"))
	require.NoError(t, err)
	_, err = r.Trusts(nil)
	require.ErrorIs(t, err, consolekeys.ErrNoKeys)
	// An unterminated block (the 64 KiB window cut it) counts as none.
	text := string(sample(t, "debian12-first-boot.txt"))
	r, err = consolekeys.Parse([]byte(text[:strings.Index(text, "-----END SSH HOST KEY FINGERPRINTS")]))
	require.NoError(t, err)
	assert.Empty(t, r.Fingerprints)
}

func TestConflict(t *testing.T) {
	text := string(sample(t, "debian12-first-boot.txt"))
	other := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPr0qEXD9H8WcRPG6Z3Vj6Gy9Ts1CWyHh1rGeqXkq5yJ root@evil"

	// A second key block, injected later, with another key.
	_, err := consolekeys.Parse([]byte(text + "-----BEGIN SSH HOST KEY KEYS-----\n" + other + "\n-----END SSH HOST KEY KEYS-----\n"))
	require.ErrorIs(t, err, consolekeys.ErrConflict)
	// A key whose fingerprint is not printed beside it.
	swapped := strings.Replace(text, "-----END SSH HOST KEY KEYS-----", other+"\n-----END SSH HOST KEY KEYS-----", 1)
	_, err = consolekeys.Parse([]byte(swapped))
	require.ErrorIs(t, err, consolekeys.ErrConflict)
	// A second fingerprint block that differs.
	fp := "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 SHA256:Cbm4CxQnSCD6ifzD3Jm1rk6vPBuwYbnuRAhC5fzJS5c root@evil (ED25519)\n-----END SSH HOST KEY FINGERPRINTS-----\n"
	_, err = consolekeys.Parse([]byte(text + fp))
	require.ErrorIs(t, err, consolekeys.ErrConflict)
	// The same blocks twice (logger's copy and the console's) agree.
	_, err = consolekeys.Parse([]byte(text + text))
	require.NoError(t, err)
}

func TestPrompts(t *testing.T) {
	r, err := consolekeys.Parse(sample(t, "stuck-crypttab.txt"))
	require.NoError(t, err)
	require.NotNil(t, r.Prompt)
	assert.Equal(t, consolekeys.Prompt{Line: "Please enter passphrase for disk data (vol0123456789abcdef0):", Disk: "data"}, *r.Prompt)

	r, err = consolekeys.Parse(sample(t, "stuck-initramfs.txt"))
	require.NoError(t, err)
	require.NotNil(t, r.Prompt)
	assert.Equal(t, "data_crypt", r.Prompt.Disk)

	r, err = consolekeys.Parse([]byte("[    0.000000] Linux version 6.1\nEnter passphrase for /dev/nvme1n1: \n"))
	require.NoError(t, err)
	require.NotNil(t, r.Prompt)
	assert.Equal(t, "/dev/nvme1n1", r.Prompt.Disk)

	// Answered: the boot went on.
	r, err = consolekeys.Parse(sample(t, "recovered-after-prompt.txt"))
	require.NoError(t, err)
	assert.Nil(t, r.Prompt)

	// A prompt of an earlier boot, then a new boot that has not prompted.
	r, err = consolekeys.Parse(append(sample(t, "stuck-crypttab.txt"), "[    0.000000] Linux version 6.1.0-28-cloud-amd64\n[    2.0] nvme nvme1: pci function\n"...))
	require.NoError(t, err)
	assert.Nil(t, r.Prompt)
}

func TestDecode(t *testing.T) {
	raw := sample(t, "al2023-first-boot.txt")
	text, err := consolekeys.Decode(base64.StdEncoding.EncodeToString(raw))
	require.NoError(t, err)
	assert.Equal(t, raw, text)
	_, err = consolekeys.Decode("not base64!")
	require.ErrorIs(t, err, consolekeys.ErrMalformed)
	_, err = consolekeys.Decode(strings.Repeat("A", 2*consolekeys.MaxOutput))
	require.ErrorIs(t, err, consolekeys.ErrMalformed)
}

// Host keys made now by ssh-keygen -A, printed as cloud-init's helper prints them (ssh-keygen
// -l for the fingerprints, the .pub files for the keys): Parse agrees with ssh-keygen.
func TestAgainstSSHKeygen(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		testenv.Missing(t, "ssh-keygen", "apt-get install openssh-client")
	}
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/ssh"), 0o755))
	out, err := exec.Command(keygen, "-A", "-f", root).CombinedOutput()
	require.NoError(t, err, "%s", out)
	pubs, err := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*key.pub"))
	require.NoError(t, err)
	require.NotEmpty(t, pubs)
	var fps, keys strings.Builder
	want := map[string]bool{}
	for _, p := range pubs {
		l, err := exec.Command(keygen, "-l", "-f", p).Output()
		require.NoError(t, err)
		fps.WriteString("ec2: " + string(l))
		k, err := os.ReadFile(p)
		require.NoError(t, err)
		keys.Write(k)
		want[strings.Fields(string(l))[1]] = true
	}
	console := "ec2: #############################################################\nec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n" + fps.String() +
		"ec2: -----END SSH HOST KEY FINGERPRINTS-----\n-----BEGIN SSH HOST KEY KEYS-----\n" + keys.String() + "-----END SSH HOST KEY KEYS-----\n"
	r, err := consolekeys.Parse([]byte(console))
	require.NoError(t, err)
	require.Len(t, r.Keys, len(pubs))
	got := map[string]bool{}
	for _, k := range r.Keys {
		got[ssh.FingerprintSHA256(k)] = true
	}
	assert.Equal(t, want, got)
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := consolekeys.Parse(data)
		if err != nil {
			return
		}
		// Every key reported is one the report trusts, and has a known_hosts line that
		// parses back to it.
		for _, k := range r.Keys {
			ok, err := r.Trusts(k)
			if err != nil || !ok {
				t.Fatalf("key %s not trusted by its own report: %v", ssh.FingerprintSHA256(k), err)
			}
		}
		if len(r.Keys) > 0 {
			lines, err := r.KnownHostsLines("h")
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range lines {
				_, _, k, _, _, err := ssh.ParseKnownHosts([]byte(l))
				if err != nil || string(k.Marshal()) != string(r.Keys[i].Marshal()) {
					t.Fatalf("known_hosts line %q: %v", l, err)
				}
			}
		}
		if r.Prompt != nil && r.Prompt.Disk == "" {
			t.Fatalf("prompt without a disk: %+v", r.Prompt)
		}
	})
}

// The known prefixes stack (a kernel timestamp before the syslog header); a key line with
// more after its comment is no key line, so its key is not vouched for.
func TestStrictLines(t *testing.T) {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(string(sample(t, "debian12-first-boot.txt")), "\n"), "\n") {
		b.WriteString("[   25.602130] " + l + "\n")
	}
	r, err := consolekeys.Parse([]byte(b.String()))
	require.NoError(t, err)
	require.Len(t, r.Keys, 3)
	require.Len(t, r.Fingerprints, 3)

	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(r.Keys[1])))
	for _, l := range []string{key + " root@host and more", "x " + key, "ec2: ec2: " + key, "<14>ec2: " + key + " root@h"} {
		r, err := consolekeys.Parse([]byte("-----BEGIN SSH HOST KEY KEYS-----\n" + l + "\n-----END SSH HOST KEY KEYS-----\n"))
		require.NoError(t, err)
		want := 0
		if strings.HasPrefix(l, "<14>") {
			want = 1
		}
		assert.Len(t, r.Keys, want, "%q", l)
	}
}
