// Package vault keeps the keeper's LUKS passphrases in one age-encrypted file
// (age-encryption.org/v1, filippo.io/age) at the operator's site, so that a stolen disk of the
// keeper, while it is off, gives away nothing.
//
// # Keys of the vault
//
// A vault is encrypted either to a passphrase (age's scrypt recipient) or to one or more
// recipients: native X25519 keys ("age1…", with the identity file "AGE-SECRET-KEY-1…") and
// plugin recipients for hardware keys ("age1yubikey1…", identity "AGE-PLUGIN-YUBIKEY-1…",
// run through the age-plugin-NAME program on $PATH, as age(1) does). Create makes a vault,
// Open reads one; ParseIdentities reads an identity file of either kind.
//
// # Recipients come from the operator, never from the file
//
// age's X25519 recipients do not authenticate the sender: anyone who can write the vault
// file and knows a recipient (public) can put there a vault of their own, encrypted to the
// operator, that decrypts fine. So the recipients every write is encrypted to are never
// read from the file: they are Options.Recipients (the keeper's configuration, --recipient),
// else the recipients of the X25519 and hybrid identities that opened the vault, and the
// latter only when they are exactly the set the file says it was last written to. Otherwise
// (a plugin identity, a backup key the opener does not hold, a planted list) Add and Remove
// fail with ErrRecipients and nothing is written. The file still lists the recipients it
// was written to, for FileRecipients and `keeper vault list` to show; that list is
// unauthenticated and only ever compared.
//
// Reading a file is bounded: at most MaxFileSize bytes, and a passphrase-encrypted file whose
// scrypt work factor exceeds Options.MaxWorkFactor (default 2^20) is refused with
// ErrWorkFactor before any scrypt work, so a hostile file can neither pin the CPU nor make
// the keeper allocate scrypt's 128·8·2^N bytes: 1 GiB at 2^20 (age's own limit, 2^22, is
// 4 GiB). A vault made with a work factor above the limit is refused by Create.
//
// # Entries
//
// An entry is keyed by its EBS volume ID and holds the LUKS UUID of the header on that volume
// (the keeper checks it against the header the instance reports), a free label and the
// passphrase. List returns entries without their passphrases; Passphrase returns a copy that
// the caller zeroes. Add and Remove rewrite the file atomically: a temporary file beside it,
// mode 0600, fsync, rename, fsync of the directory; a crash leaves the old or the new vault.
//
// # Several writers
//
// Two `keeper vault add` at once, or an add next to a remove, must not lose an entry nor
// bring a removed one back. Every write takes an exclusive flock(2) on "VAULT.lock" beside
// the vault (created mode 0600 and left in place: removing a lock file races with its next
// user), re-reads the file under the lock with the key that opened it (the passphrase's
// scrypt runs again, a plugin identity is asked again), applies the one change to what it
// read, writes and unlocks. A writer waits at most LockTimeout, then fails with ErrLocked.
// Create links its first file into place with link(2), so of two Create on one path exactly
// one succeeds and the other gets ErrExists. The entries of an open vault are a snapshot:
// after another writer's change Add and Remove see the file, List and Passphrase the
// snapshot until the vault is opened again.
//
// # Secrets in memory
//
// What this package owns it clears: the decrypted payload is read into one buffer, parsed
// in place and zeroed; the payload built for a write is zeroed after it; the passphrases are
// held as []byte and zeroed by Close (and, for entries replaced by a re-read, at once).
//
// What age owns it does not, and cannot: age's stream reader and writer hold the plaintext
// in their own chunk buffers (up to 64 KiB each, so the whole payload of a small vault) and
// its scrypt recipient and identity keep their own copy of the vault passphrase; identity
// files are parsed by age from strings, so a secret key read by ParseIdentities has
// immutable copies too. These are built for one decryption or encryption and dropped at
// once, and stay in the process's memory until the garbage collector reuses it. The
// keeper's own defence for them is its machine's: no swap to disk, no core dumps.
package vault

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unsafe"

	"filippo.io/age"
	"filippo.io/age/plugin"
)

