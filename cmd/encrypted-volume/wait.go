package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudluks/cloudluks/ebs"
)

// shortDeviceWait is how long setup and unlock wait for the device of a volume they did not
// just attach (--no-aws, or already attached): its node should be there already.
const shortDeviceWait = 3 * time.Second

// defaultDeviceWait is --wait after an attach, ec2volume device's default.
const defaultDeviceWait = ebs.DefaultDeviceTimeout

// waitProgressEvery is the interval of the "waiting for … to appear" lines (a variable so
// a test can see one without waiting ten seconds).
var waitProgressEvery = 10 * time.Second

// waitDevice finds the local block device of volumeID: right after an attach the node can
// take a minute or more to appear, so it waits (--wait, default 2 minutes after an attach
// and 3 seconds otherwise) and says on stderr what it is waiting for, as
// `ec2volume device --wait` does, instead of sitting silent.
func (a *app) waitDevice(ctx context.Context, c *config, volumeID, ec2Device string) (string, error) {
	wait := c.wait
	if wait == 0 {
		wait = shortDeviceWait
		if ec2Device != "" {
			wait = defaultDeviceWait
		}
	}
	what := "the NVMe disk with serial " + ebs.NVMeSerial(volumeID)
	if ec2Device != "" {
		what = fmt.Sprintf("%s as %s or %s", what, ec2Device, xenName(ec2Device))
	}
	every := waitProgressEvery
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		start := time.Now()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				fmt.Fprintf(a.stderr, "waiting for %s to appear as a block device (%s): %s of %s…\n",
					volumeID, what, now.Sub(start).Round(time.Second), wait)
			}
		}
	}()
	dev, err := a.local.WaitDevice(ctx, volumeID, ec2Device, wait)
	close(done)
	<-stopped
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil || errors.Is(err, errDeviceMissing) {
			return "", coded(fmt.Errorf("%s: no block device appeared within %s (%s; --wait to wait longer): %w",
				volumeID, wait, what, err), errDeviceMissing)
		}
		return "", err
	}
	return dev, nil
}

// xenName is the name a Xen instance shows for an EC2 device name: /dev/sdf → /dev/xvdf.
func xenName(ec2Device string) string {
	if rest, ok := strings.CutPrefix(ec2Device, "/dev/sd"); ok {
		return "/dev/xvd" + rest
	}
	return ec2Device
}
