package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cloudluks/cloudluks/dmcrypt"
	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/luks"
)

// config holds every verb's flags; each verb registers only the ones it uses.
type config struct {
	verb string

	// Where the volume is.
	volumeID   string
	device     string
	noAWS      bool
	region     string
	instanceID string
	zone       string
	attachAs   string

	// Local names.
	name       string
	mountPoint string
	root       string

	// Passphrase and prompts.
	keyFile string
	batch   bool

	// setup
	sizeGiB         int
	volumeType      string
	cipher          string
	keySize         int
	json            bool // status --json
	hash            string
	iterTime        time.Duration
	forceIterations uint
	luksType        string // setup --type: luks2 (cryptsetup 2.6's default) or luks1
	pbkdf           string // LUKS2 key slot PBKDF ("" = argon2id)
	pbkdfMemory     uint   // KiB, argon2
	pbkdfParallel   uint   // threads, argon2
	mkfs            string
	force           bool
	instanceStore   bool // swap, tmp

	// teardown
	detach bool
	delete bool

	// unlock
	hooks     []string
	hooksFile string

	// serve: where the lock that serializes concurrent serve processes lives
	lockDir string

	// setup and unlock: how long to wait for the device node (0 = the default for the case)
	wait time.Duration
	// setup, unlock, teardown: services gated on the mount
	services []string
}

// repeated collects a flag given several times (--hook).
type repeated struct{ vals *[]string }

func (r repeated) String() string {
	if r.vals == nil {
		return ""
	}
	return strings.Join(*r.vals, "; ")
}
func (r repeated) Set(s string) error { *r.vals = append(*r.vals, s); return nil }

// iterTime accepts cryptsetup's milliseconds ("2000") or a Go duration ("2s").
type iterTime struct{ d *time.Duration }

func (v iterTime) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (v iterTime) Set(s string) error {
	if ms, err := strconv.ParseUint(s, 10, 32); err == nil {
		*v.d = time.Duration(ms) * time.Millisecond
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("not milliseconds or a positive duration: %q", s)
	}
	*v.d = d
	return nil
}

// defaultMkfs reproduces the seed's `mkfs.ext4 -m 0`.
const defaultMkfs = "mkfs.ext4 -m 0"

