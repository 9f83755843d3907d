package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudluks/cloudluks/dmcrypt"
	"github.com/cloudluks/cloudluks/grubconf"
	"github.com/cloudluks/cloudluks/luks"
)

// swap and tmp put swap space and /tmp on a plain dm-crypt mapping whose key comes from
// getrandom(2) and exists only in the kernel (dmcrypt.OpenEphemeral): swapped-out pages and
// temporary files of the applications the LUKS volume protects never reach a disk in
// plaintext, and nothing needs a stored key. At boot the crypttab line (key /dev/urandom,
// grubconf.PlanScratch) does the same with a fresh key, so the old contents can never be
// decrypted again.

// minScratchBytes is the smallest device swap or tmp accepts: mkswap needs ten pages,
// mkfs.ext4 a few MiB; a smaller disk is a mistake (a partition table, a wrong device).
const minScratchBytes = 8 << 20

// instanceStoreModel is the NVMe model of EC2 instance-store disks (Nitro): data there is
// lost on stop, the natural home for swap and /tmp.
const instanceStoreModel = "Amazon EC2 NVMe Instance Storage"

func isScratchVerb(verb string) bool { return verb == "swap" || verb == "tmp" }

// parseScratchFlags registers the flags of swap and tmp; teardown and status find scratch
// mappings by name with their own flags.
func parseScratchFlags(verb string, args []string, stderr io.Writer) (*config, error) {
	c := &config{verb: verb}
	fs := flag.NewFlagSet("encrypted-volume "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	defName, defMount := "cryptswap", ""
	if verb == "tmp" {
		defName, defMount = "crypttmp", "/tmp"
	}
	fs.StringVar(&c.device, "device", "", "use this block device (an NVMe disk or its /dev/disk/by-id/ name)")
	fs.BoolVar(&c.instanceStore, "instance-store", false, "use the first unused instance-store NVMe disk (model \""+instanceStoreModel+"\")")
	fs.StringVar(&c.volumeID, "volume-id", "", "use this attached EBS volume (vol-…); with none of --device, --instance-store, --volume-id a new volume is created and attached")
	fs.IntVar(&c.sizeGiB, "size", 4, "size of a new EBS volume in GiB")
	fs.StringVar(&c.volumeType, "volume-type", "gp3", "EBS volume type of a new volume")
	fs.StringVar(&c.zone, "availability-zone", "", "zone for a new volume (default: the instance's)")
	fs.StringVar(&c.attachAs, "attach-device", "", "device name to request at attach, e.g. /dev/sdg (default: first free)")
	fs.StringVar(&c.region, "region", "", "AWS region (default: from the instance metadata)")
	fs.StringVar(&c.instanceID, "instance-id", "", "instance ID (default: from the instance metadata)")
	fs.BoolVar(&c.noAWS, "no-aws", false, "never contact EC2 (needs --device, --instance-store or --volume-id)")
	fs.DurationVar(&c.wait, "wait", 0, "how long to wait for the device node of --volume-id or a new volume")
	fs.StringVar(&c.name, "name", defName, "device-mapper name (/dev/mapper/NAME)")
	if verb == "tmp" {
		fs.StringVar(&c.mountPoint, "mount-point", defMount, "where the filesystem is mounted (mode 1777)")
	}
	fs.StringVar(&c.cipher, "cipher", grubconf.DefaultScratchCipher, "cipher spec (cryptsetup -c)")
	fs.IntVar(&c.keySize, "key-size", grubconf.DefaultScratchKeySize, "key size in bits (cryptsetup -s)")
	fs.StringVar(&c.root, "root", "/", "root directory whose crypttab and fstab get the boot-time lines")
	fs.BoolVar(&c.force, "force", false, "use the device even if it holds a filesystem, swap or partition table (never a LUKS header); tmp: allow a --mount-point other than /tmp and /var/tmp (never a system directory)")
	fs.BoolVar(&c.batch, "q", false, "batch mode: do not ask for confirmation")
	fs.BoolVar(&c.batch, "batch-mode", false, "same as -q")
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
	return c, c.validateScratch()
}

func (c *config) validateScratch() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
	}
	if err := dmcrypt.ValidateName(c.name); err != nil || strings.ContainsAny(c.name, " \t\n#") {
		return bad("--name %q is not a usable device-mapper name", c.name)
	}
	n := 0
	for _, set := range []bool{c.device != "", c.instanceStore, c.volumeID != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return bad("give one of --device, --instance-store, --volume-id")
	}
	if c.noAWS && n == 0 {
		return bad("--no-aws needs --device, --instance-store or --volume-id (a new volume is created through EC2)")
	}
	if c.volumeID != "" && !strings.HasPrefix(c.volumeID, "vol-") {
		return bad("--volume-id %q does not look like vol-…", c.volumeID)
	}
	if c.sizeGiB < 1 {
		return bad("--size must be at least 1 GiB")
	}
	if c.wait < 0 {
		return bad("--wait must not be negative")
	}
	if c.verb == "tmp" && (c.mountPoint == "" || c.mountPoint[0] != '/' || filepath.Clean(c.mountPoint) == "/" || strings.ContainsAny(c.mountPoint, "\n")) {
		return bad("--mount-point %q must be an absolute path other than /", c.mountPoint)
	}
	c.mountPoint = filepath.Clean(c.mountPoint)
	if c.verb == "tmp" && c.mountPoint != "/tmp" && c.mountPoint != "/var/tmp" && !c.force {
		// Whatever is mounted there is emptied at every boot: only the directories made
		// for that go without a second thought. System directories are refused even
		// with --force (grubconf).
		return bad("--mount-point %s: a file system emptied at every boot goes on /tmp or /var/tmp; anywhere else needs --force", c.mountPoint)
	}
	if c.keySize <= 0 || c.keySize%8 != 0 {
		return bad("--key-size must be a positive multiple of 8 bits")
	}
	// The spec is checked by the same code that would map it, before anything exists.
	p, err := luks.FormatOptions{Cipher: c.cipher, KeySize: c.keySize, Hash: "sha256"}.Check()
	if err != nil {
		return bad("--cipher %s --key-size %d: %v", c.cipher, c.keySize, err)
	}
	if p.CipherName == "cipher_null" || p.CipherName == "null" {
		return bad("--cipher %s does not encrypt", c.cipher)
	}
	return nil
}

