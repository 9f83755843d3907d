package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudluks/cloudluks/luks"
)

// setupRun is one run of setup: the seed walkthrough's nine steps as methods, in order.
// Each field has one source: the flags, the instance's placement (decided once, before any
// step), or the step that made it.
type setupRun struct {
	a *app
	c *config

	cl         cloud // nil with --device or --no-aws
	instanceID string
	zone       string
	mkfsArgv   []string
	pass       []byte // cleared by the format step

	volumeID    string // --volume-id, or the one the create step made
	created     bool
	attachTried bool            // Attach was called: even a failed one may leave an attachment (Ctrl-C during the wait)
	attached    bool            // this run attached the volume
	ec2Device   string          // the name EC2 recorded for the attachment (/dev/sdf)
	device      string          // the local block device
	hdr         luks.Metadata   // LUKS1 or LUKS2 (--type), from the format step
	vk          *luks.VolumeKey // from the format step until the open step
	mapper      string          // /dev/mapper/NAME, from the open step
	mounted     bool
}

// setup automates the seed walkthrough's nine steps. Everything that can be checked
// without a side effect is checked first (preflight), so a bad input never leaves a volume
// behind.
func (a *app) setup(ctx context.Context, c *config) error {
	if err := a.preflight(ctx, c); err != nil {
		return err
	}
	r := &setupRun{a: a, c: c, volumeID: c.volumeID, device: c.device}
	r.mkfsArgv, _ = splitWords(c.mkfs) // validated by parseFlags
	if !c.noAWS && c.device == "" {
		var err error
		if r.cl, err = a.newCloud(ctx, c); err != nil {
			return fmt.Errorf("EC2: %w", err)
		}
		// The cloud adapter already prefers --availability-zone and --instance-id.
		if r.instanceID, r.zone, err = r.cl.Placement(ctx); err != nil {
			return fmt.Errorf("instance metadata: %w", err)
		}
	}
	// The passphrase is collected before anything changes, so a typo at the prompt leaves
	// no volume behind.
	var err error
	if r.pass, err = a.passSource(ctx, c).read(firstNonEmpty(c.device, c.volumeID, "the new volume"), true); err != nil {
		return err
	}
	defer r.wipe()

	err = runSteps(ctx, a.stdout, []step{
		{r.describeCreate, r.create},
		{r.describeAttach, r.attach},
		{r.describeFormat, r.format},
		{func() string { return "luksDump " + r.device }, r.dump},
		{func() string { return fmt.Sprintf("luksOpen %s %s", r.device, c.name) }, r.open},
		{func() string { return strings.Join(append(append([]string{}, r.mkfsArgv...), r.mapper), " ") }, r.mkfs},
		{func() string { return fmt.Sprintf("mount %s %s", r.mapper, c.mountPoint) }, r.mount},
		{fixed("disable boot-time unlock (root " + c.root + ")"), r.disableBootUnlock},
		{fixed("cryptsetup status " + c.name), r.status},
	})
	if err != nil {
		r.cleanup(ctx)
		return err
	}
	fmt.Fprintf(a.stdout, "Done: %s is mounted at %s.\n", r.mapper, c.mountPoint)
	if r.created {
		// Finished: the next setup with the same parameters makes a new volume.
		a.dropCreationToken("setup", r.instanceID, c.name, c.mountPoint, c.sizeGiB, c.volumeType, r.zone)
	}
	if r.volumeID != "" {
		fmt.Fprintf(a.stdout, "After a reboot run: encrypted-volume unlock --volume-id %s --name %s --mount-point %s%s\n",
			r.volumeID, c.name, c.mountPoint, serviceFlags(c.services))
	}
	return nil
}

