package main

import (
	"context"

	"github.com/cloudluks/cloudluks/ebs"
)

// delete: ec2-delete-volume VOLUME; refuses an attached volume unless --detach.
func cmdDelete(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("delete", g)
	var o ebs.DeleteOptions
	fs.BoolVar(&o.Detach, "detach", false, "detach first if attached")
	fs.BoolVar(&o.Force, "force", false, "force that detach (may corrupt the file system)")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	if err := c.Delete(ctx, pos[0], o); err != nil {
		return err
	}
	if g.output == "json" {
		return g.json(map[string]string{"volumeId": pos[0], "state": ebs.StateDeleted})
	}
	line(g.stdout, "VOLUME", pos[0])
	return nil
}