// Limits of what a vault holds and reads.
const (
	// MaxFileSize bounds the encrypted file read by Open and written by Add.
	MaxFileSize = 4 << 20
	// MaxPassphrase bounds one entry's passphrase (cryptsetup reads key files up to 8 MiB,
	// but a vault of thousands of volumes must stay small).
	MaxPassphrase = 8192
	// MaxLabel bounds an entry's label.
	MaxLabel = 256
	// DefaultWorkFactor is the scrypt work factor (log2 N) of a new passphrase vault: age's
	// default, about one second.
	DefaultWorkFactor = 18
	// DefaultMaxWorkFactor is the highest scrypt work factor Open accepts unless told
	// otherwise: 2^20, 1 GiB of scrypt memory and about 4 seconds (age's own, 2^22, needs
	// 4 GiB).
	DefaultMaxWorkFactor = 20
	// LockTimeout bounds how long a write waits for another writer's lock.
	LockTimeout = 30 * time.Second
)

// Errors of the package, for errors.Is. Every error returned wraps one of them with the file
// or the volume it is about.
var (
	// ErrWrongKey: the passphrase or none of the identities opens the file.
	ErrWrongKey = errors.New("no key available with this passphrase or identity")
	// ErrCorrupt: the file is not an age file, fails its authentication, or its payload is
	// not a vault.
	ErrCorrupt = errors.New("vault file is corrupted")
	// ErrTooLarge: the file, a passphrase or a label exceeds its limit.
	ErrTooLarge = errors.New("too large")
	// ErrWorkFactor: the file's scrypt work factor is above Options.MaxWorkFactor.
	ErrWorkFactor = errors.New("scrypt work factor too large")
	// ErrNotFound: no such vault file, or no entry for the volume.
	ErrNotFound = errors.New("not found")
	// ErrExists: the vault file or an entry for the volume already exists.
	ErrExists = errors.New("already exists")
	// ErrInvalid: a bad argument (volume ID, UUID, label, empty passphrase, no recipient).
	ErrInvalid = errors.New("invalid argument")
	// ErrClosed: the vault was closed.
	ErrClosed = errors.New("vault is closed")
	// ErrRecipients: a write to a recipient vault whose recipients the caller has not given
	// and cannot be derived from the identities that opened it (see the package doc).
	ErrRecipients = errors.New("recipients of the vault not known")
	// ErrChanged: a vault made by CreateForRecipients (which holds no identity to re-read
	// it) was changed by another writer since; open it with an identity.
	ErrChanged = errors.New("vault changed by another writer")
	// ErrLocked: another writer held the vault's lock for longer than LockTimeout.
	ErrLocked = errors.New("vault is locked by another writer")
)

// Options tune the work factor. The zero value is age's defaults.
type Options struct {
	// WorkFactor is the scrypt log2 N of the files Create and later writes make for a
	// passphrase vault (1..30); 0 means DefaultWorkFactor for a new vault and, for one
	// opened, the work factor the file already has. Tests use a small one.
	WorkFactor int
	// MaxWorkFactor is the highest scrypt log2 N Open accepts (1..30); 0 means
	// DefaultMaxWorkFactor.
	MaxWorkFactor int
	// Recipients are the recipients every write of a recipient vault is encrypted to, from
	// the operator's configuration; see the package doc for what happens without them.
	// Ignored by a passphrase vault and by CreateForRecipients, which takes its own.
	Recipients []string
	// PluginUI is how age plugins (hardware keys) talk to the operator while encrypting:
	// messages, PIN requests, touch confirmations. Nil means age's terminal prompts on stderr.
	PluginUI *plugin.ClientUI
}

func (o Options) ui() *plugin.ClientUI {
	if o.PluginUI != nil {
		return o.PluginUI
	}
	return terminalUI()
}

func terminalUI() *plugin.ClientUI {
	return plugin.NewTerminalUI(func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) },
		func(f string, a ...any) { fmt.Fprintf(os.Stderr, "warning: "+f+"\n", a...) })
}

