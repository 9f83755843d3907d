package main

import (
	"context"
	"fmt"

	"github.com/cloudluks/cloudluks/ebs"
)

// device: the local block device of an attached volume (/dev/xvdf, /dev/nvme1n1, …).
func cmdDevice(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("device", g)
	var ro ebs.ResolveOptions
	fs.StringVar(&ro.SysRoot, "sys-root", "/sys", "where sysfs is mounted (a rescue or chroot setup may differ)")
	fs.StringVar(&ro.DevRoot, "dev-root", "/dev", "where the device nodes are")
	fs.DurationVar(&ro.Timeout, "wait", ebs.DefaultDeviceTimeout, "how long to wait for the device node")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	g.resolve = ro
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	dev, err := c.LocalDevice(ctx, pos[0])
	if err != nil {
		return err
	}
	if g.output == "json" {
		return g.json(map[string]string{"volumeId": pos[0], "device": dev})
	}
	fmt.Fprintln(g.stdout, dev)
	return nil
}
