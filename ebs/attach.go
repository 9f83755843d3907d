package ebs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// DeviceNames returns the names Attach chooses from, in order: /dev/sdf to /dev/sdp, the
// range EC2 documentation has recommended for EBS data volumes since the Xen days (sda is the
// root, sdb–sde were instance store).
func DeviceNames() []string {
	out := make([]string, 0, 'p'-'f'+1)
	for c := 'f'; c <= 'p'; c++ {
		out = append(out, "/dev/sd"+string(c))
	}
	return out
}

// deviceKey maps the spellings of one attachment point to one key: "/dev/sdf", "sdf",
// "/dev/xvdf" and "xvdf" name the same slot on Xen instances, and EC2 refuses the second.
func deviceKey(name string) string {
	n := strings.TrimPrefix(name, "/dev/")
	if strings.HasPrefix(n, "xvd") {
		n = "sd" + strings.TrimPrefix(n, "xvd")
	}
	return n
}

// AttachOptions select where to attach.
type AttachOptions struct {
	InstanceID string // "" = this instance (Options.Metadata)
	Device     string // "" = the first free name in DeviceNames
}

// Attach attaches the volume to the instance and waits until the attachment (not just the
// volume) is "attached". A Device the instance's block-device mappings already use is
// refused with ErrInUse before anything is sent to EC2. Without a Device it picks the first
// name from DeviceNames that the instance's block-device mappings and this Client's
// in-flight attachments do not use, and on EC2's "already in use" answer moves on to the
// next (and tries that name last on that instance for Wait.BadDeviceTTL: mappings
// DescribeInstances does not show stay taken). An attachment still "attaching" after
// Wait.AttachingTimeout is detached again and ErrAttachTimeout returned; one whose wait sees
// nothing but server errors for Wait.ServerErrorBudget is detached again too and ErrServer
// returned, so a failed Attach does not leave the volume attached (unless the roll-back
// failed as well, which the error then says). Attaching a volume already attached to the
// same instance returns that attachment.
func (c *Client) Attach(ctx context.Context, volumeID string, o AttachOptions) (*Attachment, error) {
	instance := o.InstanceID
	if instance == "" {
		inst, err := c.Instance(ctx)
		if err != nil {
			return nil, &Error{Op: "attach", VolumeID: volumeID, Err: fmt.Errorf("%w: no instance given and %w", ErrInvalidParameter, err)}
		}
		instance = inst.ID
	}
	fail := func(dev, state string, err error) (*Attachment, error) {
		return nil, &Error{Op: "attach", VolumeID: volumeID, InstanceID: instance, Device: dev, State: state, Err: err}
	}

	vol, err := c.describe(ctx, volumeID)
	if err != nil {
		return fail(o.Device, "", err)
	}
	if a := vol.attachmentFor(instance); a != nil && a.State != AttachmentDetached {
		if a.State == AttachmentAttached {
			return a, nil
		}
		return c.waitAttached(ctx, volumeID, instance, a.Device)
	}
	if others := vol.activeAttachments(); len(others) > 0 {
		return fail(o.Device, vol.State, fmt.Errorf("%w: attached to %s at %s", ErrInUse, others[0].InstanceID, others[0].Device))
	}
	if vol.State != StateAvailable {
		return fail(o.Device, vol.State, fmt.Errorf("%w: volume is %s, not available", ErrInvalidParameter, vol.State))
	}

	used, err := c.instanceDevices(ctx, instance)
	if err != nil {
		return fail(o.Device, "", err)
	}
	candidates := []string{o.Device}
	if o.Device != "" && used[deviceKey(o.Device)] {
		// Checked here, as auto-picked names are, so a taken name never reaches EC2: it
		// would refuse it, or on some instance types queue an attachment that never completes.
		return fail(o.Device, "", fmt.Errorf("%w: device name %s is already used by instance %s", ErrInUse, o.Device, instance))
	}
	if o.Device == "" {
		candidates = nil
		var refused []string
		for _, d := range DeviceNames() {
			switch {
			case used[deviceKey(d)]:
			case c.likelyBad(instance, d):
				refused = append(refused, d)
			default:
				candidates = append(candidates, d)
			}
		}
		candidates = append(candidates, refused...) // last resort
	}

	for _, dev := range candidates {
		if !c.reserve(instance, dev, volumeID) {
			if o.Device != "" {
				return fail(dev, "", fmt.Errorf("%w: another attachment from this process is using the name right now", ErrInUse))
			}
			continue
		}
		out, err := c.api.AttachVolume(ctx, &ec2.AttachVolumeInput{
			VolumeId: aws.String(volumeID), InstanceId: aws.String(instance), Device: aws.String(dev),
		}, c.retries(Event{Op: "attach", VolumeID: volumeID, InstanceID: instance, Device: dev}, "AttachVolume"))
		if err != nil {
			c.release(instance, dev)
			// A resent request whose first answer was lost is refused because the first
			// one worked — with IncorrectState, or with "already in use" when the point it
			// names is taken by this very volume: if the volume is now attaching or
			// attached here, carry on, whatever the refusal said. Checked before the name
			// is given up, or the attachment would be left behind unreported.
			if v, derr := c.describe(ctx, volumeID); derr == nil {
				if a := v.attachmentFor(instance); a != nil && (a.State == AttachmentAttaching || a.State == AttachmentAttached) {
					c.progress(Event{Op: "attach", VolumeID: volumeID, InstanceID: instance, Device: a.Device, State: a.State,
						Message: fmt.Sprintf("attach answered %v, but the attachment exists", errorCode(err))})
					att, werr := c.waitAttached(ctx, volumeID, instance, a.Device)
					return att, werr
				}
			}
			if isDeviceInUse(err) {
				c.markBad(instance, dev)
			}
			if isDeviceInUse(err) && o.Device == "" {
				c.progress(Event{Op: "attach", VolumeID: volumeID, InstanceID: instance, Device: dev, Warning: true,
					Message: "device name already in use on the instance; trying the next"})
				continue
			}
			if isDeviceInUse(err) {
				return fail(dev, "", fmt.Errorf("%w: %w", ErrInUse, err))
			}
			return fail(dev, "", classify(err))
		}
		c.progress(Event{Op: "attach", VolumeID: volumeID, InstanceID: instance, Device: dev, State: string(out.State)})
		a, err := c.waitAttached(ctx, volumeID, instance, dev)
		c.release(instance, dev)
		return a, err
	}
	return fail("", "", fmt.Errorf("%w among %s…%s", ErrNoFreeDevice, DeviceNames()[0], DeviceNames()[len(DeviceNames())-1]))
}

