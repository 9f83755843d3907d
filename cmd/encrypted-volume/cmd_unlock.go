package main

import (
	"context"
	"fmt"
)

// unlock is what the operator runs after a reboot (the seed's luksOpen + mount + "make sure
// MySQL is running").
func (a *app) unlock(ctx context.Context, c *config) error {
	hooks, err := c.hookCommands(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	// The services start first, before the operator's hooks, once the volume is mounted.
	var starts [][]string
	for _, name := range c.services {
		s, err := detectService(c.root, name)
		if err != nil {
			return fmt.Errorf("%w: --service %s: %v", errUsage, name, err)
		}
		starts = append(starts, startCommand(c.root, s))
	}
	hooks = append(starts, hooks...)
	var (
		device = c.device
		mapper string
		pass   []byte
	)
	defer func() { clear(pass) }()
	steps := []step{
		{fixed("resolve the local device of " + orDevice(c)), func(ctx context.Context) error {
			if c.device != "" {
				_, err := statBlock(c.device)
				return err
			}
			var reqDevice string
			if !c.noAWS {
				cl, err := a.newCloud(ctx, c)
				if err != nil {
					return fmt.Errorf("EC2: %w", err)
				}
				dev, ok, err := cl.Attachment(ctx, c.volumeID)
				if err != nil {
					return err
				}
				if !ok {
					if dev, err = cl.Attach(ctx, c.volumeID, ""); err != nil {
						return err
					}
					fmt.Fprintf(a.stdout, "    attached %s as %s\n", c.volumeID, dev)
				}
				reqDevice = dev
			}
			dev, err := a.waitDevice(ctx, c, c.volumeID, reqDevice)
			if err != nil {
				return err
			}
			device = dev
			fmt.Fprintf(a.stdout, "    local device: %s\n", device)
			return nil
		}},
		{func() string { return fmt.Sprintf("luksOpen %s %s", device, c.name) }, func(ctx context.Context) error {
			if dev, ok, err := a.local.MappingDevice(c.name); err != nil {
				return err
			} else if ok {
				return fmt.Errorf("mapping %s already exists (on %s): %w", c.name, dev, errBusy)
			}
			var err error
			if pass, err = a.passSource(ctx, c).read(device, false); err != nil {
				return err
			}
			hdr, vk, err := luksUnlock(ctx, device, pass)
			clear(pass)
			if err != nil {
				return err
			}
			m, err := a.local.OpenWithKey(ctx, device, c.name, hdr, vk)
			vk.Wipe()
			if err != nil {
				return err
			}
			mapper = m
			return nil
		}},
		{func() string { return fmt.Sprintf("mount %s %s", mapper, c.mountPoint) }, func(ctx context.Context) error {
			return a.mountChecked(mapper, c.mountPoint)
		}},
		{fixed(fmt.Sprintf("post-mount hooks (%d)", len(hooks))), func(ctx context.Context) error {
			if len(hooks) == 0 {
				return skip("none configured")
			}
			return runHooks(ctx, hooks, childEnv(
				"ENCRYPTED_VOLUME_NAME="+c.name,
				"ENCRYPTED_VOLUME_MOUNT="+c.mountPoint,
				"ENCRYPTED_VOLUME_DEVICE="+mapper,
			), a.stdout, a.stderr)
		}},
	}
	err = runSteps(ctx, a.stdout, steps)
	if se, ok := err.(*stepError); ok && se.N == 3 && mapper != "" {
		// Mount failed: do not leave an open mapping behind. (A hook failure keeps the
		// volume mounted: the data is there, only the application start failed.)
		if cerr := a.local.Close(context.WithoutCancel(ctx), c.name); cerr != nil {
			fmt.Fprintf(a.stderr, "cleanup: close %s: %v\n", c.name, cerr)
		} else {
			fmt.Fprintf(a.stdout, "Cleanup: closed %s\n", c.name)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Done: %s is mounted at %s.\n", mapper, c.mountPoint)
	return nil
}

func orDevice(c *config) string {
	if c.device != "" {
		return c.device
	}
	return c.volumeID
}
