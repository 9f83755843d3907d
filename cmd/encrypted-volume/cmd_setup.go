package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// setup automates the seed walkthrough's nine steps.
func (a *app) setup(ctx context.Context, c *config) error {
	var (
		cl          cloud
		instanceID  string
		zone        = c.zone
		volumeID    = c.volumeID
		reqDevice   string // name EC2 recorded for the attachment
		device      = c.device
		created     bool
		attachTried bool // Attach was called: even a failed one may leave an attachment (Ctrl-C during the wait)
		attached    bool
		fmtd        formatted
		mapper      string
		mounted     bool
	)
	if !c.noAWS && c.device == "" {
		var err error
		if cl, err = a.newCloud(ctx, c); err != nil {
			return fmt.Errorf("EC2: %w", err)
		}
		if instanceID, zone, err = cl.Placement(ctx); err != nil {
			return fmt.Errorf("instance metadata: %w", err)
		}
		if c.zone != "" {
			zone = c.zone
		}
	}
	mkfsArgv, _ := splitWords(c.mkfs) // validated by parseFlags

	// The passphrase is collected before anything changes, so a typo at the prompt leaves
	// no volume behind.
	label := "the new volume"
	switch {
	case device != "":
		label = device
	case volumeID != "":
		label = volumeID
	}
	pass, err := a.passSource(c).read(label, true)
	if err != nil {
		return err
	}
	defer clear(pass)

	defer func() {
		if fmtd != nil {
			fmtd.Wipe()
		}
	}()

	keyBits := c.keySize
	steps := []step{
		{fixed(describeCreate(c, zone)), func(ctx context.Context) error {
			switch {
			case c.device != "":
				return skip("using --device %s", c.device)
			case volumeID != "":
				return skip("using existing volume %s", volumeID)
			case cl == nil:
				return fmt.Errorf("%w: --no-aws without --volume-id or --device", errUsage)
			}
			id, err := cl.Create(ctx, zone, c.sizeGiB, c.volumeType)
			if id != "" {
				// Even a failed wait leaves a volume to account for in the cleanup note.
				volumeID, created = id, true
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "    VOLUME %s %d %s available\n", volumeID, c.sizeGiB, zone)
			return nil
		}},
		{func() string { return describeAttach(c, volumeID, instanceID) }, func(ctx context.Context) error {
			if c.device != "" {
				return skip("using --device %s", c.device)
			}
			if cl != nil {
				dev, ok, err := cl.Attachment(ctx, volumeID)
				if err != nil {
					return err
				}
				if ok {
					reqDevice = dev
					fmt.Fprintf(a.stdout, "    already attached as %s\n", dev)
				} else {
					attachTried = true
					if reqDevice, err = cl.Attach(ctx, volumeID, c.attachAs); err != nil {
						return err
					}
					attached = true
					fmt.Fprintf(a.stdout, "    ATTACHMENT %s %s %s attached\n", volumeID, instanceID, reqDevice)
				}
			}
			dev, err := a.local.ResolveDevice(ctx, volumeID, reqDevice)
			if err != nil {
				return err
			}
			device = dev
			fmt.Fprintf(a.stdout, "    local device: %s\n", device)
			return nil
		}},
		{func() string {
			return fmt.Sprintf("luksFormat %s (%s, %d-bit, %s)", device, c.cipher, keyBits, c.hash)
		}, func(ctx context.Context) error {
			what, err := a.local.Probe(ctx, device)
			if err != nil {
				return fmt.Errorf("%s: %w", device, err)
			}
			if what != "" {
				if !c.force {
					return fmt.Errorf("%s already holds a %s; refusing to format it without --force: %w", device, what, errAlreadyUsed)
				}
				fmt.Fprintf(a.stdout, "    %s holds a %s; formatting anyway (--force)\n", device, what)
			}
			if err := confirm(a.term, a.stdout, c.batch, fmt.Sprintf("This will overwrite data on %s irrevocably.", device)); err != nil {
				return err
			}
			fmtd, err = a.local.Format(ctx, device, pass, formatSpec{
				Cipher: c.cipher, KeyBits: keyBits, Hash: c.hash,
				IterTime: c.iterTime, ForceIterations: uint32(c.forceIterations),
			})
			// The mapping is opened with the volume key just made: the passphrase is no
			// longer needed for the rest of the run.
			clear(pass)
			return err
		}},
		{func() string { return "luksDump " + device }, func(ctx context.Context) error {
			return fmtd.Dump(a.stdout)
		}},
		{func() string { return fmt.Sprintf("luksOpen %s %s", device, c.name) }, func(ctx context.Context) error {
			if dev, ok, err := a.local.MappingDevice(c.name); err != nil {
				return err
			} else if ok {
				return fmt.Errorf("mapping %s already exists (on %s): %w", c.name, dev, errBusy)
			}
			m, err := a.local.OpenFormatted(ctx, device, c.name, fmtd)
			if err != nil {
				return err
			}
			mapper = m
			fmtd.Wipe()
			return nil
		}},
		{func() string { return strings.Join(append(append([]string{}, mkfsArgv...), mapperPath(c.name)), " ") }, func(ctx context.Context) error {
			return a.local.Mkfs(ctx, mkfsArgv, mapper, a.stdout, a.stderr)
		}},
		{func() string { return fmt.Sprintf("mount %s %s", mapperPath(c.name), c.mountPoint) }, func(ctx context.Context) error {
			if err := a.mountChecked(mapper, c.mountPoint); err != nil {
				return err
			}
			mounted = true
			return nil
		}},
		{fixed("disable boot-time unlock (root " + c.root + ")"), func(ctx context.Context) error {
			return a.boot.Disable(ctx, c.root, bootVolume{Name: c.name, LUKSUUID: fmtd.UUID(), MountPoint: c.mountPoint}, a.stdout)
		}},
		{fixed("cryptsetup status " + c.name), func(ctx context.Context) error {
			return a.local.MappingStatus(a.stdout, c.name)
		}},
	}
	err = runSteps(ctx, a.stdout, steps)
	if err == nil {
		fmt.Fprintf(a.stdout, "Done: %s is mounted at %s.\n", mapperPath(c.name), c.mountPoint)
		if volumeID != "" {
			fmt.Fprintf(a.stdout, "After a reboot run: encrypted-volume unlock --volume-id %s --name %s --mount-point %s\n", volumeID, c.name, c.mountPoint)
		}
		return nil
	}
	// Undo the local state this run created, newest first, so nothing is left open.
	if mounted {
		if uerr := a.local.Unmount(c.mountPoint); uerr != nil {
			fmt.Fprintf(a.stderr, "cleanup: unmount %s: %v\n", c.mountPoint, uerr)
		} else {
			fmt.Fprintf(a.stdout, "Cleanup: unmounted %s\n", c.mountPoint)
		}
	}
	if mapper != "" {
		if cerr := a.local.Close(context.WithoutCancel(ctx), c.name); cerr != nil {
			fmt.Fprintf(a.stderr, "cleanup: close %s: %v\n", c.name, cerr)
		} else {
			fmt.Fprintf(a.stdout, "Cleanup: closed %s\n", c.name)
		}
	}
	if fmtd != nil {
		fmt.Fprintf(a.stdout, "Note: %s now holds a LUKS header; run setup again with --force to reformat it.\n", device)
	}
	// Only a volume this run created is offered for deletion: one given with --volume-id
	// may hold the operator's data (setup may have refused to format it). A failed attach
	// may still have left an attachment (interrupted wait, failed roll-back); teardown
	// detaches it if so and skips the detach if not.
	state := "is not attached"
	switch {
	case attached:
		state = "stays attached"
	case attachTried:
		state = "may be attached (the attach failed, but EC2 may have made it)"
	}
	switch {
	case created:
		fmt.Fprintf(a.stdout, "Note: volume %s (created by this run) %s; remove it with: encrypted-volume teardown --volume-id %s --delete\n", volumeID, state, volumeID)
	case attached || attachTried:
		fmt.Fprintf(a.stdout, "Note: volume %s %s; detach it with: encrypted-volume teardown --volume-id %s --detach\n", volumeID, state, volumeID)
	}
	return err
}

