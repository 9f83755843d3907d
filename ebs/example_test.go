package ebs_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/cloudluks/cloudluks/ebs"
)

// The seed walkthrough's steps 1 and 2 on the instance itself: create a 10 GiB volume in
// this instance's zone, attach it at a free name, find its block device; later detach and
// delete it.
func Example() {
	ctx := context.Background()
	cfg, err := ebs.LoadDefaultConfig(ctx) // AWS_REGION or the instance's region
	if err != nil {
		log.Fatal(err)
	}
	c := ebs.NewFromConfig(cfg, ebs.Options{
		Progress: func(e ebs.Event) { log.Println(e.Op, e.VolumeID, e.State, e.Message) },
	})

	vol, err := c.Create(ctx, ebs.CreateOptions{Name: "mysql-data", SizeGiB: 10, Type: "gp3"})
	if err != nil {
		log.Fatal(err)
	}
	if vol, err = c.WaitAvailable(ctx, vol.ID); err != nil {
		log.Fatal(err)
	}
	att, err := c.Attach(ctx, vol.ID, ebs.AttachOptions{}) // this instance, first free /dev/sd[f-p]
	if err != nil {
		log.Fatal(err)
	}
	dev, err := c.LocalDevice(ctx, vol.ID) // /dev/xvdf, /dev/nvme1n1, …
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(vol.ID, att.Device, dev)

	// … luksFormat dev, open, mkfs, mount …

	if err := c.Detach(ctx, vol.ID, ebs.DetachOptions{}); err != nil {
		log.Fatal(err)
	}
	if err := c.Delete(ctx, vol.ID, ebs.DeleteOptions{}); err != nil {
		log.Fatal(err)
	}
}

// ResolveDevice finds an NVMe-attached volume by the serial its controller reports.
func ExampleResolveDevice() {
	root, err := os.MkdirTemp("", "resolve")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	// A fake /sys and /dev with one namespace, as a Nitro instance shows an EBS volume.
	sys, dev := filepath.Join(root, "sys"), filepath.Join(root, "dev")
	_ = os.MkdirAll(filepath.Join(sys, "block", "nvme1n1", "device"), 0o755)
	_ = os.WriteFile(filepath.Join(sys, "block", "nvme1n1", "device", "serial"), []byte("vol0123456789abcdef0\n"), 0o644)
	_ = os.MkdirAll(dev, 0o755)
	_ = os.WriteFile(filepath.Join(dev, "nvme1n1"), nil, 0o644)

	path, err := ebs.ResolveDevice(context.Background(), "vol-0123456789abcdef0", "/dev/sdf",
		ebs.ResolveOptions{SysRoot: sys, DevRoot: dev})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(filepath.Base(path))
	// Output: nvme1n1
}