func (o Options) workFactor() (int, int, error) {
	wf, max := o.WorkFactor, o.MaxWorkFactor
	if wf == 0 {
		wf = DefaultWorkFactor
	}
	if max == 0 {
		max = DefaultMaxWorkFactor
	}
	if wf < 1 || wf > 30 || max < 1 || max > 30 {
		return 0, 0, fmt.Errorf("%w: scrypt work factor %d, limit %d: want 1..30", ErrInvalid, wf, max)
	}
	if o.WorkFactor != 0 && wf > max {
		// A file this package writes must open with the same options.
		return 0, 0, fmt.Errorf("%w: scrypt work factor %d above the limit %d", ErrInvalid, wf, max)
	}
	return wf, max, nil
}

// Entry is what List shows of one vault entry: everything but the passphrase.
type Entry struct {
	VolumeID string `json:"volume_id"`
	LUKSUUID string `json:"luks_uuid"`
	Label    string `json:"label,omitempty"`
}

type entry struct {
	Entry
	pass []byte
}

// Vault is an open vault file. Its methods are safe for concurrent use.
type Vault struct {
	mu         sync.Mutex
	path       string
	opts       Options
	pass       []byte         // the vault passphrase, for a passphrase vault
	fileWork   int            // the scrypt work factor of the file opened, kept on rewrites
	ids        []age.Identity // for a recipient vault: what opened it, to re-read it
	recipients []string       // for a recipient vault: what writes are encrypted to
	fileRecip  []string       // the recipients the file lists: unauthenticated, only compared
	recipErr   error          // why writes are refused (ErrRecipients), or nil
	written    [32]byte       // SHA-256 of the file last read or written
	entries    []entry        // sorted by volume ID
	closed     bool
}

// Create makes a new, empty vault file at path encrypted to the passphrase pass (which is
// copied; the caller zeroes its own). It refuses an existing file (ErrExists).
func Create(path string, pass []byte, opts Options) (*Vault, error) {
	if len(pass) == 0 {
		return nil, fmt.Errorf("%s: %w: empty passphrase", path, ErrInvalid)
	}
	v := &Vault{path: path, opts: opts, pass: slices.Clone(pass)}
	return v.create()
}

