package main

import (
	"context"

	"github.com/cloudluks/cloudluks/ebs"
)

// attach: ec2-attach-volume VOLUME -i INSTANCE -d DEVICE, waiting for "attached".
func cmdAttach(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("attach", g)
	var o ebs.AttachOptions
	fs.StringVar(&o.InstanceID, "instance-id", "", "instance (default: this one)")
	fs.StringVar(&o.InstanceID, "i", "", "instance (short)")
	fs.StringVar(&o.Device, "device", "", "device name, e.g. /dev/sdf, refused if the instance uses it (default: first free of /dev/sdf…/dev/sdp)")
	fs.StringVar(&o.Device, "d", "", "device name (short)")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	a, err := c.Attach(ctx, pos[0], o)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return g.json(a)
	}
	attachmentLine(g.stdout, a)
	return nil
}
