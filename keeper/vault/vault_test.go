package vault_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/plugin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/keeper/vault"
)

// pluginName is the test's own age plugin: the test binary itself, run as
// age-plugin-cltest through a link on $PATH, speaking age's real plugin protocol. It wraps
// the file key with an X25519 key carried in the plugin's recipient and identity data, the
// way a hardware-key plugin wraps it with a key on the token.
const pluginName = "cltest"

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "age-plugin-"+pluginName {
		os.Exit(pluginMain())
	}
	os.Exit(m.Run())
}

func pluginMain() int {
	p, err := plugin.New(pluginName)
	if err != nil {
		return 1
	}
	p.HandleRecipient(func(data []byte) (age.Recipient, error) {
		return age.ParseX25519Recipient(string(data))
	})
	p.HandleIdentity(func(data []byte) (age.Identity, error) {
		return age.ParseX25519Identity(strings.ToUpper(string(data)))
	})
	return p.Main()
}

// installPlugin puts age-plugin-cltest on $PATH and returns a plugin recipient and identity
// line for a fresh key.
func installPlugin(t *testing.T) (recipient, identity string) {
	t.Helper()
	dir := t.TempDir()
	exe, err := os.Executable()
	require.NoError(t, err)
	require.NoError(t, os.Symlink(exe, filepath.Join(dir, "age-plugin-"+pluginName)))
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	k, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	return plugin.EncodeRecipient(pluginName, []byte(k.Recipient().String())),
		plugin.EncodeIdentity(pluginName, []byte(strings.ToLower(k.String())))
}

// fast is a small scrypt work factor, so the tests take milliseconds, not seconds.
var fast = vault.Options{WorkFactor: 10}

const (
	vol1  = "vol-0123456789abcdef0"
	vol2  = "vol-0fedcba9876543210"
	uuid1 = "6e0a6d4c-9c1b-4c3e-8a5d-1f2e3d4c5b6a"
	uuid2 = "11111111-2222-4333-8444-555555555555"
)

// secret is a passphrase that no encoder produces by accident, for searching files.
var secret = []byte("correct horse battery staple 9f1c")

func TestRoundTripPassphrase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.age")
	v, err := vault.Create(path, []byte("vault pass"), fast)
	require.NoError(t, err)
	require.NoError(t, v.Add(vault.Entry{VolumeID: vol2, LUKSUUID: uuid2, Label: "web-2/data"}, []byte("second")))
	require.NoError(t, v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1, Label: "web-1/data"}, secret))
	require.NoError(t, v.Close())
	_, err = v.Passphrase(vol1)
	require.ErrorIs(t, err, vault.ErrClosed)

	v, err = vault.Open(path, []byte("vault pass"), fast)
	require.NoError(t, err)
	defer v.Close()
	assert.Equal(t, []vault.Entry{
		{VolumeID: vol1, LUKSUUID: uuid1, Label: "web-1/data"},
		{VolumeID: vol2, LUKSUUID: uuid2, Label: "web-2/data"},
	}, v.List())
	p, err := v.Passphrase(vol1)
	require.NoError(t, err)
	assert.Equal(t, secret, p)
	// A copy: the caller's zeroing leaves the vault's intact.
	clear(p)
	p, err = v.Passphrase(vol1)
	require.NoError(t, err)
	assert.Equal(t, secret, p)

	require.ErrorIs(t, v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, []byte("x")), vault.ErrExists)
	require.NoError(t, v.Remove(vol2))
	require.ErrorIs(t, v.Remove(vol2), vault.ErrNotFound)
	_, err = v.Passphrase(vol2)
	require.ErrorIs(t, err, vault.ErrNotFound)
	assert.Contains(t, err.Error(), vol2)

	v2, err := vault.Open(path, []byte("vault pass"), fast)
	require.NoError(t, err)
	defer v2.Close()
	assert.Equal(t, []vault.Entry{{VolumeID: vol1, LUKSUUID: uuid1, Label: "web-1/data"}}, v2.List())
}