// CreateForRecipients makes a new, empty vault file at path encrypted to recipients: "age1…"
// X25519 keys, hybrid post-quantum keys, or plugin recipients ("age1yubikey1…", whose plugin
// must be on $PATH at every write). It refuses an existing file (ErrExists).
func CreateForRecipients(path string, recipients []string, opts Options) (*Vault, error) {
	if len(recipients) == 0 {
		return nil, fmt.Errorf("%s: %w: no recipient", path, ErrInvalid)
	}
	for _, r := range recipients {
		if _, err := parseRecipient(r, opts.ui()); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	v := &Vault{path: path, opts: opts, recipients: slices.Clone(recipients), fileRecip: slices.Clone(recipients)}
	return v.create()
}

func (v *Vault) create() (*Vault, error) {
	if _, _, err := v.opts.workFactor(); err != nil {
		v.Close()
		return nil, err
	}
	if _, err := os.Lstat(v.path); err == nil {
		v.Close()
		return nil, fmt.Errorf("%s: %w", v.path, ErrExists)
	}
	unlock, err := lock(v.path)
	if err != nil {
		v.Close()
		return nil, err
	}
	defer unlock()
	if err := v.write(true); err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

// Open reads the vault at path with its passphrase (copied, and kept until Close for the
// writes of Add and Remove).
func Open(path string, pass []byte, opts Options) (*Vault, error) {
	if len(pass) == 0 {
		return nil, fmt.Errorf("%s: %w: empty passphrase", path, ErrInvalid)
	}
	_, max, err := opts.workFactor()
	if err != nil {
		return nil, err
	}
	v := &Vault{path: path, opts: opts, pass: slices.Clone(pass)}
	id, err := age.NewScryptIdentity(unsafeString(v.pass))
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("%s: %w: %v", path, ErrInvalid, err)
	}
	id.SetMaxWorkFactor(max)
	if err := v.load(max, id); err != nil {
		v.Close()
		return nil, err
	}
	if len(v.fileRecip) > 0 {
		// A recipient vault cannot be opened with a passphrase: age refuses it already, this
		// is only belt and braces.
		v.Close()
		return nil, fmt.Errorf("%s: %w", path, ErrWrongKey)
	}
	return v, nil
}

// OpenWithIdentities reads the vault at path with identities (see ParseIdentities).
func OpenWithIdentities(path string, identities []age.Identity, opts Options) (*Vault, error) {
	if len(identities) == 0 {
		return nil, fmt.Errorf("%s: %w: no identity", path, ErrInvalid)
	}
	_, max, err := opts.workFactor()
	if err != nil {
		return nil, err
	}
	for _, r := range opts.Recipients {
		if _, err := parseRecipient(r, opts.ui()); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	v := &Vault{path: path, opts: opts, ids: slices.Clone(identities)}
	if err := v.load(max, identities...); err != nil {
		return nil, err
	}
	if len(v.fileRecip) == 0 {
		v.Close()
		return nil, fmt.Errorf("%s: %w: a passphrase vault", path, ErrWrongKey)
	}
	v.recipients, v.recipErr = writeRecipients(opts.Recipients, identities, v.fileRecip)
	if v.recipErr != nil {
		v.recipErr = fmt.Errorf("%s: %w", path, v.recipErr)
	}
	return v, nil
}

// writeRecipients decides what writes are encrypted to: the configured recipients, else the
// opening identities' own, if they are the file's whole set.
func writeRecipients(configured []string, ids []age.Identity, file []string) ([]string, error) {
	if len(configured) > 0 {
		return slices.Clone(configured), nil
	}
	var own []string
	for _, id := range ids {
		switch id := id.(type) {
		case *age.X25519Identity:
			own = append(own, id.Recipient().String())
		case *age.HybridIdentity:
			own = append(own, id.Recipient().String())
		default:
			return nil, fmt.Errorf("%w: a plugin identity does not tell its recipient: give the vault's recipients", ErrRecipients)
		}
	}
	if !sameSet(own, file) {
		return nil, fmt.Errorf("%w: the file lists %d recipient(s) other than the identity's own, unauthenticated: give the vault's recipients", ErrRecipients, len(setMinus(file, own)))
	}
	return own, nil
}

func sameSet(a, b []string) bool { return len(setMinus(a, b)) == 0 && len(setMinus(b, a)) == 0 }

func setMinus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Recipients are what the vault's writes are encrypted to (nil for a passphrase vault, or
// when writes are refused with ErrRecipients).
func (v *Vault) Recipients() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.recipients)
}

// FileRecipients are the recipients the file says it was last written to. Anyone who can
// write the file can change this list: compare it with Recipients, never encrypt to it.
func (v *Vault) FileRecipients() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.fileRecip)
}

// ParseIdentities reads an identity file: "AGE-SECRET-KEY-1…" (X25519), hybrid
// "AGE-SECRET-KEY-PQ-1…" and "AGE-PLUGIN-NAME-1…" lines (hardware keys, run through
// age-plugin-NAME, which talks to the operator through ui; nil ui means age's terminal
// prompts on stderr). Empty lines and lines starting with '#' are skipped, as in age(1).
func ParseIdentities(r io.Reader, ui *plugin.ClientUI) ([]age.Identity, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return nil, err
	}
	defer clear(data)
	if len(data) > 1<<20 {
		return nil, fmt.Errorf("identity file: %w", ErrTooLarge)
	}
	if ui == nil {
		ui = terminalUI()
	}
	var ids []age.Identity
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var id age.Identity
		switch {
		case strings.HasPrefix(line, "AGE-PLUGIN-"):
			id, err = plugin.NewIdentity(line, ui)
		default:
			var parsed []age.Identity
			parsed, err = age.ParseIdentities(strings.NewReader(line))
			if err == nil {
				id = parsed[0]
			}
		}
		if err != nil {
			// The line is a secret key: never quote it.
			return nil, fmt.Errorf("identity file line %d: %w: not an age identity", n+1, ErrInvalid)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("identity file: %w: no identity", ErrInvalid)
	}
	return ids, nil
}

