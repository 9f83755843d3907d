// Package consolekeys reads what an EC2 instance's console output tells the keeper: the SSH
// host keys cloud-init printed on first boot, to pin them without trusting the network, and
// a disk passphrase prompt the instance is stuck at.
//
// # Host keys
//
// cloud-init's keys_to_console module runs its write-ssh-key-fingerprints helper once per
// instance. It prints two blocks, through logger(1) with the tag "ec2" and then again on
// the console, so each line may carry a prefix:
//
//	-----BEGIN SSH HOST KEY FINGERPRINTS-----
//	256 SHA256:zKgVlzcwK0DD60hPax3ZzYg3Yo59utv835p66yjMid8 root@ip-172-31-17-42 (ECDSA)
//	-----END SSH HOST KEY FINGERPRINTS-----
//	-----BEGIN SSH HOST KEY KEYS-----
//	ecdsa-sha2-nistp256 AAAAE2VjZHNh… root@ip-172-31-17-42
//	-----END SSH HOST KEY KEYS-----
//
// The fingerprint lines are ssh-keygen -l's (bits, SHA256:… or an older release's MD5
// hex, comment, type); the key lines are the public key files.
//
// Anyone on the instance can write to its console (a log message quoting a file name is
// enough), so Parse is strict about what it takes for cloud-init's. Of each line it strips
// only the prefixes above, in this order and each at most once: a kernel timestamp
// ("[   12.345678] "), a syslog header ("<14>" and an optional "Dec  4 19:00:01 "), the tag
// "ec2: ". What remains must be the whole line: a marker exactly, a fingerprint line exactly
// "BITS HASH COMMENT (TYPE)", a key line exactly "TYPE BASE64" or "TYPE BASE64 COMMENT"
// (one word). A marker or a key in the middle of other text is no marker and no key; other
// lines inside a block (the kernel's, interleaved) are skipped. Parse reads both from every
// complete block, checks that the keys hash to the fingerprints printed beside them, and
// refuses output whose blocks disagree (ErrConflict): a line injected into the console later
// cannot add a key silently. Report.Trusts says whether a key the keeper was shown on the
// wire is one of them.
//
// GetConsoleOutput returns the last 64 KiB of the console, base64-encoded (Decode); the
// blocks are printed on the first boot only, so a long-running instance's output may no
// longer hold them (ErrNoKeys): pin the key at first contact, or use `keeper trust` with a
// fingerprint given by hand.
//
// # Stuck prompts
//
// An instance whose crypttab asks for a passphrase at boot waits forever at the console.
// StuckPrompt is the one rule the keeper uses to tell (`keeper rescue`, and Run before an
// automatic rescue); Parse fills Report.Prompt with it. The prompts it knows:
//
//	Please enter passphrase for disk NAME (DEVICE):          systemd-cryptsetup
//	Please enter passphrase for disk NAME (DEVICE) on /MNT:  systemd-cryptsetup, with a mount point
//	Please enter passphrase or recovery key for disk NAME…:  systemd-cryptsetup, recovery key allowed
//	Please enter passphrase for disk NAME (DEVICE)!          systemd-cryptsetup before v246 or so
//	Please unlock disk NAME:                                 Debian's cryptroot (initramfs)
//	Enter passphrase for DEVICE:                             cryptsetup itself, dracut
//
// A prompt must start its line. Before it may come only systemd's lock glyph ("🔐 ", which
// ask_password_tty puts before its message on a UTF-8 console) or the unfinished
// "Begin: … ... " of Debian's initramfs; a prompt after anything else (a journal line's
// "web-1 systemd-cryptsetup[512]: ", a kernel timestamp, other text) is someone's log
// message, not a prompt. After it, on its line, may come only what ask_password_tty writes
// there while it waits: "(press TAB for no echo) " (grey, after the message and a blank;
// erased with "\b \b" at the first key), "(no echo) " once TAB was pressed, a "*" per
// character typed, and blanks. "(skipped)" (^D) or any other text means the question is over.
//
// The instance is stuck when the current boot (the output after its last "Linux version "
// banner) ends at such a prompt: the prompt is on the last line that is not one of the
// lines a waiting boot still prints. Those are blank lines, kernel messages ("[   12.345678]
// random: crng init done", also when one lands on the prompt's own line, after it, because
// the kernel does not know where userspace left the cursor) and systemd's progress line of a
// start job still running ("[ ***  ] A start job is running for …", "(1 of 2) A start job …",
// and the same line's other turn "[*     ] (1 of 3) Job systemd-cryptsetup@data.service/start
// running (38s / no limit)": the cryptsetup job, or one waiting behind it). Anything else
// after the prompt (a unit finished, a login prompt, sshd started, a stop job, a new boot's
// banner) means the boot went on: the prompt was answered or timed out. So does a kernel
// message that a file system on a device-mapper device was mounted ("[   20.1] EXT4-fs
// (dm-0): mounted filesystem …", XFS's "(dm-0): Mounting …"), and a kernel
// message without a timestamp (a kernel booted with printk.time=0): it cannot be told from
// userspace output. Terminal escape sequences (systemd's colours, its erase-line) are
// ignored and a carriage return ends a line.
//
// The rule errs towards "not stuck": a rescue detaches a volume and reboots the instance,
// so a console that is not plainly waiting is left alone (`keeper rescue --force` exists for
// a human who knows better).
package consolekeys

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// MaxOutput bounds the console text Parse and Decode accept; EC2 returns at most 64 KiB.
const MaxOutput = 1 << 20

