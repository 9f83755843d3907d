package ebs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// DeleteOptions control Delete.
type DeleteOptions struct {
	// Detach first when the volume is attached (otherwise Delete refuses with ErrInUse).
	Detach bool
	// Force the detach (see DetachOptions.Force); only with Detach.
	Force bool
}

// Delete deletes the volume and waits until EC2 no longer lists it (or lists it "deleted").
// An attached volume is refused with ErrInUse unless o.Detach is set. Only the given ID is
// ever passed to DeleteVolume.
func (c *Client) Delete(ctx context.Context, volumeID string, o DeleteOptions) error {
	fail := func(inst, state string, err error) error {
		return &Error{Op: "delete", VolumeID: volumeID, InstanceID: inst, State: state, Err: err}
	}
	ev0 := Event{Op: "delete", VolumeID: volumeID}
	vol, err := c.describe(ctx, volumeID, c.retries(ev0, "DescribeVolumes"))
	if err != nil {
		return fail("", "", err)
	}
	if active := vol.activeAttachments(); len(active) > 0 {
		if !o.Detach {
			return fail(active[0].InstanceID, vol.State, fmt.Errorf("%w: attached at %s (%s); detach it first", ErrInUse, active[0].Device, active[0].State))
		}
		for _, a := range active {
			if err := c.Detach(ctx, volumeID, DetachOptions{InstanceID: a.InstanceID, Force: o.Force}); err != nil {
				return err
			}
		}
	}
	if vol.State != StateDeleting && vol.State != StateDeleted {
		if _, err := c.api.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(volumeID)}, c.retries(ev0, "DeleteVolume")); err != nil {
			err = classify(err)
			if !errors.Is(err, ErrNotFound) && !c.deletionUnderway(ctx, volumeID) {
				return fail("", vol.State, err)
			}
			// Gone meanwhile, or a resent request refused because the first one (whose
			// answer was lost) already started the deletion: what we wanted.
		}
	}
	last := vol.State
	srv := c.serverErrors()
	ev := Event{Op: "delete", VolumeID: volumeID}
	err = c.poll(ctx, c.opts.Wait.DeleteTimeout, func(time.Duration) (bool, error) {
		v, err := c.describe(ctx, volumeID, c.retries(ev, "DescribeVolumes"))
		if serr := srv.note(err); serr != nil {
			return false, serr
		}
		switch {
		case errors.Is(err, ErrNotFound):
			c.stateEvent("delete", volumeID, "", "", &last, StateDeleted)
			return true, nil
		case transient(err):
			c.progress(Event{Op: "delete", VolumeID: volumeID, Warning: true, Message: err.Error()})
			return false, nil
		case err != nil:
			return false, err
		}
		c.stateEvent("delete", volumeID, "", "", &last, v.State)
		return v.State == StateDeleted, nil
	})
	if errors.Is(err, errWaitTimeout) {
		err = fmt.Errorf("%w: still %s after %v", ErrTimeout, last, c.opts.Wait.DeleteTimeout)
	}
	if err != nil {
		return fail("", last, err)
	}
	return nil
}

// deletionUnderway reports whether the volume is being deleted or gone, for a DeleteVolume
// that was refused (IncorrectState "is deleting" after the SDK resent a request whose first
// attempt worked).
func (c *Client) deletionUnderway(ctx context.Context, volumeID string) bool {
	v, err := c.describe(ctx, volumeID)
	if errors.Is(err, ErrNotFound) {
		return true
	}
	return err == nil && (v.State == StateDeleting || v.State == StateDeleted)
}