func describeCreate(c *config, zone string) string {
	if c.device != "" || c.volumeID != "" {
		return "create EBS volume"
	}
	return fmt.Sprintf("create EBS volume (%d GiB %s in %s)", c.sizeGiB, c.volumeType, zone)
}

func describeAttach(c *config, volumeID, instanceID string) string {
	switch {
	case c.device != "":
		return "attach the volume and resolve its local device"
	case c.noAWS:
		return fmt.Sprintf("resolve the local device of %s (--no-aws: by NVMe serial)", volumeID)
	default:
		return fmt.Sprintf("attach %s to %s and resolve its local device", volumeID, instanceID)
	}
}

func mapperPath(name string) string { return "/dev/mapper/" + name }

func (a *app) passSource(c *config) passSource {
	return passSource{keyFile: c.keyFile, stdin: a.stdin, term: a.term, prompt: a.stdout}
}

// mountChecked refuses a mount point that already has something mounted on it (mounting
// over it would hide that filesystem and make teardown ambiguous), creates the directory
// like the seed's mkdir, and mounts.
func (a *app) mountChecked(source, target string) error {
	mounts, err := a.local.Mounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if m.MountPoint == target {
			return fmt.Errorf("mount point %s is busy: %s is already mounted there: %w", target, m.Source, errBusy)
		}
	}
	if err := os.MkdirAll(target, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("mount point: %w", err)
	}
	return a.local.Mount(source, target)
}