// scratchLocal is what swap and tmp need from the machine beyond local: the ephemeral
// mapping, swap(2), a mount with a known type and the instance-store disks. sysLocal has
// it; the host tests' fake does not, so these verbs run in the VM test only.
type scratchLocal interface {
	OpenEphemeral(ctx context.Context, device, name, cipher string, keyBits int) (mapper string, err error)
	// Ephemeral reports whether name is mapped, and whether with an ephemeral key.
	Ephemeral(name string) (mapped, ephemeral bool, st *dmcrypt.MappingStatus, err error)
	// ScratchMappings lists the plain-mode mappings (ephemeral or not).
	ScratchMappings() ([]*dmcrypt.MappingStatus, error)
	Swapon(device string) error
	Swapoff(device string) error
	// SwapActive reports whether the block device at path is an active swap area.
	SwapActive(path string) (bool, error)
	MountType(source, target, fstype string) error
	// InstanceStore lists the instance-store NVMe disks (/dev/nvmeXnY).
	InstanceStore() ([]string, error)
	// StableName is the /dev/disk/by-id/ name udev gives the disk (from its NVMe model and
	// serial), whether or not udev has made the link yet.
	StableName(device string) (string, error)
	// DeviceSize is the device's size in bytes.
	DeviceSize(device string) (int64, error)
	// Users says what on this machine uses the device ("" = nothing).
	Users(device string) (string, error)
}

func (a *app) scratchLocal() (scratchLocal, error) {
	sl, ok := a.local.(scratchLocal)
	if !ok {
		return nil, fmt.Errorf("%w: swap and tmp need a real kernel (device-mapper, swap)", errUsage)
	}
	return sl, nil
}

func (a *app) swap(ctx context.Context, c *config) error {
	return a.scratch(ctx, c, grubconf.ScratchSwap)
}
func (a *app) tmp(ctx context.Context, c *config) error {
	return a.scratch(ctx, c, grubconf.ScratchTmp)
}

