package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// teardown is the seed's step 9 "unmount and fully detach", extended by --detach/--delete.
// Every step is idempotent: what is already gone is skipped, so teardown also cleans up
// after a failed setup or unlock.
func (a *app) teardown(ctx context.Context, c *config) error {
	// A --service that is not there is refused before the first step: found only in the
	// last one, it would fail after the volume was unmounted, closed, detached and deleted.
	for _, s := range c.services {
		if _, err := detectService(c.root, s); err != nil {
			return fmt.Errorf("%w: --service %s: %v", errUsage, s, err)
		}
	}
	var cl cloud
	if c.detach {
		var err error
		if cl, err = a.newCloud(ctx, c); err != nil {
			return fmt.Errorf("EC2: %w", err)
		}
	}
	steps := []step{
		{fixed("umount " + c.mountPoint), func(ctx context.Context) error {
			mounts, err := a.local.Mounts()
			if err != nil {
				return err
			}
			target, ok := findOurMount(mounts, c.mountPoint, c.name)
			if !ok {
				return skip("nothing from %s is mounted", mapperPath(c.name))
			}
			return a.local.Unmount(target)
		}},
		{fixed("luksClose " + c.name), func(ctx context.Context) error {
			_, ok, err := a.local.MappingDevice(c.name)
			if err != nil {
				return err
			}
			if !ok {
				return skip("no mapping named %s", c.name)
			}
			return a.local.Close(ctx, c.name)
		}},
		{fixed("detach " + orNone(c.volumeID)), func(ctx context.Context) error {
			if !c.detach {
				return skip("no --detach")
			}
			if err := a.refuseInUse(ctx, cl, c.volumeID); err != nil {
				return err
			}
			return goneIsDone(cl.Detach(ctx, c.volumeID), c.volumeID)
		}},
		{fixed("delete " + orNone(c.volumeID)), func(ctx context.Context) error {
			if !c.delete {
				return skip("no --delete")
			}
			return goneIsDone(cl.Delete(ctx, c.volumeID), c.volumeID)
		}},
	}
	if sc := a.scratchTeardownSteps(c); sc != nil {
		steps = append(sc, steps[2:]...) // swap/tmp: swapoff or umount, close, boot lines out
	}
	if len(c.services) > 0 {
		steps = append(steps, step{fixed("let " + strings.Join(c.services, ", ") + " start at boot again"), func(ctx context.Context) error {
			for _, s := range c.services {
				if err := ungateService(c.root, s, a.stdout); err != nil {
					return err
				}
			}
			return nil
		}})
	}
	if err := runSteps(ctx, a.stdout, steps); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "Done.")
	return nil
}

// refuseInUse stops a detach of a volume whose block device this machine still uses (a
// mapping or a mount under another --name or --mount-point than teardown was given):
// detaching it would leave the attachment "busy", or on Nitro pull the disk from under a
// mounted filesystem. A volume with no device here (attached elsewhere, gone) passes.
func (a *app) refuseInUse(ctx context.Context, cl cloud, volumeID string) error {
	_, ok, err := cl.Attachment(ctx, volumeID)
	if err != nil || !ok {
		return nil // not attached here: the detach step says what it finds
	}
	dev, users, err := a.local.DeviceUsers(ctx, volumeID)
	if err != nil {
		return err
	}
	if users != "" {
		return coded(fmt.Errorf("%s (%s) is still in use on this instance: %s; unmount and close it first (are --name and --mount-point right?)",
			volumeID, dev, users), errBusy)
	}
	return nil
}

// goneIsDone turns "the volume does not exist" into a skip: a second teardown --delete (or
// one after the volume was deleted elsewhere) has nothing left to do.
func goneIsDone(err error, volumeID string) error {
	if errors.Is(err, errVolumeGone) {
		return skip("volume %s does not exist (already deleted)", volumeID)
	}
	return err
}

func orNone(s string) string {
	if s == "" {
		return "(no --volume-id)"
	}
	return s
}

// findOurMount returns the mount point to unmount: the one where our mapping is mounted.
// A mount at --mount-point of something else is left alone.
func findOurMount(mounts []mountEntry, mountPoint, name string) (string, bool) {
	var found string
	for _, m := range mounts {
		if isOurSource(m.Source, name) {
			found = m.MountPoint
			if m.MountPoint == mountPoint {
				return found, true
			}
		}
	}
	return found, found != ""
}

func isOurSource(source, name string) bool {
	return source == mapperPath(name)
}