func parseFlags(verb string, args []string, stderr io.Writer) (*config, error) {
	if isScratchVerb(verb) {
		return parseScratchFlags(verb, args, stderr)
	}
	c := &config{verb: verb}
	fs := flag.NewFlagSet("encrypted-volume "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)

	fs.StringVar(&c.volumeID, "volume-id", "", "EBS volume ID (vol-…); setup creates one when empty")
	fs.StringVar(&c.device, "device", "", "use this local block device instead of resolving the volume")
	fs.BoolVar(&c.noAWS, "no-aws", false, "never contact EC2 or the metadata service (device from --device or the NVMe serial of --volume-id)")
	fs.StringVar(&c.region, "region", "", "AWS region (default: from the instance metadata)")
	fs.StringVar(&c.instanceID, "instance-id", "", "instance ID (default: from the instance metadata)")
	fs.StringVar(&c.name, "name", "my_enc_fs", "device-mapper name (/dev/mapper/NAME)")
	fs.StringVar(&c.root, "root", "/", "root directory whose boot configuration is edited/inspected")
	if verb != "teardown" && verb != "serve" {
		fs.StringVar(&c.keyFile, "key-file", "", `read the passphrase from this file ("-" = all of standard input)`)
	}
	fs.StringVar(&c.mountPoint, "mount-point", "/encrypted_vol", "where the filesystem is mounted")
	fs.BoolVar(&c.batch, "q", false, "batch mode: do not ask for confirmation")
	fs.BoolVar(&c.batch, "batch-mode", false, "same as -q")

	if verb == "setup" || verb == "unlock" || verb == "serve" {
		fs.DurationVar(&c.wait, "wait", 0, "how long to wait for the volume's device node, like ec2volume device --wait (default 2m0s when EC2 reports the attachment, made now or earlier; 3s with --no-aws)")
	}
	if verb != "status" {
		fs.Var(repeated{&c.services}, "service", "service that must wait for the mount (repeatable): setup gates it (systemd drop-in, or out of SysV boot start), unlock starts it, teardown ungates it")
	}
	switch verb {
	case "setup":
		fs.StringVar(&c.zone, "availability-zone", "", "zone for a new volume (default: the instance's)")
		fs.StringVar(&c.attachAs, "attach-device", "", "device name to request at attach, e.g. /dev/sdf (default: first free)")
		fs.IntVar(&c.sizeGiB, "size", 10, "size of a new volume in GiB")
		fs.StringVar(&c.volumeType, "volume-type", "gp3", "EBS volume type of a new volume")
		fs.StringVar(&c.cipher, "cipher", "aes-xts-plain64", "cipher spec (cryptsetup -c)")
		fs.IntVar(&c.keySize, "key-size", 0, "volume key size in bits (cryptsetup -s; default 512 for xts, else 256)")
		fs.StringVar(&c.hash, "hash", "sha256", "PBKDF2 hash (cryptsetup -h)")
		c.iterTime = 2 * time.Second
		fs.Var(iterTime{&c.iterTime}, "iter-time", "PBKDF2 time per key slot: milliseconds like cryptsetup -i (2000), or a duration (2s)")
		fs.UintVar(&c.forceIterations, "pbkdf-force-iterations", 0, "fixed PBKDF iterations (argon2: time cost) instead of calibrating (tests)")
		fs.StringVar(&c.luksType, "type", "luks2", "LUKS format: luks2 (argon2id key slots, cryptsetup 2.6's default) or luks1 (the walkthrough's PBKDF2 format)")
		fs.StringVar(&c.pbkdf, "pbkdf", "", "LUKS2 key-slot PBKDF: argon2id (default), argon2i or pbkdf2 (cryptsetup --pbkdf)")
		fs.UintVar(&c.pbkdfMemory, "pbkdf-memory", 0, "LUKS2 argon2 memory cost limit in KiB (cryptsetup --pbkdf-memory; default 1048576, at most half the RAM)")
		fs.UintVar(&c.pbkdfParallel, "pbkdf-parallel", 0, "LUKS2 argon2 threads (cryptsetup --pbkdf-parallel; default 4, at most the CPUs)")
		fs.StringVar(&c.mkfs, "mkfs", defaultMkfs, "filesystem command; the mapper device is appended as the last argument")
		fs.BoolVar(&c.force, "force", false, "format even if the device already holds LUKS or a filesystem")
	case "status":
		fs.BoolVar(&c.json, "json", false, "print one JSON object (attached, device, mapped, mounted, boot-unlock disabled, boot id, needs unlock)")
	case "teardown":
		fs.BoolVar(&c.detach, "detach", false, "detach the volume from the instance after closing")
		fs.BoolVar(&c.delete, "delete", false, "delete the volume after detaching (implies --detach)")
	case "unlock", "serve":
		fs.Var(repeated{&c.hooks}, "hook", "post-mount command (repeatable; words split like a shell, no expansion)")
		fs.StringVar(&c.hooksFile, "hooks-file", "", "file with one post-mount command per line")
	}
	if verb == "serve" {
		registerServeFlags(fs, c)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: encrypted-volume %s [flags]\n", verb)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.validate()
}

var errUsage = errors.New("invalid arguments")

func (c *config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
	}
	// crypttab and fstab split their fields on blanks, so a name with one cannot be written
	// there even though the kernel would take it.
	if err := dmcrypt.ValidateName(c.name); err != nil {
		return bad("--name %q is not a usable device-mapper name: %v", c.name, err)
	}
	if strings.ContainsAny(c.name, " \t\n") {
		return bad("--name %q is not a usable device-mapper name: crypttab and fstab cannot hold a blank", c.name)
	}
	if c.mountPoint == "" || c.mountPoint[0] != '/' {
		return bad("--mount-point must be an absolute path")
	}
	if c.volumeID != "" && !strings.HasPrefix(c.volumeID, "vol-") {
		return bad("--volume-id %q does not look like vol-…", c.volumeID)
	}
	if c.delete {
		c.detach = true
	}
	needVolume := c.verb == "teardown" && c.detach
	if needVolume && c.volumeID == "" {
		return bad("--detach/--delete need --volume-id")
	}
	if c.noAWS && c.detach {
		return bad("--detach/--delete talk to EC2; they cannot be combined with --no-aws")
	}
	if c.noAWS && c.device == "" && c.volumeID == "" && c.verb != "teardown" && c.verb != "status" {
		return bad("--no-aws needs --device or --volume-id (to find the NVMe disk by serial)")
	}
	if c.wait < 0 {
		return bad("--wait must not be negative")
	}
	for _, s := range c.services {
		if err := validServiceName(strings.TrimSuffix(s, ".service")); err != nil {
			return bad("--service %q: %v", s, err)
		}
	}
	// unlock starts the services on this machine (systemctl start, the init script): a
	// --root other than / is another system's tree (an image, a rescue mount), whose
	// services are not this machine's to start, and whose init script would run here.
	if (c.verb == "unlock" || c.verb == "serve") && len(c.services) > 0 && filepath.Clean(c.root) != "/" {
		return bad("--service starts services on this machine; it cannot be combined with --root %s (unlock --root / only)", c.root)
	}
	// systemd unquotes and unescapes some settings and not others (and older versions than
	// the one checked differ), so a mount point with a blank, a backslash or a quote has no
	// one spelling that every unit-file setting reads back the same.
	if len(c.services) > 0 && strings.ContainsAny(c.mountPoint, " \t\n\\'\"") {
		return bad("--mount-point %q: a blank, backslash or quote cannot be written in a systemd drop-in for --service", c.mountPoint)
	}
	if c.verb == "setup" {
		if c.sizeGiB < 1 {
			return bad("--size must be at least 1 GiB")
		}
		// The cipher, key size and hash are checked here, before any volume is created:
		// luks.Format would refuse them only after the volume existed and was attached.
		if c.keySize < 0 || c.keySize%8 != 0 {
			return bad("--key-size must be a positive multiple of 8 bits")
		}
		p, err := luks.FormatOptions{Cipher: c.cipher, KeySize: c.keySize, Hash: c.hash}.Check()
		if err != nil {
			return bad("--cipher %s --key-size %d --hash %s: %v", c.cipher, c.keySize, c.hash, err)
		}
		if p.CipherName == "cipher_null" || p.CipherName == "null" {
			return bad("--cipher %s does not encrypt: refused for an encrypted volume", c.cipher)
		}
		c.keySize = p.KeySize
		if err := c.checkLUKSType(); err != nil {
			return bad("%v", err)
		}
		if strings.TrimSpace(c.mkfs) == "" {
			return bad("--mkfs is empty")
		}
		words, err := splitWords(c.mkfs)
		if err != nil {
			return bad("--mkfs: %v", err)
		}
		if _, err := exec.LookPath(words[0]); err != nil {
			return bad("--mkfs: %s not found on PATH (install it, e.g. e2fsprogs for mkfs.ext4)", words[0])
		}
		if fi, err := os.Stat(c.mountPoint); err == nil && !fi.IsDir() {
			return bad("--mount-point %s exists and is not a directory", c.mountPoint)
		}
	}
	if c.verb == "serve" {
		if err := c.validateServe(); err != nil {
			return bad("%v", err)
		}
	}
	if c.verb == "unlock" || c.verb == "serve" {
		for _, h := range c.hooks {
			if w, err := splitWords(h); err != nil || len(w) == 0 {
				return bad("--hook %q: not a command", h)
			}
		}
	}
	return nil
}