// scratchRun is one run of swap or tmp.
type scratchRun struct {
	a    *app
	c    *config
	sl   scratchLocal
	kind grubconf.ScratchKind
	cl   cloud

	volumeID, ec2Device string
	created, attached   bool
	tokenKey            [3]string // kind, instance, zone of the creation token; "" = none
	device              string    // the block device (/dev/nvme1n1)
	stable              string    // its /dev/disk/by-id/ name, written to crypttab
	mapper              string
	active              bool // swapon done
	mounted             bool
	bootDone            bool
}

func (a *app) scratch(ctx context.Context, c *config, kind grubconf.ScratchKind) error {
	sl, err := a.scratchLocal()
	if err != nil {
		return err
	}
	if err := a.local.DeviceMapper(); err != nil {
		if errors.Is(err, errNoPermission) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	r := &scratchRun{a: a, c: c, sl: sl, kind: kind, volumeID: c.volumeID}
	// Everything that can be checked without a side effect, before the first one.
	if _, ok, err := a.local.MappingDevice(c.name); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("--name: mapping %s already exists: %w", c.name, errBusy)
	}
	if kind == grubconf.ScratchTmp {
		mounts, err := a.local.Mounts()
		if err != nil {
			return err
		}
		if err := mountPointFree(mounts, c.mountPoint); err != nil {
			return err
		}
		if fi, err := os.Stat(c.mountPoint); err == nil && !fi.IsDir() {
			return fmt.Errorf("%w: --mount-point %s exists and is not a directory", errUsage, c.mountPoint)
		}
	}
	switch {
	case c.device != "":
		if err := r.useDevice(ctx, c.device); err != nil {
			return err
		}
	case c.instanceStore:
		if err := r.pickInstanceStore(ctx); err != nil {
			return err
		}
	}
	// The boot configuration is planned now (refusals such as a name already in crypttab
	// come before anything changes) and again at its step.
	// Without a device yet (a volume still to be created or attached), the checks that
	// need none: a name or mount point taken in crypttab or fstab is refused before step 1
	// creates anything.
	if r.stable != "" {
		if _, err := r.bootPlan(); err != nil {
			return err
		}
	} else if err := r.bootCheck(); err != nil {
		return err
	}
	if r.device == "" && !c.noAWS {
		if r.cl, err = a.newCloud(ctx, c); err != nil {
			return fmt.Errorf("EC2: %w", err)
		}
	}
	if err := confirm(ctx, a.term, a.stdout, c.batch || r.device == "" && r.volumeID == "", fmt.Sprintf("This will overwrite data on %s irrevocably, now and at every boot.", firstNonEmpty(r.device, r.volumeID))); err != nil {
		return err
	}
	what := map[grubconf.ScratchKind]string{grubconf.ScratchSwap: "mkswap", grubconf.ScratchTmp: "mkfs.ext4"}[kind]
	steps := []step{
		{r.describeVolume, r.volume},
		{func() string {
			return fmt.Sprintf("open %s %s with an ephemeral key (%s, %d-bit)", r.device, c.name, c.cipher, c.keySize)
		}, r.open},
		{func() string { return what + " " + r.mapper }, r.format},
	}
	if kind == grubconf.ScratchSwap {
		steps = append(steps, step{func() string { return "swapon " + r.mapper }, r.swapon})
	} else {
		steps = append(steps, step{func() string { return fmt.Sprintf("mount %s %s (mode 1777)", r.mapper, c.mountPoint) }, r.mount})
	}
	steps = append(steps,
		step{func() string { return "crypttab and fstab lines for " + r.stable + " (root " + c.root + ")" }, r.boot},
		step{fixed("cryptsetup status " + c.name), func(ctx context.Context) error { return a.local.MappingStatus(a.stdout, c.name) }},
	)
	if err := runSteps(ctx, a.stdout, steps); err != nil {
		r.cleanup(ctx)
		return err
	}
	if r.tokenKey[0] != "" {
		a.dropCreationToken(r.tokenKey[0], r.tokenKey[1], c.name, c.mountPoint, c.sizeGiB, c.volumeType, r.tokenKey[2])
	}
	if kind == grubconf.ScratchSwap {
		fmt.Fprintf(a.stdout, "Done: swap on %s (key only in the kernel; a new one at every boot).\n", r.mapper)
	} else {
		fmt.Fprintf(a.stdout, "Done: %s is mounted at %s (key only in the kernel; a new one at every boot).\n", r.mapper, c.mountPoint)
	}
	return nil
}