// Errors, for errors.Is.
var (
	// ErrNoKeys: no complete host-key block in the output.
	ErrNoKeys = errors.New("no SSH host key fingerprints in the console output")
	// ErrConflict: two blocks, or a key and the fingerprint beside it, disagree.
	ErrConflict = errors.New("console output has conflicting SSH host keys")
	// ErrMalformed: not base64, too large.
	ErrMalformed = errors.New("malformed console output")
)

// Fingerprint is one line of the fingerprint block.
type Fingerprint struct {
	Bits    int
	Hash    string // "SHA256:…" (ssh.FingerprintSHA256's form) or "MD5:aa:bb:…"
	Comment string
	Type    string // "ED25519", "ECDSA", "RSA", "DSA" as ssh-keygen prints them
}

// Prompt is a passphrase prompt the instance waits at.
type Prompt struct {
	Line string // the prompt, without the console's prefix
	Disk string // the disk or device it names ("data", "/dev/nvme1n1")
}

// Report is what Parse found.
type Report struct {
	Fingerprints []Fingerprint   // of the fingerprint blocks (all equal, or ErrConflict)
	Keys         []ssh.PublicKey // of the key blocks (all equal, or ErrConflict)
	Prompt       *Prompt         // nil if the instance is not stuck at a prompt
}

// Decode turns GetConsoleOutput's Output (base64) into text.
func Decode(output string) ([]byte, error) {
	if base64.StdEncoding.DecodedLen(len(output)) > MaxOutput {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrMalformed, MaxOutput)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(output))
	if err != nil {
		return nil, fmt.Errorf("%w: not base64: %v", ErrMalformed, err)
	}
	return b, nil
}

// bootBanner starts every boot's kernel output: the current boot is what follows the last.
const bootBanner = "Linux version "

const (
	beginFP   = "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
	endFP     = "-----END SSH HOST KEY FINGERPRINTS-----"
	beginKeys = "-----BEGIN SSH HOST KEY KEYS-----"
	endKeys   = "-----END SSH HOST KEY KEYS-----"
)

