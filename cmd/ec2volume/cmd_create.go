package main

import (
	"context"
	"fmt"

	"github.com/cloudluks/cloudluks/ebs"
)

// create: ec2-create-volume --size 10 -z us-east-1c, then wait until available.
func cmdCreate(ctx context.Context, g *globals, args []string) error {
	fs := newFlags("create", g)
	var o ebs.CreateOptions
	tags := tagFlag{}
	var size, iops, throughput int
	var noWait bool
	fs.IntVar(&size, "size", 0, "size in GiB")
	fs.IntVar(&size, "s", 0, "size in GiB (short)")
	fs.StringVar(&o.AvailabilityZone, "availability-zone", "", "availability zone (default: this instance's)")
	fs.StringVar(&o.AvailabilityZone, "z", "", "availability zone (short)")
	fs.StringVar(&o.Type, "type", "", "volume type: gp2, gp3 (default), io1, io2, st1, sc1, standard")
	fs.IntVar(&iops, "iops", 0, "provisioned IOPS (gp3, io1, io2)")
	fs.IntVar(&throughput, "throughput", 0, "throughput in MiB/s (gp3)")
	fs.Var(tags, "tag", "tag key=value (repeatable)")
	fs.StringVar(&o.Name, "name", "", "creation name, also set as the Name tag: the same name always gives the same volume")
	fs.StringVar(&o.SnapshotID, "snapshot", "", "create from this snapshot")
	fs.BoolVar(&o.Encrypted, "encrypted", false, "also encrypt with EBS/KMS (off: the LUKS keys never leave the instance)")
	fs.StringVar(&o.KMSKeyID, "kms-key-id", "", "KMS key for --encrypted")
	fs.BoolVar(&noWait, "no-wait", false, "print the volume as created, do not wait until available")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	if size < 0 || size > 1<<31-1 || iops < 0 || iops > 1<<31-1 || throughput < 0 || throughput > 1<<31-1 {
		return fmt.Errorf("%w: size, IOPS and throughput must be positive numbers", errUsage)
	}
	o.SizeGiB, o.IOPS, o.Throughput = int32(size), int32(iops), int32(throughput)
	if len(tags) > 0 {
		o.Tags = tags
	}
	if err := o.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	v, err := c.Create(ctx, o)
	if err != nil {
		return err
	}
	if !noWait {
		if v, err = c.WaitAvailable(ctx, v.ID); err != nil {
			return err
		}
	}
	if g.output == "json" {
		return g.json(v)
	}
	volumeLine(g.stdout, v)
	return nil
}
