package main

import (
	"context"

	"github.com/cloudluks/cloudluks/ebs"
)

// list: ec2-describe-volumes [VOLUME_ID…] with tag filters; VOLUME, ATTACHMENT and TAG lines.
func cmdList(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("list", g)
	tags := tagFlag{}
	var o ebs.ListOptions
	fs.Var(tags, "tag", "only volumes with tag key=value (key= : any value; repeatable)")
	fs.StringVar(&o.InstanceID, "instance-id", "", "only volumes attached to this instance")
	ids, err := parse(fs, args, -1)
	if err != nil {
		return err
	}
	o.Tags, o.VolumeIDs = tags, ids
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	vols, err := c.List(ctx, o)
	if err != nil {
		return err
	}
	if g.output == "json" {
		if vols == nil {
			vols = []ebs.Volume{}
		}
		return g.json(vols)
	}
	for i := range vols {
		volumeLine(g.stdout, &vols[i])
		for j := range vols[i].Attachments {
			attachmentLine(g.stdout, &vols[i].Attachments[j])
		}
		tagLines(g.stdout, &vols[i])
	}
	return nil
}