// preflight checks what the flags alone cannot tell (validate() did the rest): the kernel
// can map the volume, step 8 will find a boot configuration to edit (without it the next
// boot may wait forever for the passphrase), the mapping name and the mount point are free,
// and a --device is there, unused and blank. All of it before the passphrase prompt and
// before EC2 is asked for anything: a refusal at step 5 or 7 would come after a volume was
// created, attached and formatted.
func (a *app) preflight(ctx context.Context, c *config) error {
	if err := a.local.DeviceMapper(); err != nil {
		if errors.Is(err, errNoPermission) {
			return err // exit 2, as cryptsetup run by a non-root user
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := a.boot.Check(c.root); err != nil {
		return fmt.Errorf("%w: --root %s: %v", errUsage, c.root, err)
	}
	for _, name := range c.services {
		s, err := detectService(c.root, name)
		if err != nil {
			return fmt.Errorf("%w: --service %s: %v", errUsage, name, err)
		}
		if s.init == initSysV {
			if _, err := sysvPlan(c.root, s); err != nil {
				return fmt.Errorf("%w: --service %s: %v", errUsage, name, err)
			}
		}
	}
	if dev, ok, err := a.local.MappingDevice(c.name); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("--name: mapping %s already exists (on %s): %w", c.name, dev, errBusy)
	}
	mounts, err := a.local.Mounts()
	if err != nil {
		return err
	}
	if err := mountPointFree(mounts, c.mountPoint); err != nil {
		return err
	}
	if c.device != "" {
		return preflightDevice(ctx, c.device, c.force)
	}
	return nil
}

// preflightDevice refuses a --device that is missing, in use (mounted, mapped: O_EXCL on a
// block device fails with EBUSY) or holding data without --force.
func preflightDevice(ctx context.Context, device string, force bool) error {
	if _, err := statBlock(device); err != nil {
		return err
	}
	f, err := os.OpenFile(device, os.O_RDWR|os.O_EXCL, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return deviceErr(device, err)
		}
		return coded(fmt.Errorf("%s: %w", device, err), errBusy)
	}
	f.Close()
	what, err := probePath(ctx, device)
	if err != nil {
		return fmt.Errorf("%s: %w", device, err)
	}
	if what != "" && !force {
		return fmt.Errorf("%s already holds a %s; refusing to format it without --force: %w", device, what, errAlreadyUsed)
	}
	return nil
}

func (r *setupRun) wipe() {
	clear(r.pass)
	if r.vk != nil {
		r.vk.Wipe()
		r.vk = nil
	}
}

func (r *setupRun) describeCreate() string {
	if r.c.device != "" || r.c.volumeID != "" {
		return "create EBS volume"
	}
	return fmt.Sprintf("create EBS volume (%d GiB %s in %s)", r.c.sizeGiB, r.c.volumeType, r.zone)
}