func parseRecipient(s string, ui *plugin.ClientUI) (age.Recipient, error) {
	if r, err := age.ParseX25519Recipient(s); err == nil {
		return r, nil
	}
	if r, err := age.ParseHybridRecipient(s); err == nil {
		return r, nil
	}
	if strings.HasPrefix(s, "age1") && strings.Count(s, "1") >= 2 {
		if r, err := plugin.NewRecipient(s, ui); err == nil {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: recipient %q: not an age recipient", ErrInvalid, s)
}

// Path is the vault file.
func (v *Vault) Path() string { return v.path }

// List returns the entries sorted by volume ID, without passphrases.
func (v *Vault) List() []Entry {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]Entry, 0, len(v.entries))
	for _, e := range v.entries {
		out = append(out, e.Entry)
	}
	return out
}

// Lookup returns the entry of volumeID, without its passphrase.
func (v *Vault) Lookup(volumeID string) (Entry, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return Entry{}, ErrClosed
	}
	i, ok := v.find(volumeID)
	if !ok {
		return Entry{}, fmt.Errorf("%s: %w in vault %s", volumeID, ErrNotFound, v.path)
	}
	return v.entries[i].Entry, nil
}

// Passphrase returns a copy of the passphrase of volumeID, which the caller zeroes. It is the
// keeper's Secrets interface.
func (v *Vault) Passphrase(volumeID string) ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil, ErrClosed
	}
	i, ok := v.find(volumeID)
	if !ok {
		return nil, fmt.Errorf("%s: %w in vault %s", volumeID, ErrNotFound, v.path)
	}
	return slices.Clone(v.entries[i].pass), nil
}

// Add stores the passphrase of a volume (copied; the caller zeroes its own) and rewrites the
// file. An entry for the volume already there is ErrExists: Remove it first.
func (v *Vault) Add(e Entry, pass []byte) error {
	if err := validate(e, pass); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	unlock, err := v.beginWrite()
	if err != nil {
		return err
	}
	defer unlock()
	i, ok := v.find(e.VolumeID)
	if ok {
		return fmt.Errorf("%s: %w in vault %s", e.VolumeID, ErrExists, v.path)
	}
	v.entries = slices.Insert(v.entries, i, entry{Entry: e, pass: slices.Clone(pass)})
	if err := v.write(false); err != nil {
		clear(v.entries[i].pass)
		v.entries = slices.Delete(v.entries, i, i+1)
		return err
	}
	return nil
}