// isDeviceInUse recognises EC2's answer to an attach at a taken name:
// InvalidParameterValue "Invalid value '/dev/sdf' for unixDevice. Attachment point /dev/sdf
// is already in use".
func isDeviceInUse(err error) bool {
	return errorCode(err) == "InvalidParameterValue" && strings.Contains(err.Error(), "already in use")
}

// instanceDevices returns the keys of the device names the instance's block-device mappings
// use (DescribeInstances, because IMDS only knows launch-time devices), root included.
func (c *Client) instanceDevices(ctx context.Context, instance string) (map[string]bool, error) {
	out, err := c.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instance}},
		c.retries(Event{Op: "attach", InstanceID: instance}, "DescribeInstances"))
	if err != nil {
		return nil, classify(err)
	}
	used := map[string]bool{}
	found := false
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			if aws.ToString(inst.InstanceId) != instance {
				continue
			}
			found = true
			if inst.RootDeviceName != nil {
				used[deviceKey(*inst.RootDeviceName)] = true
			}
			for _, m := range inst.BlockDeviceMappings {
				used[deviceKey(aws.ToString(m.DeviceName))] = true
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("instance %s: %w", instance, ErrNotFound)
	}
	return used, nil
}

// reserve marks dev as taken on instance by this Client; false when it already is.
func (c *Client) reserve(instance, dev, volumeID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.inflight[instance]
	if m == nil {
		m = map[string]string{}
		c.inflight[instance] = m
	}
	if _, taken := m[deviceKey(dev)]; taken {
		return false
	}
	m[deviceKey(dev)] = volumeID
	return true
}

func (c *Client) release(instance, dev string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inflight[instance], deviceKey(dev))
	if len(c.inflight[instance]) == 0 {
		delete(c.inflight, instance)
	}
}

// markBad remembers that EC2 refused dev on instance as already in use.
func (c *Client) markBad(instance, dev string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.bad[instance]
	if m == nil {
		m = map[string]time.Time{}
		c.bad[instance] = m
	}
	m[deviceKey(dev)] = time.Now()
}

// likelyBad reports whether EC2 refused dev on instance within Wait.BadDeviceTTL.
func (c *Client) likelyBad(instance, dev string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.bad[instance][deviceKey(dev)]
	if ok && time.Since(at) > c.opts.Wait.BadDeviceTTL {
		delete(c.bad[instance], deviceKey(dev))
		return false
	}
	return ok
}