func (r *setupRun) create(ctx context.Context) error {
	switch {
	case r.c.device != "":
		return skip("using --device %s", r.c.device)
	case r.volumeID != "":
		return skip("using existing volume %s", r.volumeID)
	}
	name, resumed, err := r.a.creationToken("setup", r.instanceID, r.c.name, r.c.mountPoint, r.c.sizeGiB, r.c.volumeType, r.zone)
	if err != nil {
		return err
	}
	if resumed {
		fmt.Fprintf(r.a.stdout, "    continuing an unfinished setup with the same parameters (%s)\n", r.a.tokenPath("setup", r.instanceID, r.c.name, r.c.mountPoint, r.c.sizeGiB, r.c.volumeType, r.zone))
	}
	id, err := r.cl.Create(ctx, r.zone, r.c.sizeGiB, r.c.volumeType, name)
	if id != "" {
		// Even a failed wait leaves a volume to account for in the cleanup note.
		r.volumeID, r.created = id, true
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(r.a.stdout, "    VOLUME %s %d %s available\n", r.volumeID, r.c.sizeGiB, r.zone)
	return nil
}

func (r *setupRun) describeAttach() string {
	switch {
	case r.c.device != "":
		return "attach the volume and resolve its local device"
	case r.cl == nil:
		return fmt.Sprintf("resolve the local device of %s (--no-aws: by NVMe serial)", r.volumeID)
	default:
		return fmt.Sprintf("attach %s to %s and resolve its local device", r.volumeID, r.instanceID)
	}
}

func (r *setupRun) attach(ctx context.Context) error {
	if r.c.device != "" {
		if _, err := statBlock(r.c.device); err != nil {
			return err
		}
		return skip("using --device %s", r.c.device)
	}
	if r.cl != nil {
		dev, ok, err := r.cl.Attachment(ctx, r.volumeID)
		if err != nil {
			return err
		}
		if ok {
			r.ec2Device = dev
			fmt.Fprintf(r.a.stdout, "    already attached as %s\n", dev)
		} else {
			r.attachTried = true
			if r.ec2Device, err = r.cl.Attach(ctx, r.volumeID, r.c.attachAs); err != nil {
				return err
			}
			r.attached = true
			fmt.Fprintf(r.a.stdout, "    ATTACHMENT %s %s %s attached\n", r.volumeID, r.instanceID, r.ec2Device)
		}
	}
	dev, err := r.a.waitDevice(ctx, r.c, r.volumeID, r.ec2Device)
	if err != nil {
		return err
	}
	r.device = dev
	fmt.Fprintf(r.a.stdout, "    local device: %s\n", r.device)
	return nil
}

func (r *setupRun) describeFormat() string {
	if r.c.luksType == "luks2" {
		return fmt.Sprintf("luksFormat %s (LUKS2, %s, %d-bit, %s)", r.device, r.c.cipher, r.c.keySize, firstNonEmpty(r.c.pbkdf, luks.KDFArgon2id))
	}
	return fmt.Sprintf("luksFormat %s (%s, %d-bit, %s)", r.device, r.c.cipher, r.c.keySize, r.c.hash)
}

func (r *setupRun) format(ctx context.Context) error {
	what, err := probePath(ctx, r.device)
	if err != nil {
		return fmt.Errorf("%s: %w", r.device, err)
	}
	if what != "" {
		if !r.c.force {
			return fmt.Errorf("%s already holds a %s; refusing to format it without --force: %w", r.device, what, errAlreadyUsed)
		}
		fmt.Fprintf(r.a.stdout, "    %s holds a %s; formatting anyway (--force)\n", r.device, what)
	}
	if err := confirm(ctx, r.a.term, r.a.stdout, r.c.batch, fmt.Sprintf("This will overwrite data on %s irrevocably.", r.device)); err != nil {
		return err
	}
	ko := r.c.keyslotOptions()
	r.hdr, r.vk, err = luksFormat(ctx, r.device, r.pass, formatSpec{
		luks2: r.c.luksType == "luks2",
		v1: luks.FormatOptions{
			Cipher: r.c.cipher, KeySize: r.c.keySize, Hash: r.c.hash,
			IterTime: r.c.iterTime, ForceIterations: uint32(r.c.forceIterations),
		},
		v2: luks.LUKS2FormatOptions{
			Cipher: r.c.cipher, KeySize: r.c.keySize, Hash: r.c.hash, PBKDF: ko.PBKDF,
			IterTime: ko.IterTime, ForceIterations: ko.ForceIterations, Memory: ko.Memory, Parallel: ko.Parallel,
		},
	})
	// The mapping is opened with the volume key just made: the passphrase is no longer
	// needed for the rest of the run.
	clear(r.pass)
	return err
}

func (r *setupRun) dump(ctx context.Context) error { return r.hdr.Dump(r.a.stdout, r.device) }

func (r *setupRun) open(ctx context.Context) error {
	if dev, ok, err := r.a.local.MappingDevice(r.c.name); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("mapping %s already exists (on %s): %w", r.c.name, dev, errBusy)
	}
	m, err := r.a.local.OpenWithKey(ctx, r.device, r.c.name, r.hdr, r.vk)
	r.vk.Wipe()
	r.vk = nil
	if err != nil {
		return err
	}
	r.mapper = m
	return nil
}

func (r *setupRun) mkfs(ctx context.Context) error {
	return r.a.local.Mkfs(ctx, r.mkfsArgv, r.mapper, r.a.stdout, r.a.stderr)
}