// beginWrite takes the writers' lock and replaces the entries with the file's, so the one
// change of Add or Remove applies to what is there now.
func (v *Vault) beginWrite() (func(), error) {
	if v.closed {
		return nil, ErrClosed
	}
	if v.recipErr != nil {
		return nil, v.recipErr
	}
	unlock, err := lock(v.path)
	if err != nil {
		return nil, err
	}
	if err := v.reload(); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// reload re-reads the file with the key that opened the vault.
func (v *Vault) reload() error {
	_, max, err := v.opts.workFactor()
	if err != nil {
		return err
	}
	if v.pass == nil && len(v.ids) == 0 {
		// Made by CreateForRecipients: nothing here decrypts it, but it may still be
		// written if it is the file this Vault wrote last.
		data, err := os.ReadFile(v.path)
		if err != nil || sha256.Sum256(data) != v.written {
			return fmt.Errorf("%s: %w since it was created: open it with an identity", v.path, ErrChanged)
		}
		return nil
	}
	fresh := &Vault{path: v.path, opts: v.opts}
	var ids []age.Identity
	if v.pass != nil {
		id, err := age.NewScryptIdentity(unsafeString(v.pass))
		if err != nil {
			return fmt.Errorf("%s: %w: %v", v.path, ErrInvalid, err)
		}
		id.SetMaxWorkFactor(max)
		ids = []age.Identity{id}
	} else {
		ids = v.ids
	}
	if err := fresh.load(max, ids...); err != nil {
		fresh.Close()
		return err
	}
	if (v.pass != nil) != (len(fresh.fileRecip) == 0) {
		fresh.Close()
		return fmt.Errorf("%s: %w: the file changed kind (passphrase or recipients) since it was opened", v.path, ErrCorrupt)
	}
	for i := range v.entries {
		clear(v.entries[i].pass)
	}
	v.entries, fresh.entries = fresh.entries, nil
	v.fileRecip = fresh.fileRecip
	v.written = fresh.written
	if v.opts.WorkFactor == 0 {
		v.fileWork = fresh.fileWork
	}
	return nil
}

// Remove deletes the entry of volumeID and rewrites the file.
func (v *Vault) Remove(volumeID string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	unlock, err := v.beginWrite()
	if err != nil {
		return err
	}
	defer unlock()
	i, ok := v.find(volumeID)
	if !ok {
		return fmt.Errorf("%s: %w in vault %s", volumeID, ErrNotFound, v.path)
	}
	old := v.entries[i]
	v.entries = slices.Delete(v.entries, i, i+1)
	if err := v.write(false); err != nil {
		v.entries = slices.Insert(v.entries, i, old)
		return err
	}
	clear(old.pass)
	return nil
}

// Reload re-reads the file if it changed since this Vault last read or wrote it, so that a
// long-running keeper sees another process's Add and Remove. An unchanged file costs one
// read and a hash; a changed one is decrypted again with the key that opened the vault (the
// scrypt work of a passphrase vault, or the plugin of a hardware key asked again). On error
// the entries held are kept.
func (v *Vault) Reload() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return ErrClosed
	}
	data, err := os.ReadFile(v.path)
	if err != nil {
		return fmt.Errorf("%s: %w", v.path, err)
	}
	if sha256.Sum256(data) == v.written {
		return nil
	}
	return v.reload()
}

// Close zeroes every passphrase held, the vault's own included. Later calls fail with
// ErrClosed; Close itself may be called again.
func (v *Vault) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i := range v.entries {
		clear(v.entries[i].pass)
	}
	v.entries = nil
	clear(v.pass)
	v.pass = nil
	v.ids = nil
	v.closed = true
	return nil
}

func (v *Vault) find(volumeID string) (int, bool) {
	return slices.BinarySearchFunc(v.entries, volumeID, func(e entry, id string) int { return strings.Compare(e.VolumeID, id) })
}