// InFlight returns the device names this Client has reserved on instance and not yet
// released (attachments being made right now).
func (c *Client) InFlight(instance string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k := range c.inflight[instance] {
		out = append(out, "/dev/"+k)
	}
	return out
}

// waitAttached polls until the volume's attachment to instance is "attached". Stuck in
// "attaching" (or not visible) past Wait.AttachingTimeout: roll back with a detach and
// return ErrAttachTimeout. Server errors for Wait.ServerErrorBudget: roll back the same way
// and return ErrServer.
func (c *Client) waitAttached(ctx context.Context, volumeID, instance, dev string) (*Attachment, error) {
	var att *Attachment
	last := ""
	srv := c.serverErrors()
	ev := Event{Op: "attach", VolumeID: volumeID, InstanceID: instance, Device: dev}
	err := c.poll(ctx, c.opts.Wait.AttachTimeout, func(elapsed time.Duration) (bool, error) {
		v, err := c.describe(ctx, volumeID, c.retries(ev, "DescribeVolumes"))
		if serr := srv.note(err); serr != nil {
			return false, serr
		}
		switch {
		case transient(err):
			c.progress(Event{Op: "attach", VolumeID: volumeID, InstanceID: instance, Device: dev, Warning: true, Message: err.Error()})
			return false, nil
		case err != nil:
			return false, err
		}
		a := v.attachmentFor(instance)
		state := "not-yet-visible"
		if a != nil {
			state = a.State
			if a.Device != "" {
				dev = a.Device
			}
		} else if others := v.activeAttachments(); len(others) > 0 {
			return false, fmt.Errorf("%w: attached to %s at %s", ErrInUse, others[0].InstanceID, others[0].Device)
		}
		c.stateEvent("attach", volumeID, instance, dev, &last, state)
		switch state {
		case AttachmentAttached:
			att = a
			return true, nil
		case AttachmentDetaching, AttachmentDetached:
			return false, fmt.Errorf("attachment went %s", state)
		}
		if elapsed >= c.opts.Wait.AttachingTimeout {
			return false, errWaitTimeout
		}
		return false, nil
	})
	if err == nil {
		return att, nil
	}
	// Attach fails only with the attachment undone: EC2 accepted it, so a volume left
	// attached after a reported failure would be in use with nobody knowing.
	switch {
	case errors.Is(err, errWaitTimeout):
		c.progress(Event{Op: "attach", VolumeID: volumeID, InstanceID: instance, Device: dev, State: last, Warning: true,
			Message: fmt.Sprintf("still %s after %v: detaching to roll back", last, c.opts.Wait.AttachingTimeout)})
		err = fmt.Errorf("%w: still %s after %v", ErrAttachTimeout, last, c.opts.Wait.AttachingTimeout)
		if rb := c.rollback(ctx, volumeID, instance, dev); rb != nil {
			err = fmt.Errorf("%w; roll-back failed: %w", err, rb)
		}
	case errors.Is(err, ErrServer):
		c.progress(Event{Op: "attach", VolumeID: volumeID, InstanceID: instance, Device: dev, State: last, Warning: true,
			Message: "EC2 keeps failing: detaching to roll back"})
		if rb := c.rollback(ctx, volumeID, instance, dev); rb != nil {
			err = fmt.Errorf("%w; roll-back failed: %w", err, rb)
		}
	}
	return nil, &Error{Op: "attach", VolumeID: volumeID, InstanceID: instance, Device: dev, State: last, Err: err}
}

// rollback detaches a stuck attachment (never forced: the OS may be half way through
// bringing the device up) and waits for it to go.
func (c *Client) rollback(ctx context.Context, volumeID, instance, dev string) error {
	_, err := c.api.DetachVolume(ctx, &ec2.DetachVolumeInput{
		VolumeId: aws.String(volumeID), InstanceId: aws.String(instance), Device: aws.String(dev),
	}, c.retries(Event{Op: "attach", VolumeID: volumeID, InstanceID: instance, Device: dev}, "DetachVolume"))
	if err != nil && !isAlreadyDetached(err) {
		return classify(err)
	}
	return c.waitDetached(ctx, volumeID, instance, dev)
}

// DetachOptions control Detach.
type DetachOptions struct {
	// InstanceID limits the detach to the attachment to this instance ("" = the volume's
	// only attachment).
	InstanceID string
	// Force detaches even if the instance has not released the device. It can corrupt the
	// file system and block the device name until the instance stops; it is never used
	// unless set, and announced as a warning through the progress callback.
	Force bool
}