// maxHooksFile bounds --hooks-file: a list of commands, not data; /dev/zero or a runaway
// file is refused at this size instead of filling memory.
const maxHooksFile = 1 << 20

// hookCommands collects --hooks-file lines then --hook flags, in that order. Reading the
// file ends when ctx does (a FIFO nobody writes to), and stops at maxHooksFile bytes.
func (c *config) hookCommands(ctx context.Context) ([][]string, error) {
	var cmds [][]string
	if c.hooksFile != "" {
		data, err := cli.ReadFileLimit(ctx, c.hooksFile, maxHooksFile)
		if err != nil {
			return nil, fmt.Errorf("hooks file: %w", err)
		}
		cmds, err = parseHooksFile(string(data))
		if err != nil {
			return nil, fmt.Errorf("hooks file %s: %w", c.hooksFile, err)
		}
	}
	for _, h := range c.hooks {
		w, _ := splitWords(h) // validated
		cmds = append(cmds, w)
	}
	return cmds, nil
}

// checkLUKSType validates --type and the PBKDF options for it, before any volume exists:
// LUKS1 slots use PBKDF2 only; LUKS2's limits are libcryptsetup's.
func (c *config) checkLUKSType() error {
	if c.forceIterations > math.MaxUint32 || c.pbkdfMemory > math.MaxUint32 || c.pbkdfParallel > math.MaxUint32 {
		return fmt.Errorf("--pbkdf-force-iterations, --pbkdf-memory and --pbkdf-parallel must fit in 32 bits")
	}
	switch c.luksType {
	case "luks1":
		if c.pbkdf != "" && c.pbkdf != luks.KDFPBKDF2 {
			return fmt.Errorf("--pbkdf %s: LUKS1 key slots use pbkdf2 only (use --type luks2)", c.pbkdf)
		}
		if c.pbkdfMemory != 0 || c.pbkdfParallel != 0 {
			return fmt.Errorf("--pbkdf-memory and --pbkdf-parallel are argon2 costs: use --type luks2")
		}
		return nil
	case "luks2":
		switch c.pbkdf {
		case "", luks.KDFPBKDF2, luks.KDFArgon2i, luks.KDFArgon2id:
		default:
			return fmt.Errorf("--pbkdf %s: the PBKDF can be only pbkdf2 or argon2i/argon2id", c.pbkdf)
		}
		if err := c.keyslotOptions().Check(); err != nil {
			return fmt.Errorf("--type luks2: %w", err)
		}
		return nil
	}
	return fmt.Errorf("--type %s: luks1 or luks2", c.luksType)
}

// keyslotOptions are setup's LUKS2 key-slot PBKDF settings.
func (c *config) keyslotOptions() luks.LUKS2KeyslotOptions {
	return luks.LUKS2KeyslotOptions{Hash: c.hash, PBKDF: c.pbkdf, IterTime: c.iterTime,
		ForceIterations: uint32(c.forceIterations), Memory: uint32(c.pbkdfMemory), Parallel: uint32(c.pbkdfParallel)}
}