func TestRoundTripIdentities(t *testing.T) {
	dir := t.TempDir()
	main, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	backup, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	path := filepath.Join(dir, "vault.age")
	v, err := vault.CreateForRecipients(path, []string{main.Recipient().String(), backup.Recipient().String()}, fast)
	require.NoError(t, err)
	require.NoError(t, v.Close())

	// Opened with the main key, written, then opened with the backup: the write kept both.
	ids, err := vault.ParseIdentities(strings.NewReader("# created: today\n\n"+main.String()+"\n"), nil)
	require.NoError(t, err)
	// The main key alone does not know the backup: the write is refused until the operator
	// names both (the file's own list is never trusted), then it keeps both.
	v, err = vault.OpenWithIdentities(path, ids, fast)
	require.NoError(t, err)
	require.ErrorIs(t, v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, secret), vault.ErrRecipients)
	v.Close()
	both := fast
	both.Recipients = []string{main.Recipient().String(), backup.Recipient().String()}
	v, err = vault.OpenWithIdentities(path, ids, both)
	require.NoError(t, err)
	require.NoError(t, v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, secret))
	v.Close()
	v, err = vault.OpenWithIdentities(path, []age.Identity{backup}, fast)
	require.NoError(t, err)
	defer v.Close()
	p, err := v.Passphrase(vol1)
	require.NoError(t, err)
	assert.Equal(t, secret, p)

	// A passphrase does not open a recipient vault, and an identity does not open a
	// passphrase vault.
	_, err = vault.Open(path, []byte("guess"), fast)
	require.ErrorIs(t, err, vault.ErrWrongKey)
	ppath := filepath.Join(dir, "pass.age")
	pv, err := vault.Create(ppath, []byte("pw"), fast)
	require.NoError(t, err)
	pv.Close()
	_, err = vault.OpenWithIdentities(ppath, []age.Identity{main}, fast)
	require.ErrorIs(t, err, vault.ErrWrongKey)
}

func TestPluginIdentity(t *testing.T) {
	recipient, identity := installPlugin(t)
	path := filepath.Join(t.TempDir(), "vault.age")
	v, err := vault.CreateForRecipients(path, []string{recipient}, fast)
	require.NoError(t, err)
	require.NoError(t, v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, secret))
	v.Close()
	ids, err := vault.ParseIdentities(strings.NewReader(identity+"\n"), nil)
	require.NoError(t, err)
	require.Len(t, ids, 1)
	_, isPlugin := ids[0].(*plugin.Identity)
	require.True(t, isPlugin, "%T", ids[0])
	v, err = vault.OpenWithIdentities(path, ids, fast)
	require.NoError(t, err)
	defer v.Close()
	p, err := v.Passphrase(vol1)
	require.NoError(t, err)
	assert.Equal(t, secret, p)

	// Another token (another key in the plugin's identity) is the wrong key.
	_, other := installPlugin(t)
	ids, err = vault.ParseIdentities(strings.NewReader(other), nil)
	require.NoError(t, err)
	_, err = vault.OpenWithIdentities(path, ids, fast)
	require.ErrorIs(t, err, vault.ErrWrongKey)
}

func TestWrongKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.age")
	v, err := vault.Create(path, []byte("right"), fast)
	require.NoError(t, err)
	v.Close()
	_, err = vault.Open(path, []byte("wrong"), fast)
	require.ErrorIs(t, err, vault.ErrWrongKey)
	assert.Contains(t, err.Error(), path)

	x, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	rpath := filepath.Join(t.TempDir(), "r.age")
	v, err = vault.CreateForRecipients(rpath, []string{x.Recipient().String()}, fast)
	require.NoError(t, err)
	v.Close()
	y, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	_, err = vault.OpenWithIdentities(rpath, []age.Identity{y}, fast)
	require.ErrorIs(t, err, vault.ErrWrongKey)
}

func TestWorkFactorLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.age")
	v, err := vault.Create(path, []byte("pw"), vault.Options{WorkFactor: 12})
	require.NoError(t, err)
	v.Close()
	_, err = vault.Open(path, []byte("pw"), vault.Options{MaxWorkFactor: 11})
	require.ErrorIs(t, err, vault.ErrWorkFactor)
	v, err = vault.Open(path, []byte("pw"), vault.Options{MaxWorkFactor: 12})
	require.NoError(t, err)
	// A rewrite keeps the file's work factor unless told otherwise.
	require.NoError(t, v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, secret))
	v.Close()
	v, err = vault.Open(path, []byte("pw"), vault.Options{MaxWorkFactor: 12})
	require.NoError(t, err, "still 2^12 after the rewrite, not age's default 2^18")
	v.Close()

	_, err = vault.Create(filepath.Join(t.TempDir(), "x"), []byte("pw"), vault.Options{WorkFactor: 31})
	require.ErrorIs(t, err, vault.ErrInvalid)
}

