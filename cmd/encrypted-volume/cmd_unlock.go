package main

import (
	"context"
	"fmt"
)

// unlock is what the operator runs after a reboot (the seed's luksOpen + mount + "make sure
// MySQL is running").
func (a *app) unlock(ctx context.Context, c *config) error {
	hooks, err := a.unlockHooks(ctx, c)
	if err != nil {
		return err
	}
	device := c.device
	resolve := step{fixed("resolve the local device of " + orDevice(c)), func(ctx context.Context) error {
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
	}}
	open := func(ctx context.Context) (string, error) {
		pass, err := a.passSource(ctx, c).read(device, false)
		defer clear(pass)
		if err != nil {
			return "", err
		}
		hdr, vk, err := luksUnlock(ctx, device, pass)
		clear(pass)
		if err != nil {
			return "", err
		}
		defer vk.Wipe()
		return a.local.OpenWithKey(ctx, device, c.name, hdr, vk)
	}
	mapper, err := a.openMountHooks(ctx, c, hooks, []step{resolve},
		func() string { return fmt.Sprintf("luksOpen %s %s", device, c.name) }, open)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Done: %s is mounted at %s.\n", mapper, c.mountPoint)
	return nil
}

// unlockHooks is what runs once the volume is mounted: the --service starts first, then
// the operator's hooks. Everything is checked here, before anything is opened.
func (a *app) unlockHooks(ctx context.Context, c *config) ([][]string, error) {
	hooks, err := c.hookCommands(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	var starts [][]string
	for _, name := range c.services {
		s, err := detectService(c.root, name)
		if err != nil {
			return nil, fmt.Errorf("%w: --service %s: %v", errUsage, name, err)
		}
		starts = append(starts, startCommand(c.root, s))
	}
	return append(starts, hooks...), nil
}

// openMountHooks runs the steps before (finding the device), then open (which maps the
// volume and returns the mapper path), mount and the hooks, numbered on a.stdout. unlock and
// serve share it. A mount failure closes the mapping again; a hook failure keeps the
// volume mounted (the data is there, only the application start failed) and is returned
// as a *stepError for the hooks step.
func (a *app) openMountHooks(ctx context.Context, c *config, hooks [][]string, before []step,
	describeOpen func() string, open func(ctx context.Context) (string, error)) (string, error) {
	var mapper string
	steps := append(before,
		step{describeOpen, func(ctx context.Context) error {
			if dev, ok, err := a.local.MappingDevice(c.name); err != nil {
				return err
			} else if ok {
				return fmt.Errorf("mapping %s already exists (on %s): %w", c.name, dev, errBusy)
			}
			m, err := open(ctx)
			if err != nil {
				return err
			}
			mapper = m
			return nil
		}},
		step{func() string { return fmt.Sprintf("mount %s %s", mapper, c.mountPoint) }, func(ctx context.Context) error {
			return a.mountChecked(mapper, c.mountPoint)
		}},
		step{fixed(fmt.Sprintf("post-mount hooks (%d)", len(hooks))), func(ctx context.Context) error {
			if len(hooks) == 0 {
				return skip("none configured")
			}
			return runHooks(ctx, hooks, childEnv(
				"ENCRYPTED_VOLUME_NAME="+c.name,
				"ENCRYPTED_VOLUME_MOUNT="+c.mountPoint,
				"ENCRYPTED_VOLUME_DEVICE="+mapper,
			), a.stdout, a.stderr)
		}},
	)
	err := runSteps(ctx, a.stdout, steps)
	if se, ok := err.(*stepError); ok && se.N == len(before)+2 && mapper != "" {
		if cerr := a.local.Close(context.WithoutCancel(ctx), c.name); cerr != nil {
			fmt.Fprintf(a.stderr, "cleanup: close %s: %v\n", c.name, cerr)
		} else {
			fmt.Fprintf(a.stdout, "Cleanup: closed %s\n", c.name)
		}
	}
	return mapper, err
}

func orDevice(c *config) string {
	if c.device != "" {
		return c.device
	}
	return c.volumeID
}
