package main

import (
	"context"

	"github.com/cloudluks/cloudluks/ebs"
)

// detach: ec2-detach-volume VOLUME [--force], waiting for "detached".
func cmdDetach(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("detach", g)
	var o ebs.DetachOptions
	fs.StringVar(&o.InstanceID, "instance-id", "", "only the attachment to this instance")
	fs.BoolVar(&o.Force, "force", false, "force the detach (may corrupt the file system; unmount first)")
	fs.BoolVar(&o.Force, "f", false, "force (short)")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	before, err := c.Describe(ctx, pos[0])
	if err != nil {
		return err
	}
	if err := c.Detach(ctx, pos[0], o); err != nil {
		return err
	}
	// Report the attachment that went away (none: the volume was not attached).
	a := &ebs.Attachment{VolumeID: pos[0], InstanceID: o.InstanceID, State: ebs.AttachmentDetached}
	for _, x := range before.Attachments {
		if o.InstanceID == "" || x.InstanceID == o.InstanceID {
			x.State = ebs.AttachmentDetached
			a = &x
			break
		}
	}
	if g.output == "json" {
		return g.json(a)
	}
	attachmentLine(g.stdout, a)
	return nil
}