var (
	rePrefix = regexp.MustCompile(`^(?:\[ *[0-9]+\.[0-9]+\] )?(?:<[0-9]{1,3}>(?:[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} )?)?(?:ec2: )?`)
	reFP     = regexp.MustCompile(`^([0-9]{3,5}) (SHA256:[A-Za-z0-9+/]{43}|MD5:(?:[0-9a-f]{2}:){15}[0-9a-f]{2}|(?:[0-9a-f]{2}:){15}[0-9a-f]{2}) ([^\x00-\x1f]*) \(([A-Z0-9-]+)\)$`)
	reKey    = regexp.MustCompile(`^((?:ssh-|ecdsa-|sk-)[a-z0-9@.-]+) ([A-Za-z0-9+/]+={0,2})(?: [!-~]+)?$`)
	// The prompt starts the line, after at most systemd's lock glyph or the unfinished
	// "Begin: … ... " of Debian's initramfs: a journal line ("web-1 systemd-cryptsetup[512]:
	// Enter passphrase for …:") or any other text before it is a log message. The prompt ends the line (TrimSpace took the blank systemd leaves after it); the
	// disk is NAME without its "(DEVICE)" and " on /MNT".
	//
	// What may follow it on its line is what systemd's ask_password_tty writes after its
	// message: a blank and, in grey, "(press TAB for no echo) " (erased with "\b \b" at the
	// first key), "(no echo) " after TAB, and a "*" per character typed.
	rePrompt = regexp.MustCompile(`^(?:\x{1F510} )?(?:Begin: [^:\[\]]*? \.\.\. )?(Please enter passphrase (?:or recovery key )?for disk (.+?)(?: \([^()]*\))?(?: on /\S*)?[:!]|Please unlock disk (\S+?):|Enter passphrase for (\S+?):)(?:[ \x08*]|\(press TAB for no echo\)|\(no echo\))*$`)
	reKernel = regexp.MustCompile(`\[ *[0-9]+\.[0-9]+\]`)
	// systemd alternates two texts on a running job's line: the unit's description and,
	// every other turn, its name ("Job systemd-cryptsetup@data.service/start running").
	reJob = regexp.MustCompile(`^\[[ *]+\] (?:\([0-9]+ of [0-9]+\) )?(?:A start job is running for |Job \S+/start running )`)
	// A kernel message that a file system on a device-mapper device was mounted: the
	// volume the prompt asked for is open (ext4's "mounted filesystem", XFS's "Mounting V5
	// Filesystem", btrfs/f2fs likewise name the dm-N device and the mount).
	reMounted = regexp.MustCompile(`\(dm-[0-9]+\).*[Mm]ount`)
	reEscape  = regexp.MustCompile("\x1b\\[[0-9;?]*[ -/]*[@-~]")
)

// Parse reads console text (already decoded). A missing key block is not an error by itself
// (the prompt may still be of interest): Report.Fingerprints and Keys are then empty and
// Trusts returns ErrNoKeys.
func Parse(console []byte) (*Report, error) {
	if len(console) > MaxOutput {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrMalformed, MaxOutput)
	}
	r := &Report{}
	lines := strings.Split(strings.ReplaceAll(string(console), "\r", ""), "\n")
	var (
		fpBlocks  [][]Fingerprint
		keyBlocks [][]ssh.PublicKey
		inFP      bool
		inKeys    bool
		cur       []Fingerprint
		curKeys   []ssh.PublicKey
	)
	for _, raw := range lines {
		line := strings.TrimRight(raw[len(rePrefix.FindString(raw)):], " \t")
		switch line {
		case beginFP:
			inFP, inKeys, cur = true, false, nil
			continue
		case endFP:
			if inFP {
				fpBlocks = append(fpBlocks, cur)
			}
			inFP = false
			continue
		case beginKeys:
			inKeys, inFP, curKeys = true, false, nil
			continue
		case endKeys:
			if inKeys {
				keyBlocks = append(keyBlocks, curKeys)
			}
			inKeys = false
			continue
		}
		switch {
		case inFP:
			if m := reFP.FindStringSubmatch(line); m != nil {
				bits, _ := strconv.Atoi(m[1])
				hash := m[2]
				if !strings.HasPrefix(hash, "SHA256:") && !strings.HasPrefix(hash, "MD5:") {
					hash = "MD5:" + hash
				}
				cur = append(cur, Fingerprint{Bits: bits, Hash: hash, Comment: m[3], Type: m[4]})
			}
		case inKeys:
			if m := reKey.FindStringSubmatch(line); m != nil {
				if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(m[1] + " " + m[2])); err == nil && k.Type() == m[1] {
					curKeys = append(curKeys, k)
				}
			}
		}
	}
	for _, b := range fpBlocks {
		if len(r.Fingerprints) > 0 && !sameFingerprints(r.Fingerprints, b) {
			return nil, fmt.Errorf("%w: two fingerprint blocks differ", ErrConflict)
		}
		if len(r.Fingerprints) == 0 {
			r.Fingerprints = b
		}
	}
	for _, b := range keyBlocks {
		if len(r.Keys) > 0 && !sameKeys(r.Keys, b) {
			return nil, fmt.Errorf("%w: two key blocks differ", ErrConflict)
		}
		if len(r.Keys) == 0 {
			r.Keys = b
		}
	}
	// Each key printed must have its fingerprint printed beside it, when both blocks are
	// there (cloud-init's blacklists may leave a type out of one of them: ssh-dss keys by
	// default, so a fingerprint without its key is allowed).
	if len(r.Fingerprints) > 0 {
		for _, k := range r.Keys {
			if !r.hasFingerprint(k) {
				return nil, fmt.Errorf("%w: key %s has no matching fingerprint line", ErrConflict, ssh.FingerprintSHA256(k))
			}
		}
	}
	r.Prompt = StuckPrompt(console)
	return r, nil
}