func (r *setupRun) mount(ctx context.Context) error {
	if err := r.a.mountChecked(r.mapper, r.c.mountPoint); err != nil {
		return err
	}
	r.mounted = true
	return nil
}

func (r *setupRun) disableBootUnlock(ctx context.Context) error {
	if err := r.a.boot.Disable(ctx, r.c.root, bootVolume{Name: r.c.name, LUKSUUID: headerUUID(r.hdr), MountPoint: r.c.mountPoint}, r.a.stdout); err != nil {
		return err
	}
	// The services wait for the mount from the next boot on: without it an application
	// would start on the empty mount point of the root volume and write plaintext there.
	for _, s := range r.c.services {
		if err := gateService(r.c.root, s, r.c.mountPoint, r.a.stdout); err != nil {
			return err
		}
	}
	return nil
}

func (r *setupRun) status(ctx context.Context) error {
	return r.a.local.MappingStatus(r.a.stdout, r.c.name)
}

// cleanup undoes the local state this run created, newest first, so nothing is left open,
// and says what is left in EC2.
func (r *setupRun) cleanup(ctx context.Context) {
	a, c := r.a, r.c
	if r.mounted {
		if err := a.local.Unmount(c.mountPoint); err != nil {
			fmt.Fprintf(a.stderr, "cleanup: unmount %s: %v\n", c.mountPoint, err)
		} else {
			fmt.Fprintf(a.stdout, "Cleanup: unmounted %s\n", c.mountPoint)
		}
	}
	if r.mapper != "" {
		if err := a.local.Close(context.WithoutCancel(ctx), c.name); err != nil {
			fmt.Fprintf(a.stderr, "cleanup: close %s: %v\n", c.name, err)
		} else {
			fmt.Fprintf(a.stdout, "Cleanup: closed %s\n", c.name)
		}
	}
	if r.hdr != nil {
		fmt.Fprintf(a.stdout, "Note: %s now holds a LUKS header; run setup again with --force to reformat it.\n", r.device)
	}
	// Only a volume this run created is offered for deletion: one given with --volume-id
	// may hold the operator's data (setup may have refused to format it). A failed attach
	// may still have left an attachment (interrupted wait, failed roll-back); teardown
	// detaches it if so and skips the detach if not.
	state := "is not attached"
	switch {
	case r.attached:
		state = "stays attached"
	case r.attachTried:
		state = "may be attached (the attach failed, but EC2 may have made it)"
	}
	switch {
	case r.created:
		fmt.Fprintf(a.stdout, "Note: volume %s (created by this run) %s; remove it with: encrypted-volume teardown --volume-id %s --delete\n", r.volumeID, state, r.volumeID)
	case r.attached || r.attachTried:
		fmt.Fprintf(a.stdout, "Note: volume %s %s; detach it with: encrypted-volume teardown --volume-id %s --detach\n", r.volumeID, state, r.volumeID)
	}
}

func mapperPath(name string) string { return "/dev/mapper/" + name }

func (a *app) passSource(ctx context.Context, c *config) passSource {
	return passSource{ctx: ctx, keyFile: c.keyFile, stdin: a.stdin, term: a.term, prompt: a.stdout}
}

// mountChecked refuses a mount point that already has something mounted on it (mounting
// over it would hide that filesystem and make teardown ambiguous), creates the directory
// like the seed's mkdir, and mounts.
func (a *app) mountChecked(source, target string) error {
	mounts, err := a.local.Mounts()
	if err != nil {
		return err
	}
	if err := mountPointFree(mounts, target); err != nil {
		return err
	}
	if err := os.MkdirAll(target, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("mount point: %w", err)
	}
	return a.local.Mount(source, target)
}

func mountPointFree(mounts []mountEntry, target string) error {
	for _, m := range mounts {
		if filepath.Clean(m.MountPoint) == filepath.Clean(target) {
			return fmt.Errorf("mount point %s is busy: %s is already mounted there: %w", target, m.Source, errBusy)
		}
	}
	return nil
}