// useDevice checks a device for swap or tmp: there, not in use, big enough, no LUKS
// header ever, no other signature without --force; and finds its stable name.
func (r *scratchRun) useDevice(ctx context.Context, dev string) error {
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return deviceErr(dev, err)
	}
	if _, err := statBlock(real); err != nil {
		return err
	}
	if users, err := r.sl.Users(real); err != nil {
		return err
	} else if users != "" {
		return coded(fmt.Errorf("%s is in use: %s", dev, users), errBusy)
	}
	f, err := os.OpenFile(real, os.O_RDWR|os.O_EXCL, 0)
	if err != nil {
		return coded(fmt.Errorf("%s: %w", dev, err), errBusy)
	}
	f.Close()
	size, err := r.sl.DeviceSize(real)
	if err != nil {
		return err
	}
	if size < minScratchBytes {
		return coded(fmt.Errorf("%s holds %d bytes; %s needs at least %d MiB", dev, size, r.kind, minScratchBytes>>20), errUsage)
	}
	what, err := probePath(ctx, real)
	if err != nil {
		return fmt.Errorf("%s: %w", dev, err)
	}
	switch {
	case what == "LUKS header":
		return fmt.Errorf("%s holds a LUKS header (an encrypted volume?); %s never overwrites one, even with --force (wipe it with wipefs first if it really is unused): %w", dev, r.kind, errAlreadyUsed)
	case what != "" && !r.c.force:
		return fmt.Errorf("%s already holds a %s; refusing to use it for %s without --force: %w", dev, what, r.kind, errAlreadyUsed)
	}
	stable := dev
	if grubconf.StableDevice(dev) != nil {
		if stable, err = r.sl.StableName(real); err != nil {
			return err
		}
	}
	if err := grubconf.StableDevice(stable); err != nil {
		return fmt.Errorf("%s: %w", dev, err)
	}
	r.device, r.stable = real, stable
	return nil
}

func (r *scratchRun) pickInstanceStore(ctx context.Context) error {
	disks, err := r.sl.InstanceStore()
	if err != nil {
		return err
	}
	if len(disks) == 0 {
		return coded(fmt.Errorf("no instance-store NVMe disk (model %q) on this machine", instanceStoreModel), errDeviceMissing)
	}
	var why []string
	for _, d := range disks {
		if err := r.useDevice(ctx, d); err != nil {
			why = append(why, err.Error())
			continue
		}
		fmt.Fprintf(r.a.stdout, "instance store: using %s (%s)\n", r.device, r.stable)
		return nil
	}
	return coded(fmt.Errorf("no usable instance-store disk: %s", strings.Join(why, "; ")), errBusy)
}

func (r *scratchRun) bootSystem() (*grubconf.System, error) {
	sys, err := grubconf.Detect(r.c.root)
	if err != nil {
		return nil, fmt.Errorf("%w: --root %s: %v", errUsage, r.c.root, err)
	}
	return sys, nil
}

func (r *scratchRun) scratchSpec() grubconf.Scratch {
	return grubconf.Scratch{Name: r.c.name, Kind: r.kind, Device: r.stable, Cipher: r.c.cipher, KeySize: r.c.keySize, MountPoint: r.c.mountPoint}
}

func (r *scratchRun) bootPlan() (*grubconf.Plan, error) {
	sys, err := r.bootSystem()
	if err != nil {
		return nil, err
	}
	p, err := sys.PlanScratch(r.scratchSpec())
	return p, r.bootErr(err)
}

// bootCheck is bootPlan before the device is known (grubconf.CheckScratch).
func (r *scratchRun) bootCheck() error {
	sys, err := r.bootSystem()
	if err != nil {
		return err
	}
	return r.bootErr(sys.CheckScratch(r.scratchSpec()))
}