func TestCorrupted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.age")
	v, err := vault.Create(path, []byte("pw"), fast)
	require.NoError(t, err)
	require.NoError(t, v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, secret))
	v.Close()
	good, err := os.ReadFile(path)
	require.NoError(t, err)

	for name, data := range map[string][]byte{
		"empty":         {},
		"not age":       []byte("hello\n"),
		"truncated":     good[:len(good)-5],
		"flipped byte":  flip(good, len(good)-20),
		"flipped mac":   flip(good, bytes.Index(good, []byte("\n---"))+6),
		"appended junk": append(bytes.Clone(good), "junk"...),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			require.NoError(t, os.WriteFile(p, data, 0o600))
			_, err := vault.Open(p, []byte("pw"), fast)
			require.ErrorIs(t, err, vault.ErrCorrupt)
			assert.NotContains(t, err.Error(), string(secret))
		})
	}

	t.Run("age file but not a vault", func(t *testing.T) {
		p := filepath.Join(dir, "plain.age")
		r, err := age.NewScryptRecipient("pw")
		require.NoError(t, err)
		r.SetWorkFactor(10)
		var buf bytes.Buffer
		w, err := age.Encrypt(&buf, r)
		require.NoError(t, err)
		w.Write([]byte("cloudluks-vault 1\nentry vol-0123456789abcdef0 " + uuid1 + " AA== " + base64.StdEncoding.EncodeToString(secret) + "\n"))
		w.Close()
		require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o600))
		_, err = vault.Open(p, []byte("pw"), fast)
		require.ErrorIs(t, err, vault.ErrCorrupt)
		assert.Contains(t, err.Error(), "line 2")
		assert.NotContains(t, err.Error(), string(secret))
	})

	t.Run("too large", func(t *testing.T) {
		p := filepath.Join(dir, "big")
		require.NoError(t, os.WriteFile(p, make([]byte, vault.MaxFileSize+1), 0o600))
		_, err := vault.Open(p, []byte("pw"), fast)
		require.ErrorIs(t, err, vault.ErrTooLarge)
	})

	t.Run("missing", func(t *testing.T) {
		_, err := vault.Open(filepath.Join(dir, "nope"), []byte("pw"), fast)
		require.ErrorIs(t, err, vault.ErrNotFound)
	})
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 1
	return b
}

func TestNoSecretInFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.age")
	v, err := vault.Create(path, []byte("the vault passphrase"), fast)
	require.NoError(t, err)
	defer v.Close()
	require.NoError(t, v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1, Label: "web"}, secret))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, s := range [][]byte{secret, []byte("the vault passphrase"), []byte(base64.StdEncoding.EncodeToString(secret)), []byte(vol1), []byte(uuid1)} {
		assert.False(t, bytes.Contains(data, s), "%q in the vault file", s)
	}
	// Nothing else was left in the directory (no temporary file), but the writers' lock.
	names, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, names, 2)
	assert.Equal(t, "vault.age.lock", names[1].Name())
}