// sameFingerprints and sameKeys compare two blocks as sets, both ways: a block that
// repeats one key as often as the other has keys is not the same block.
func sameFingerprints(a, b []Fingerprint) bool {
	key := func(f Fingerprint) string { return f.Hash }
	return sameSet(a, b, key)
}

func sameKeys(a, b []ssh.PublicKey) bool {
	return sameSet(a, b, func(k ssh.PublicKey) string { return string(k.Marshal()) })
}

func sameSet[T any](a, b []T, key func(T) string) bool {
	sa, sb := map[string]bool{}, map[string]bool{}
	for _, x := range a {
		sa[key(x)] = true
	}
	for _, x := range b {
		sb[key(x)] = true
	}
	if len(sa) != len(sb) {
		return false
	}
	for k := range sb {
		if !sa[k] {
			return false
		}
	}
	return true
}

func (r *Report) hasFingerprint(k ssh.PublicKey) bool {
	sha, md5 := ssh.FingerprintSHA256(k), "MD5:"+ssh.FingerprintLegacyMD5(k)
	for _, f := range r.Fingerprints {
		if f.Hash == sha || f.Hash == md5 {
			return true
		}
	}
	return false
}

// Trusts reports whether key is one the console vouches for: one of the printed keys, or
// (with no key block) a key whose SHA256 or MD5 fingerprint was printed. It is ErrNoKeys
// when the output has no block at all.
func (r *Report) Trusts(key ssh.PublicKey) (bool, error) {
	if len(r.Fingerprints) == 0 && len(r.Keys) == 0 {
		return false, ErrNoKeys
	}
	if len(r.Keys) > 0 {
		for _, k := range r.Keys {
			if bytes.Equal(k.Marshal(), key.Marshal()) {
				return true, nil
			}
		}
		return false, nil
	}
	return r.hasFingerprint(key), nil
}

// KnownHostsLines returns the keys as known_hosts lines for host ("i-0abc…" or an
// address), what `keeper trust` writes. Without a key block there is nothing to write
// (ErrNoKeys): a fingerprint alone cannot make a known_hosts line.
func (r *Report) KnownHostsLines(hosts ...string) ([]string, error) {
	if len(r.Keys) == 0 {
		return nil, ErrNoKeys
	}
	var out []string
	for _, k := range r.Keys {
		out = append(out, strings.Join(hosts, ",")+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))))
	}
	return out, nil
}

// StuckPrompt returns the passphrase prompt the current boot of console (decoded text, as
// Parse takes) waits at, or nil if it does not wait at one; the package doc has the rule.
// It reads only the end of the text back to the last boot banner, so its cost is bounded
// by the current boot's output whatever the size of console.
func StuckPrompt(console []byte) *Prompt {
	if i := bytes.LastIndex(console, []byte(bootBanner)); i >= 0 {
		console = console[i:]
	}
	for len(console) > 0 {
		var line []byte
		if i := bytes.LastIndexAny(console, "\r\n"); i >= 0 {
			console, line = console[:i], console[i+1:]
		} else {
			console, line = nil, console
		}
		l := reEscape.ReplaceAllString(string(line), "")
		if loc := reKernel.FindStringIndex(l); loc != nil {
			if reMounted.MatchString(l[loc[1]:]) {
				return nil // a device-mapper volume mounted: the boot went on
			}
			l = l[:loc[0]]
		}
		l = strings.TrimSpace(l)
		if l == "" || reJob.MatchString(l) {
			continue
		}
		m := rePrompt.FindStringSubmatch(l)
		if m == nil {
			return nil
		}
		return &Prompt{Line: m[1], Disk: m[2] + m[3] + m[4]}
	}
	return nil
}
