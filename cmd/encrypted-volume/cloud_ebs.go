package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/cloudluks/cloudluks/ebs"
)

// ebsCloud adapts the ebs package. Instance and zone come from IMDS unless given as flags.
type ebsCloud struct {
	c          *ebs.Client
	instanceID string
	zone       string
}

// newEBSCloud loads the standard SDK configuration (AWS_ENDPOINT_URL_EC2,
// AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_REGION, credentials chain) and prints progress
// events as indented lines.
func newEBSCloud(progress io.Writer) func(ctx context.Context, c *config) (cloud, error) {
	return func(ctx context.Context, c *config) (cloud, error) {
		var opts []func(*awsconfig.LoadOptions) error
		if c.region != "" {
			opts = append(opts, awsconfig.WithRegion(c.region))
		}
		cfg, err := ebs.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, err
		}
		client := ebs.NewFromConfig(cfg, ebs.Options{Progress: func(e ebs.Event) {
			fmt.Fprintf(progress, "    %s\n", eventLine(e))
		}})
		return &ebsCloud{c: client, instanceID: c.instanceID, zone: c.zone}, nil
	}
}

func (e *ebsCloud) placement(ctx context.Context) error {
	if e.instanceID != "" && e.zone != "" {
		return nil
	}
	inst, err := e.c.Instance(ctx)
	if err != nil {
		return err
	}
	if e.instanceID == "" {
		e.instanceID = inst.ID
	}
	if e.zone == "" {
		e.zone = inst.AvailabilityZone
	}
	return nil
}

func (e *ebsCloud) Placement(ctx context.Context) (string, string, error) {
	if err := e.placement(ctx); err != nil {
		return "", "", err
	}
	return e.instanceID, e.zone, nil
}

func (e *ebsCloud) Create(ctx context.Context, zone string, sizeGiB int, volumeType, name string) (string, error) {
	v, err := e.c.Create(ctx, ebs.CreateOptions{
		Name:             name,
		SizeGiB:          int32(sizeGiB),
		AvailabilityZone: zone,
		Type:             volumeType,
		Tags:             map[string]string{"Name": "encrypted-volume"},
	})
	if err != nil {
		return "", err
	}
	if _, err := e.c.WaitAvailable(ctx, v.ID); err != nil {
		return v.ID, err
	}
	return v.ID, nil
}

func (e *ebsCloud) Attach(ctx context.Context, volumeID, want string) (string, error) {
	if err := e.placement(ctx); err != nil {
		return "", err
	}
	att, err := e.c.Attach(ctx, volumeID, ebs.AttachOptions{InstanceID: e.instanceID, Device: want})
	if err != nil {
		return "", ebsErr(err)
	}
	return att.Device, nil
}

func (e *ebsCloud) Attachment(ctx context.Context, volumeID string) (string, bool, error) {
	if err := e.placement(ctx); err != nil {
		return "", false, err
	}
	v, err := e.c.Describe(ctx, volumeID)
	if err != nil {
		return "", false, ebsErr(err)
	}
	for _, a := range v.Attachments {
		if a.InstanceID == e.instanceID && (a.State == ebs.AttachmentAttached || a.State == ebs.AttachmentAttaching) {
			return a.Device, true, nil
		}
	}
	for _, a := range v.Attachments {
		switch {
		case a.State == ebs.AttachmentDetached:
		case a.InstanceID == e.instanceID:
			// detaching or busy: a detach of this very attachment is under way.
			return "", false, coded(fmt.Errorf("%s is being detached from this instance (%s, state %s); wait until it is detached, then try again",
				volumeID, a.Device, a.State), errBusy)
		default:
			return "", false, coded(fmt.Errorf("%s is attached to another instance (%s as %s)", volumeID, a.InstanceID, a.Device), errBusy)
		}
	}
	return "", false, nil
}

func (e *ebsCloud) Detach(ctx context.Context, volumeID string) error {
	if err := e.placement(ctx); err != nil {
		return err
	}
	// moto (and a clear audit trail) want the instance named: detach only from this one.
	return ebsErr(e.c.Detach(ctx, volumeID, ebs.DetachOptions{InstanceID: e.instanceID}))
}

func (e *ebsCloud) Delete(ctx context.Context, volumeID string) error {
	return ebsErr(e.c.Delete(ctx, volumeID, ebs.DeleteOptions{}))
}

func ebsErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ebs.ErrNotFound):
		return coded(err, errDeviceMissing, errVolumeGone)
	case errors.Is(err, ebs.ErrDeviceNotFound):
		return coded(err, errDeviceMissing)
	case errors.Is(err, ebs.ErrInUse):
		return coded(err, errBusy)
	}
	return err
}

// WaitDevice finds the block device of an attached volume with the ebs resolver (NVMe
// serial, Xen names), waiting up to timeout for its node to appear.
func (sysLocal) WaitDevice(ctx context.Context, volumeID, deviceName string, timeout time.Duration, progress func(time.Duration)) (string, error) {
	dev, err := whileTicking(waitProgressEvery, progress, func() (string, error) {
		return ebs.ResolveDevice(ctx, volumeID, deviceName, ebs.ResolveOptions{Timeout: timeout})
	})
	if err != nil {
		return "", ebsErr(err)
	}
	return dev, nil
}

// eventLine renders a progress event as "attach vol-… /dev/sdf: attaching" (+ message).
func eventLine(e ebs.Event) string {
	line := e.Op
	for _, f := range []string{e.VolumeID, e.Device} {
		if f != "" {
			line += " " + f
		}
	}
	if e.State != "" {
		line += ": " + e.State
	}
	if e.Message != "" {
		line += " (" + e.Message + ")"
	}
	if e.Warning {
		line = "warning: " + line
	}
	return line
}