func (r *scratchRun) bootErr(err error) error {
	switch {
	case errors.Is(err, grubconf.ErrInUse):
		return coded(fmt.Errorf("boot configuration in %s: %w", r.c.root, err), errBusy)
	case errors.Is(err, grubconf.ErrUnstableDevice), errors.Is(err, grubconf.ErrInvalidVolume):
		return coded(fmt.Errorf("boot configuration in %s: %w", r.c.root, err), errUsage)
	case err != nil:
		return fmt.Errorf("boot configuration in %s: %w", r.c.root, err)
	}
	return nil
}

func (r *scratchRun) describeVolume() string {
	switch {
	case r.device != "":
		return "device " + r.device
	case r.volumeID != "":
		return "resolve the local device of " + r.volumeID
	}
	return fmt.Sprintf("create and attach a %d GiB %s EBS volume", r.c.sizeGiB, r.c.volumeType)
}

// volume creates and attaches an EBS volume, or resolves --volume-id, then checks the
// device as useDevice checks a given one.
func (r *scratchRun) volume(ctx context.Context) error {
	if r.device != "" {
		return skip("using %s (%s)", r.device, r.stable)
	}
	if r.volumeID == "" {
		instance, zone, err := r.cl.Placement(ctx)
		if err != nil {
			return fmt.Errorf("instance metadata: %w", err)
		}
		if r.c.zone != "" {
			zone = r.c.zone
		}
		// A creation token, as setup's volume has (token.go): a run killed during the
		// create finds its volume again when the same command runs once more.
		name, _, err := r.a.creationToken(string(r.kind), instance, r.c.name, r.c.mountPoint, r.c.sizeGiB, r.c.volumeType, zone)
		if err != nil {
			return err
		}
		r.tokenKey = [3]string{string(r.kind), instance, zone}
		id, err := r.cl.Create(ctx, zone, r.c.sizeGiB, r.c.volumeType, name)
		if id != "" {
			r.volumeID, r.created = id, true
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(r.a.stdout, "    VOLUME %s %d %s available\n", id, r.c.sizeGiB, zone)
	}
	if r.cl != nil {
		dev, ok, err := r.cl.Attachment(ctx, r.volumeID)
		if err != nil {
			return err
		}
		if !ok {
			if dev, err = r.cl.Attach(ctx, r.volumeID, r.c.attachAs); err != nil {
				return err
			}
			r.attached = true
		}
		r.ec2Device = dev
	}
	dev, err := r.a.waitDevice(ctx, r.c, r.volumeID, r.ec2Device)
	if err != nil {
		return err
	}
	if err := r.useDevice(ctx, dev); err != nil {
		return err
	}
	// The plan is checked again with the name now known.
	if _, err := r.bootPlan(); err != nil {
		return err
	}
	fmt.Fprintf(r.a.stdout, "    local device: %s (%s)\n", r.device, r.stable)
	return nil
}

func (r *scratchRun) open(ctx context.Context) error {
	m, err := r.sl.OpenEphemeral(ctx, r.device, r.c.name, r.c.cipher, r.c.keySize)
	if err != nil {
		return err
	}
	r.mapper = m
	return nil
}

func (r *scratchRun) format(ctx context.Context) error {
	argv := []string{"mkswap"}
	if r.kind == grubconf.ScratchTmp {
		argv = []string{"mkfs.ext4", "-q", "-m", "0"}
	}
	return r.a.local.Mkfs(ctx, argv, r.mapper, r.a.stdout, r.a.stderr)
}

func (r *scratchRun) swapon(ctx context.Context) error {
	if err := r.sl.Swapon(r.mapper); err != nil {
		return err
	}
	r.active = true
	return nil
}

func (r *scratchRun) mount(ctx context.Context) error {
	if err := os.MkdirAll(r.c.mountPoint, 0o1777); err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	if ents, err := os.ReadDir(r.c.mountPoint); err == nil && len(ents) > 0 {
		// Sockets and files of running programs stay on the root file system, hidden
		// under the mount; they are the plaintext this does not cover.
		fmt.Fprintf(r.a.stdout, "    note: %s holds %d entries now; they stay on the root file system, hidden under the mount (reboot or restart their programs)\n", r.c.mountPoint, len(ents))
	}
	if err := r.sl.MountType(r.mapper, r.c.mountPoint, "ext4"); err != nil {
		return err
	}
	r.mounted = true
	// The root of the new filesystem, as for any /tmp: everyone may create files, only
	// owners remove them (sticky bit).
	return os.Chmod(r.c.mountPoint, os.ModeSticky|0o777)
}

func (r *scratchRun) boot(ctx context.Context) error {
	p, err := r.bootPlan()
	if err != nil {
		return err
	}
	if p.Empty() {
		fmt.Fprintln(r.a.stdout, "    the lines are there already; nothing to change")
		return nil
	}
	if err := p.Diff(r.a.stdout); err != nil {
		return err
	}
	// No backup copies: the undo record restores the files byte for byte, and teardown
	// leaves nothing behind.
	if err := p.Apply(grubconf.ApplyOptions{}); err != nil {
		return fmt.Errorf("boot configuration in %s: %w", r.c.root, err)
	}
	r.bootDone = true
	for _, n := range p.Notes {
		fmt.Fprintf(r.a.stdout, "    next: %s\n", n)
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(r.a.stdout, "    warning: %s\n", w)
	}
	return nil
}

// cleanup takes back what a failed run did, newest first.
func (r *scratchRun) cleanup(ctx context.Context) {
	a := r.a
	if r.active {
		if err := r.sl.Swapoff(r.mapper); err != nil {
			fmt.Fprintf(a.stderr, "cleanup: swapoff %s: %v\n", r.mapper, err)
		}
	}
	if r.mounted {
		if err := a.local.Unmount(r.c.mountPoint); err != nil {
			fmt.Fprintf(a.stderr, "cleanup: unmount %s: %v\n", r.c.mountPoint, err)
		}
	}
	if r.bootDone {
		if sys, err := grubconf.Detect(r.c.root); err == nil {
			if u, err := sys.PlanUndo(r.c.name); err == nil {
				if err := u.Apply(grubconf.ApplyOptions{}); err != nil {
					fmt.Fprintf(a.stderr, "cleanup: crypttab and fstab lines for %s: %v\n", r.c.name, err)
				}
			}
		}
	}
	if r.mapper != "" {
		if err := a.local.Close(context.WithoutCancel(ctx), r.c.name); err != nil {
			fmt.Fprintf(a.stderr, "cleanup: close %s: %v\n", r.c.name, err)
		} else {
			fmt.Fprintf(a.stdout, "Cleanup: closed %s (its key is gone)\n", r.c.name)
		}
	}
	if r.created {
		fmt.Fprintf(a.stdout, "Note: volume %s (created by this run) stays; remove it with: encrypted-volume teardown --name %s --volume-id %s --delete\n", r.volumeID, r.c.name, r.volumeID)
	}
}

// scratchReport is one swap or tmp mapping in status.
type scratchReport struct {
	Name         string `json:"name"`
	Device       string `json:"device"`
	Cipher       string `json:"cipher"`
	KeyBits      int    `json:"keyBits"`
	EphemeralKey bool   `json:"ephemeralKey"` // the key exists only in the kernel
	// KeySource says where that key came from: "crypto/rand" (this program's swap or tmp)
	// or "/dev/urandom" (the crypttab line, at boot).
	KeySource  string `json:"keySource"`
	Use        string `json:"use"` // "swap", "mounted", "unused"
	MountPoint string `json:"mountPoint,omitempty"`
	// BootLine is the crypttab line that recreates it at boot, "" when there is none.
	BootLine string `json:"bootLine,omitempty"`
}

// scratchReports lists the mappings with an ephemeral key, for status. On a machine (or
// fake) without them it is empty.
func (a *app) scratchReports(c *config) []scratchReport {
	sl, ok := a.local.(scratchLocal)
	if !ok {
		return nil
	}
	sts, err := sl.ScratchMappings()
	if err != nil {
		return nil
	}
	mounts, _ := a.local.Mounts()
	boot := bootScratchLines(c.root)
	var out []scratchReport
	for _, st := range sts {
		src := "crypto/rand"
		if !st.Ephemeral() {
			// A plain mapping made at boot from our crypttab line keyed from /dev/urandom
			// (systemd-cryptsetup, init_crypto): as ephemeral, though not made here. Any
			// other plain mapping has a passphrase or key file and is not scratch.
			if boot[st.Name] == "" {
				continue
			}
			src = "/dev/urandom"
		}
		r := scratchReport{Name: st.Name, Device: st.Device, Cipher: st.Cipher, KeyBits: st.KeySize * 8, EphemeralKey: true, KeySource: src, Use: "unused", BootLine: boot[st.Name]}
		if on, _ := sl.SwapActive(mapperPath(st.Name)); on {
			r.Use = "swap"
		} else if mp, ok := findOurMount(mounts, "", st.Name); ok {
			r.Use, r.MountPoint = "mounted", mp
		}
		out = append(out, r)
	}
	return out
}

// bootScratchLines maps names to their crypttab lines keyed from /dev/urandom under root.
func bootScratchLines(root string) map[string]string {
	out := map[string]string{}
	sys, err := grubconf.Detect(root)
	if err != nil || sys.Crypttab == nil {
		return out
	}
	b, err := os.ReadFile(filepath.Join(root, sys.Crypttab.Path))
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && !strings.HasPrefix(f[0], "#") && (f[2] == "/dev/urandom" || f[2] == "/dev/random") {
			out[f[0]] = strings.Join(f, " ")
		}
	}
	return out
}