var (
	reVolumeID = regexp.MustCompile(`^vol-([0-9a-f]{8}|[0-9a-f]{17})$`)
	reUUID     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// Validate checks an entry's fields (not its passphrase) as Add does, so that a program can
// refuse a bad volume ID before it asks for anything.
func Validate(e Entry) error { return validate(e, []byte{0}) }

func validate(e Entry, pass []byte) error {
	switch {
	case !reVolumeID.MatchString(e.VolumeID):
		return fmt.Errorf("%w: volume ID %q: want vol- and 8 or 17 hex digits", ErrInvalid, e.VolumeID)
	case !reUUID.MatchString(e.LUKSUUID):
		return fmt.Errorf("%s: %w: LUKS UUID %q: want 8-4-4-4-12 hex digits", e.VolumeID, ErrInvalid, e.LUKSUUID)
	case len(e.Label) > MaxLabel:
		return fmt.Errorf("%s: label: %w (%d bytes, at most %d)", e.VolumeID, ErrTooLarge, len(e.Label), MaxLabel)
	case strings.ContainsFunc(e.Label, unicode.IsControl):
		return fmt.Errorf("%s: %w: label %q has control characters", e.VolumeID, ErrInvalid, e.Label)
	case len(pass) == 0:
		return fmt.Errorf("%s: %w: empty passphrase", e.VolumeID, ErrInvalid)
	case len(pass) > MaxPassphrase:
		return fmt.Errorf("%s: passphrase: %w (at most %d bytes)", e.VolumeID, ErrTooLarge, MaxPassphrase)
	}
	return nil
}

// unsafeString hands age the passphrase without one more copy that could never be cleared.
// age copies it into its own []byte at once and never keeps the string.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// load reads, checks and decrypts the file, and parses its payload.
func (v *Vault) load(maxWorkFactor int, ids ...age.Identity) error {
	f, err := os.Open(v.path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", v.path, ErrNotFound)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return fmt.Errorf("%s: %w", v.path, err)
	}
	if len(data) > MaxFileSize {
		return fmt.Errorf("%s: %w (more than %d bytes)", v.path, ErrTooLarge, MaxFileSize)
	}
	n, err := checkWorkFactor(data, maxWorkFactor)
	if err != nil {
		return fmt.Errorf("%s: %w", v.path, err)
	}
	v.fileWork = n
	v.written = sha256.Sum256(data)
	r, err := age.Decrypt(bytes.NewReader(data), ids...)
	var nomatch *age.NoIdentityMatchError
	switch {
	case errors.As(err, &nomatch):
		return fmt.Errorf("%s: %w", v.path, ErrWrongKey)
	case err != nil:
		return fmt.Errorf("%s: %w: %v", v.path, ErrCorrupt, err)
	}
	plain := make([]byte, 0, len(data))
	defer func() { clear(plain[:cap(plain)]) }()
	for {
		if len(plain) == cap(plain) {
			// The payload is never larger than the ciphertext; more means a broken reader.
			return fmt.Errorf("%s: %w", v.path, ErrCorrupt)
		}
		n, err := r.Read(plain[len(plain):cap(plain)])
		plain = plain[:len(plain)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w: %v", v.path, ErrCorrupt, err)
		}
	}
	if err := v.parse(plain); err != nil {
		return fmt.Errorf("%s: %w: %v", v.path, ErrCorrupt, err)
	}
	return nil
}

// checkWorkFactor reads the scrypt stanza of an age header ("-> scrypt SALT LOGN") and
// refuses a work factor above max before age spends the time on it.
func checkWorkFactor(data []byte, max int) (int, error) {
	hdr := data
	if i := bytes.Index(hdr, []byte("\n---")); i >= 0 {
		hdr = hdr[:i]
	}
	for line := range bytes.SplitSeq(hdr, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) == 4 && f[0] == "->" && f[1] == "scrypt" {
			n, err := strconv.Atoi(f[3])
			if err == nil && n > max {
				return 0, fmt.Errorf("%w: 2^%d, at most 2^%d", ErrWorkFactor, n, max)
			}
			if err == nil && n >= 1 {
				return n, nil
			}
		}
	}
	return 0, nil
}

// The payload is text: a magic line, then one line per recipient and per entry, fields
// separated by one space, free text base64-encoded:
//
//	cloudluks-vault 1
//	recipient age1…
//	entry vol-… UUID base64(label) base64(passphrase)
//
// Text rather than JSON so that the passphrases are decoded straight into buffers this
// package owns and clears, with no copy left behind by a decoder.
const magic = "cloudluks-vault 1"

func (v *Vault) parse(plain []byte) error {
	lines := bytes.Split(plain, []byte("\n"))
	if len(lines) == 0 || string(lines[0]) != magic {
		return errors.New("not a cloudluks vault")
	}
	if len(lines[len(lines)-1]) != 0 {
		return errors.New("truncated")
	}
	for n, line := range lines[1 : len(lines)-1] {
		f := bytes.Split(line, []byte(" "))
		switch {
		case len(f) == 2 && string(f[0]) == "recipient":
			if _, err := parseRecipient(string(f[1]), v.opts.ui()); err != nil {
				return fmt.Errorf("line %d: %v", n+2, err)
			}
			v.fileRecip = append(v.fileRecip, string(f[1]))
		case len(f) == 5 && string(f[0]) == "entry":
			label, err := base64.StdEncoding.DecodeString(string(f[3]))
			if err != nil {
				return fmt.Errorf("line %d: label: %v", n+2, err)
			}
			pass := make([]byte, base64.StdEncoding.DecodedLen(len(f[4])))
			m, err := base64.StdEncoding.Decode(pass, f[4])
			if err != nil {
				clear(pass)
				return fmt.Errorf("line %d: passphrase is not base64", n+2)
			}
			e := entry{Entry: Entry{VolumeID: string(f[1]), LUKSUUID: string(f[2]), Label: string(label)}, pass: pass[:m]}
			if err := validate(e.Entry, e.pass); err != nil {
				clear(pass)
				return fmt.Errorf("line %d: %v", n+2, err)
			}
			i, dup := v.find(e.VolumeID)
			if dup {
				clear(pass)
				return fmt.Errorf("line %d: %s twice", n+2, e.VolumeID)
			}
			v.entries = slices.Insert(v.entries, i, e)
		default:
			return fmt.Errorf("line %d: unknown record", n+2)
		}
	}
	return nil
}