func TestFileMode(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "vault.age")
	v, err := vault.Create(path, []byte("pw"), fast)
	require.NoError(t, err)
	defer v.Close()
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	// A rewrite replaces the file (a new inode) and keeps it 0600.
	require.NoError(t, os.Chmod(path, 0o644))
	require.NoError(t, v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, secret))
	st, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestValidation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.age")
	v, err := vault.Create(path, []byte("pw"), fast)
	require.NoError(t, err)
	defer v.Close()
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	for name, c := range map[string]struct {
		e    vault.Entry
		pass []byte
		want error
	}{
		"volume ID":       {vault.Entry{VolumeID: "vol-xyz", LUKSUUID: uuid1}, secret, vault.ErrInvalid},
		"instance ID":     {vault.Entry{VolumeID: "i-0123456789abcdef0", LUKSUUID: uuid1}, secret, vault.ErrInvalid},
		"UUID":            {vault.Entry{VolumeID: vol1, LUKSUUID: "not-a-uuid"}, secret, vault.ErrInvalid},
		"label control":   {vault.Entry{VolumeID: vol1, LUKSUUID: uuid1, Label: "a\nb"}, secret, vault.ErrInvalid},
		"label long":      {vault.Entry{VolumeID: vol1, LUKSUUID: uuid1, Label: strings.Repeat("a", vault.MaxLabel+1)}, secret, vault.ErrTooLarge},
		"empty pass":      {vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, nil, vault.ErrInvalid},
		"pass too long":   {vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, make([]byte, vault.MaxPassphrase+1), vault.ErrTooLarge},
		"short volume ID": {vault.Entry{VolumeID: "vol-0123456", LUKSUUID: uuid1}, secret, vault.ErrInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, v.Add(c.e, c.pass), c.want)
		})
	}
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after, "a refused Add does not rewrite the file")
	require.NoError(t, v.Add(vault.Entry{VolumeID: "vol-01234567", LUKSUUID: uuid1}, secret), "old 8-digit IDs are valid")

	_, err = vault.Create(path, []byte("pw"), fast)
	require.ErrorIs(t, err, vault.ErrExists)
	_, err = vault.CreateForRecipients(filepath.Join(t.TempDir(), "v"), []string{"age1nope"}, fast)
	require.ErrorIs(t, err, vault.ErrInvalid)
	_, err = vault.ParseIdentities(strings.NewReader("AGE-SECRET-KEY-1BOGUS\n"), nil)
	require.ErrorIs(t, err, vault.ErrInvalid)
	assert.NotContains(t, err.Error(), "BOGUS", "an identity line is never quoted")
}

// The file is a plain age file: age's own Decrypt reads it with the identity, so the operator
// can recover the passphrases with age(1) when the keeper is gone.
func TestPlainAgeFile(t *testing.T) {
	x, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "vault.age")
	v, err := vault.CreateForRecipients(path, []string{x.Recipient().String()}, fast)
	require.NoError(t, err)
	require.NoError(t, v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1, Label: "web"}, secret))
	v.Close()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r, err := age.Decrypt(f, x)
	require.NoError(t, err)
	var out bytes.Buffer
	_, err = out.ReadFrom(r)
	require.NoError(t, err)
	assert.Equal(t, "cloudluks-vault 1\nrecipient "+x.Recipient().String()+"\nentry "+vol1+" "+uuid1+" d2Vi "+base64.StdEncoding.EncodeToString(secret)+"\n", out.String())
}

// A running keeper's vault sees another writer's Add and Remove after Reload; an unchanged
// file is not decrypted again.
func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.age")
	v, err := vault.Create(path, []byte("pw"), fast)
	require.NoError(t, err)
	require.NoError(t, v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, secret))
	long, err := vault.Open(path, []byte("pw"), fast)
	require.NoError(t, err)
	defer long.Close()
	require.NoError(t, v.Remove(vol1))
	require.NoError(t, v.Add(vault.Entry{VolumeID: vol2, LUKSUUID: uuid2}, secret))
	v.Close()
	_, err = long.Passphrase(vol1)
	require.NoError(t, err, "a snapshot until Reload")
	require.NoError(t, long.Reload())
	_, err = long.Passphrase(vol1)
	require.ErrorIs(t, err, vault.ErrNotFound)
	p, err := long.Passphrase(vol2)
	require.NoError(t, err)
	assert.Equal(t, secret, p)
	require.NoError(t, long.Reload())
}

// The default limit keeps scrypt's memory at 1 GiB: a file asking for 2^21 is refused
// before any scrypt work, and no vault is made that its own options would not open.
func TestDefaultWorkFactorLimit(t *testing.T) {
	require.Equal(t, 20, vault.DefaultMaxWorkFactor)
	dir := t.TempDir()
	path := filepath.Join(dir, "v.age")
	v, err := vault.Create(path, []byte("pw"), fast)
	require.NoError(t, err)
	v.Close()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	// The stanza's last field is the work factor: make it 21, as a hostile file would.
	hostile := bytes.Replace(data, []byte(" 10\n"), []byte(" 21\n"), 1)
	require.NotEqual(t, data, hostile)
	require.NoError(t, os.WriteFile(path, hostile, 0o600))
	start := time.Now()
	_, err = vault.Open(path, []byte("pw"), vault.Options{})
	require.ErrorIs(t, err, vault.ErrWorkFactor)
	assert.Less(t, time.Since(start), time.Second, "refused before scrypt")
	_, err = vault.Create(filepath.Join(dir, "w.age"), []byte("pw"), vault.Options{WorkFactor: 21})
	require.ErrorIs(t, err, vault.ErrInvalid)
}