func writeScratchText(w io.Writer, rs []scratchReport) {
	for _, r := range rs {
		use := r.Use
		if r.MountPoint != "" {
			use += " on " + r.MountPoint
		}
		boot := "no crypttab line"
		if r.BootLine != "" {
			boot = "crypttab: new key at every boot"
		}
		fmt.Fprintf(w, "scratch:   %s on %s (%s, %d-bit), ephemeral key from %s (only in the kernel), %s; %s\n", r.Name, r.Device, r.Cipher, r.KeyBits, r.KeySource, use, boot)
	}
}

// scratchTeardownSteps replaces teardown's umount and luksClose for a swap or tmp mapping
// (an ephemeral key, or a crypttab line keyed from /dev/urandom whose plain mapping boot
// made): swapoff or umount, close, take the crypttab and fstab lines out. nil when name is
// no such mapping.
func (a *app) scratchTeardownSteps(c *config) []step {
	sl, ok := a.local.(scratchLocal)
	if !ok {
		return nil
	}
	mapped, eph, st, err := sl.Ephemeral(c.name)
	_, hasBoot := bootScratchLines(c.root)[c.name]
	if err != nil || !(eph || hasBoot && (!mapped || st.Type == "PLAIN")) {
		return nil
	}
	mapper := mapperPath(c.name)
	return []step{
		{fixed("swapoff or umount " + mapper), func(ctx context.Context) error {
			if on, err := sl.SwapActive(mapper); err != nil {
				return err
			} else if on {
				return sl.Swapoff(mapper)
			}
			mounts, err := a.local.Mounts()
			if err != nil {
				return err
			}
			if mp, ok := findOurMount(mounts, "", c.name); ok {
				return a.local.Unmount(mp)
			}
			return skip("%s is neither swap nor mounted", mapper)
		}},
		{fixed("close " + c.name + " (its key is gone for good)"), func(ctx context.Context) error {
			if _, ok, err := a.local.MappingDevice(c.name); err != nil {
				return err
			} else if !ok {
				return skip("no mapping named %s", c.name)
			}
			return a.local.Close(ctx, c.name)
		}},
		{fixed("take the crypttab and fstab lines out (root " + c.root + ")"), func(ctx context.Context) error {
			sys, err := grubconf.Detect(c.root)
			if err != nil {
				return err
			}
			u, err := sys.PlanUndo(c.name)
			if errors.Is(err, grubconf.ErrNoUndo) {
				return skip("no boot configuration recorded for %s", c.name)
			}
			if err != nil {
				return err
			}
			if err := u.Diff(a.stdout); err != nil {
				return err
			}
			return u.Apply(grubconf.ApplyOptions{})
		}},
	}
}