func (v *Vault) marshal() []byte {
	size := len(magic) + 1
	for _, r := range v.recipients {
		size += len("recipient ") + len(r) + 1
	}
	for _, e := range v.entries {
		size += 6 + len(e.VolumeID) + 1 + len(e.LUKSUUID) + 1 + base64.StdEncoding.EncodedLen(len(e.Label)) + 1 + base64.StdEncoding.EncodedLen(len(e.pass)) + 1
	}
	// One allocation of the final size, so no growing leaves a copy of a secret behind.
	b := make([]byte, 0, size)
	b = append(b, magic+"\n"...)
	for _, r := range v.recipients {
		b = append(b, "recipient "+r+"\n"...)
	}
	for _, e := range v.entries {
		b = append(b, "entry "+e.VolumeID+" "+e.LUKSUUID+" "...)
		b = base64.StdEncoding.AppendEncode(b, []byte(e.Label))
		b = append(b, ' ')
		b = base64.StdEncoding.AppendEncode(b, e.pass)
		b = append(b, '\n')
	}
	return b
}

func (v *Vault) ageRecipients() ([]age.Recipient, error) {
	if v.pass != nil {
		wf, _, err := v.opts.workFactor()
		if err != nil {
			return nil, err
		}
		if v.opts.WorkFactor == 0 && v.fileWork > 0 {
			wf = v.fileWork
		}
		r, err := age.NewScryptRecipient(unsafeString(v.pass))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		r.SetWorkFactor(wf)
		return []age.Recipient{r}, nil
	}
	if len(v.recipients) == 0 {
		return nil, ErrRecipients
	}
	var rs []age.Recipient
	for _, s := range v.recipients {
		r, err := parseRecipient(s, v.opts.ui())
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// write encrypts the vault into a temporary file beside it and renames it into place (or,
// with excl, links it there, failing if the path exists). The caller holds the lock.
func (v *Vault) write(excl bool) error {
	rs, err := v.ageRecipients()
	if err != nil {
		return fmt.Errorf("%s: %w", v.path, err)
	}
	plain := v.marshal()
	defer clear(plain)
	var out bytes.Buffer
	w, err := age.Encrypt(&out, rs...)
	if err != nil {
		return fmt.Errorf("%s: %w", v.path, err)
	}
	if _, err := w.Write(plain); err != nil {
		return fmt.Errorf("%s: %w", v.path, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s: %w", v.path, err)
	}
	if out.Len() > MaxFileSize {
		return fmt.Errorf("%s: %w (%d bytes, at most %d)", v.path, ErrTooLarge, out.Len(), MaxFileSize)
	}
	if err := writeAtomic(v.path, out.Bytes(), excl); err != nil {
		return err
	}
	v.fileRecip = slices.Clone(v.recipients)
	v.written = sha256.Sum256(out.Bytes())
	return nil
}

func writeAtomic(path string, data []byte, excl bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// CreateTemp makes the file 0600 already; say so in case the umask or a later Go differs.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if excl {
		// link(2) fails if path exists, which rename(2) would silently replace.
		err := os.Link(f.Name(), path)
		os.Remove(f.Name())
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	} else if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