// Detach detaches the volume and waits until it is detached, for at most Wait.DetachTimeout
// (then ErrTimeout; server errors end the wait after Wait.ServerErrorBudget with ErrServer).
// A volume that is not attached (or becomes detached meanwhile) is success.
func (c *Client) Detach(ctx context.Context, volumeID string, o DetachOptions) error {
	fail := func(inst, dev, state string, err error) error {
		return &Error{Op: "detach", VolumeID: volumeID, InstanceID: inst, Device: dev, State: state, Err: err}
	}
	vol, err := c.describe(ctx, volumeID, c.retries(Event{Op: "detach", VolumeID: volumeID, InstanceID: o.InstanceID}, "DescribeVolumes"))
	if err != nil {
		return fail(o.InstanceID, "", "", err)
	}
	active := vol.activeAttachments()
	var a *Attachment
	for i := range active {
		if o.InstanceID == "" || active[i].InstanceID == o.InstanceID {
			if a != nil {
				return fail("", "", vol.State, fmt.Errorf("%w: attached to several instances; name one", ErrInvalidParameter))
			}
			a = &active[i]
		}
	}
	if a == nil {
		c.progress(Event{Op: "detach", VolumeID: volumeID, InstanceID: o.InstanceID, State: AttachmentDetached, Message: "not attached"})
		return nil
	}
	if o.Force {
		c.progress(Event{Op: "detach", VolumeID: volumeID, InstanceID: a.InstanceID, Device: a.Device, State: a.State, Warning: true,
			Message: "forcing the detach: data not yet written by the instance is lost and the file system may be corrupt"})
	}
	_, err = c.api.DetachVolume(ctx, &ec2.DetachVolumeInput{
		VolumeId:   aws.String(volumeID),
		InstanceId: aws.String(a.InstanceID), // moto (and older EC2 tools) need it
		Device:     aws.String(a.Device),
		Force:      aws.Bool(o.Force),
	}, c.retries(Event{Op: "detach", VolumeID: volumeID, InstanceID: a.InstanceID, Device: a.Device}, "DetachVolume"))
	if err != nil && !isAlreadyDetached(err) {
		return fail(a.InstanceID, a.Device, a.State, classify(err))
	}
	if err := c.waitDetached(ctx, volumeID, a.InstanceID, a.Device); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return err
		}
		return fail(a.InstanceID, a.Device, "", err)
	}
	return nil
}

// isAlreadyDetached: answers EC2 gives to a detach of a volume that is not attached.
func isAlreadyDetached(err error) bool {
	switch errorCode(err) {
	case "IncorrectState", "InvalidAttachment.NotFound":
		return true
	}
	return false
}

// waitDetached polls until the volume has no live attachment to instance. A vanished
// volume counts as detached.
func (c *Client) waitDetached(ctx context.Context, volumeID, instance, dev string) error {
	last := ""
	srv := c.serverErrors()
	ev := Event{Op: "detach", VolumeID: volumeID, InstanceID: instance, Device: dev}
	err := c.poll(ctx, c.opts.Wait.DetachTimeout, func(time.Duration) (bool, error) {
		v, err := c.describe(ctx, volumeID, c.retries(ev, "DescribeVolumes"))
		if serr := srv.note(err); serr != nil {
			return false, serr
		}
		switch {
		case errors.Is(err, ErrNotFound):
			return true, nil
		case transient(err):
			c.progress(Event{Op: "detach", VolumeID: volumeID, InstanceID: instance, Device: dev, Warning: true, Message: err.Error()})
			return false, nil
		case err != nil:
			return false, err
		}
		a := v.attachmentFor(instance)
		if a == nil || a.State == AttachmentDetached {
			c.stateEvent("detach", volumeID, instance, dev, &last, AttachmentDetached)
			return true, nil
		}
		if a.State == AttachmentBusy && last != AttachmentBusy {
			c.progress(Event{Op: "detach", VolumeID: volumeID, InstanceID: instance, Device: dev, State: a.State, Warning: true,
				Message: "the instance still uses the device: unmount it and close any mapping on it"})
			last = a.State
		}
		c.stateEvent("detach", volumeID, instance, dev, &last, a.State)
		return false, nil
	})
	if errors.Is(err, errWaitTimeout) {
		err = fmt.Errorf("%w: still %s after %v", ErrTimeout, last, c.opts.Wait.DetachTimeout)
	}
	if err != nil {
		return &Error{Op: "detach", VolumeID: volumeID, InstanceID: instance, Device: dev, State: last, Err: err}
	}
	return nil
}
