package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudluks/cloudluks/ebs"
)

// shortDeviceWait is how long setup and unlock wait for the device with --no-aws, where no
// attachment is known: the node should be there already.
const shortDeviceWait = 3 * time.Second

// defaultDeviceWait is --wait whenever EC2 reports the attachment, ec2volume device's
// default: a volume attached just before the run (by the operator, or a setup that failed
// in its attach step) can still be minutes from its node.
const defaultDeviceWait = ebs.DefaultDeviceTimeout

// waitProgressEvery is the interval of the "waiting for … to appear" lines.
const waitProgressEvery = 10 * time.Second

// waitDevice finds the local block device of volumeID: right after an attach the node can
// take a minute or more to appear, so it waits (--wait, default 2 minutes when EC2 reports
// the attachment, whether this run made it or not, and 3 seconds with --no-aws) and says on
// stderr what it is waiting for, as
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
	dev, err := a.local.WaitDevice(ctx, volumeID, ec2Device, wait, func(waited time.Duration) {
		fmt.Fprintf(a.stderr, "waiting for %s to appear as a block device (%s): %s of %s…\n",
			volumeID, what, waited.Round(time.Second), wait)
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil || errors.Is(err, errDeviceMissing) {
			return "", coded(fmt.Errorf("%s: no block device appeared within %s (%s; --wait to wait longer): %w",
				volumeID, wait, what, err), errDeviceMissing)
		}
		return "", err
	}
	return dev, nil
}

// whileTicking runs fn and, every interval until it returns, calls progress with the time
// waited so far.
func whileTicking[T any](every time.Duration, progress func(time.Duration), fn func() (T, error)) (T, error) {
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
				progress(now.Sub(start))
			}
		}
	}()
	v, err := fn()
	close(done)
	<-stopped // no progress line after the answer
	return v, err
}

// xenName is the name a Xen instance shows for an EC2 device name: /dev/sdf → /dev/xvdf.
func xenName(ec2Device string) string {
	if rest, ok := strings.CutPrefix(ec2Device, "/dev/sd"); ok {
		return "/dev/xvd" + rest
	}
	return ec2Device
}
