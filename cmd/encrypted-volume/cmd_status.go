package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// statusResolveTimeout bounds status's look for the local device.
const statusResolveTimeout = 3 * time.Second

// status answers the four questions of the issue: attached? opened? mounted? boot-time
// unlock disabled?
func (a *app) status(ctx context.Context, c *config) error {
	w := a.stdout
	// Attached.
	var reqDevice string
	switch {
	case c.volumeID == "":
		fmt.Fprintln(w, "volume:    (no --volume-id)")
	case c.noAWS:
		fmt.Fprintf(w, "volume:    %s (EC2 not asked: --no-aws)\n", c.volumeID)
	default:
		cl, err := a.newCloud(ctx, c)
		if err != nil {
			return fmt.Errorf("EC2: %w", err)
		}
		dev, ok, err := cl.Attachment(ctx, c.volumeID)
		if err != nil {
			return err
		}
		if ok {
			reqDevice = dev
			fmt.Fprintf(w, "volume:    %s attached to this instance as %s\n", c.volumeID, dev)
		} else {
			fmt.Fprintf(w, "volume:    %s not attached to this instance\n", c.volumeID)
		}
	}
	if c.device != "" || c.volumeID != "" {
		// status reports, it does not wait: an attached volume's node is there already (the
		// resolver alone would wait minutes for one that is not, e.g. off the instance).
		rctx, cancel := context.WithTimeout(ctx, statusResolveTimeout)
		dev, err := a.local.ResolveDevice(rctx, c.volumeID, firstNonEmpty(c.device, reqDevice))
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				err = fmt.Errorf("no block device for it appeared within %v", statusResolveTimeout)
			}
			fmt.Fprintf(w, "device:    not found (%v)\n", err)
		} else {
			what, _ := a.local.Probe(ctx, dev)
			fmt.Fprintf(w, "device:    %s (%s)\n", dev, firstNonEmpty(what, "no known signature"))
		}
	}
	// Opened.
	if dev, ok, err := a.local.MappingDevice(c.name); err != nil {
		fmt.Fprintf(w, "mapping:   %s: %v\n", c.name, err)
	} else if ok {
		fmt.Fprintf(w, "mapping:   %s open on %s\n", c.name, dev)
		if err := a.local.MappingStatus(w, c.name); err != nil {
			fmt.Fprintf(w, "           (status: %v)\n", err)
		}
	} else {
		fmt.Fprintf(w, "mapping:   %s is not open\n", c.name)
	}
	// Mounted.
	mounts, err := a.local.Mounts()
	if err != nil {
		return err
	}
	if mp, ok := findOurMount(mounts, c.mountPoint, c.name); ok {
		fmt.Fprintf(w, "mounted:   %s on %s\n", mapperPath(c.name), mp)
	} else {
		fmt.Fprintf(w, "mounted:   no (%s is not mounted)\n", mapperPath(c.name))
	}
	// Boot.
	disabled, detail, err := a.boot.Status(c.root, bootVolume{Name: c.name, MountPoint: c.mountPoint})
	switch {
	case err != nil:
		fmt.Fprintf(w, "boot:      unknown (%v)\n", err)
	case disabled:
		fmt.Fprintf(w, "boot:      boot-time unlock disabled (%s)\n", detail)
	default:
		fmt.Fprintf(w, "boot:      boot-time unlock NOT disabled (%s)\n", detail)
	}
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
