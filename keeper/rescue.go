package keeper

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/keeper/wire"
)

// DefaultRescueTimeout bounds a whole rescue: a detach, a reboot and an attach each take
// up to minutes on a busy region.
const DefaultRescueTimeout = 15 * time.Minute

// Rescue's unreachability probe, the defaults of Options.RescueProbes and
// RescueProbeEvery: this many dials, this far apart, must all find no TCP connection. One
// failed dial is a dropped packet, a restarting sshd, a busy jump host.
const (
	DefaultRescueProbes     = 3
	DefaultRescueProbeEvery = 10 * time.Second
)

// RescueOptions say how far Rescue may go.
type RescueOptions struct {
	// Force rescues an unreachable instance even when its console shows no passphrase
	// prompt. It never overrides the reachable-instance refusals.
	Force bool
	// Device is the device name to re-attach the volume as ("" = the one it had; required
	// to resume a rescue whose volume is already detached).
	Device string
	// Timeout bounds the whole rescue (0 = DefaultRescueTimeout).
	Timeout time.Duration
	// Wait overrides the EC2 wait policies of the detach and the attach.
	Wait ebs.WaitOptions
	// Probes and ProbeEvery: how many dials, how far apart, must all fail to connect at
	// the TCP level before the instance counts as unreachable (0 = Options.RescueProbes
	// and RescueProbeEvery).
	Probes     int
	ProbeEvery time.Duration
}

// Rescue frees an instance stuck at a boot-time passphrase prompt (a crypttab line
// waiting for a human): it detaches the encrypted volume, reboots the instance, waits
// until its sshd answers (it boots without the volume), re-attaches the volume under the
// same device name and unlocks it as UnlockOnce does.
//
// It refuses, before touching anything: an instance it can reach over SSH (ErrInUse if
// the volume is mapped there — a mounted volume is never detached —, else ErrNotStuck:
// it needs an unlock, not a rescue); an instance that is not unreachable in
// opts.Probes dials opts.ProbeEvery apart at the TCP level (an SSH handshake failure is
// ErrNotStuck, a jump-host failure its ErrJumpHost); a volume the keeper last saw mapped,
// whatever the dials say (ErrInUse); an unreachable instance whose console shows no
// passphrase prompt, unless opts.Force (ErrNotStuck); a host key that is not pinned, an
// instance that is not running and a volume not attached to it (the unlock checks'
// errors). The detach is never forced.
//
// A rescue that failed after its detach (EC2 refused the reboot, the instance did not
// come back in time) leaves the volume attached to nothing; Rescue run again resumes it:
// from the reboot while the instance is still unreachable, from the attach once it
// answers. EC2 has forgotten the device name then, so opts.Device is required (ErrInvalid
// without it); the error of the failed rescue names it.
func (k *Keeper) Rescue(ctx context.Context, t Target, opts RescueOptions) (Result, error) {
	return k.rescue(ctx, ctx, t, opts)
}

// rescue is Rescue with its checks (the probes, the console, the device name: everything
// before the first change) under checkCtx and the rest, from the detach on, under ctx.
// Run's automatic rescue passes its watcher's context as checkCtx: a target SetTargets
// drops or changes stops its rescue before it touches anything, while one already
// detaching is not cut short between its detach and its attach.
func (k *Keeper) rescue(checkCtx, ctx context.Context, t Target, opts RescueOptions) (Result, error) {
	// What the keeper knew of the volume when the rescue began: a drop of the target while
	// it runs does not clear the guard.
	mappedAtStart := k.lastMapped(&t)
	if err := k.validate(&t); err != nil {
		return Result{Target: t.label(), Outcome: OutcomeFailed, Reason: err.Error()}, err
	}
	res := Result{Target: t.label(), InstanceID: t.InstanceID, VolumeID: t.VolumeID, Outcome: OutcomeFailed}
	if k.opts.NoEC2 {
		err := fmt.Errorf("rescue needs EC2 (Options.NoEC2 is set): %w", ErrInvalid)
		res.Reason = err.Error()
		return res, targetErr(&t, err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRescueTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	checkCtx, cancelCheck := context.WithDeadline(checkCtx, deadline)
	defer cancelCheck()
	fail := func(step string, err error) (Result, error) {
		r := res
		r.Reason = oneLine(err.Error())
		k.decide(&t, "", "rescue-"+step, "refused", r.Reason)
		if errors.Is(err, ErrRefused) || errors.Is(err, ErrNotStuck) || errors.Is(err, ErrInUse) {
			r.Outcome = OutcomeRefused
		}
		return r, targetErr(&t, err)
	}

	// 0. A volume attached to nothing was detached already: by an earlier rescue that
	// failed after its detach (a reboot EC2 refused, an instance that did not come back in
	// time) or by hand. Nothing can have it mounted, so the rescue resumes: from the reboot,
	// or from the attach if the instance answers (it booted without the volume). Without
	// this, a half-done rescue could not be finished by running it again.
	detached, err := k.volumeDetached(checkCtx, &t)
	if err != nil {
		return fail("check", err)
	}
	device, reboot := opts.Device, true
	if detached {
		if device == "" {
			return fail("device", fmt.Errorf("%w: %s is attached to nothing (an earlier rescue detached it?): give the device name to attach it as", ErrInvalid, t.VolumeID))
		}
		switch err := k.reach(checkCtx, &t); {
		case err == nil:
			reboot = false
			k.decide(&t, "", "rescue-check", "ok", t.VolumeID+" detached and "+t.InstanceID+" answers: attach and unlock")
		case !errors.Is(err, ErrUnreachable):
			return fail("check", err)
		}
	} else {
		// 1. Reachable? Then it is not stuck, and its volume may be in use. Only a TCP-level
		// failure to reach the instance itself counts, several times over: an sshd that
		// answers but fails the handshake, or a dead jump host, says nothing about the volume.
		if opts.Probes <= 0 {
			opts.Probes = k.opts.RescueProbes
		}
		if opts.ProbeEvery <= 0 {
			opts.ProbeEvery = k.opts.RescueProbeEvery
		}
		for i := 0; i < opts.Probes; i++ {
			if i > 0 {
				if err := sleepCtx(checkCtx, opts.ProbeEvery); err != nil {
					return fail("check", err)
				}
			}
			c, cres, err := k.connect(checkCtx, &t, true)
			if err == nil {
				st, err := k.stateOver(checkCtx, &t, c)
				c.Close()
				if err != nil {
					return fail("state", err)
				}
				res.Addr, res.BootID = cres.Addr, st.BootID
				if st.Mapped || st.Mounted {
					return fail("check", fmt.Errorf("%w: %s is mapped on %s, which answers over SSH", ErrInUse, t.VolumeID, t.InstanceID))
				}
				return fail("check", fmt.Errorf("%w: %s answers over SSH: unlock it instead", ErrNotStuck, t.InstanceID))
			}
			switch {
			case errors.Is(err, ErrNoConnection) && !errors.Is(err, ErrJumpHost):
				k.decide(&t, "", "rescue-probe", "ok", fmt.Sprintf("%d of %d: %v", i+1, opts.Probes, err))
			case errors.Is(err, ErrHandshake):
				return fail("check", fmt.Errorf("%w: %s accepts connections: %w", ErrNotStuck, t.InstanceID, err))
			default:
				return fail("check", err)
			}
		}
		// A volume last seen mapped may still be mapped behind a network fault; only a State
		// that says otherwise clears that, and an unreachable instance cannot give one.
		boot := k.lastMapped(&t)
		if boot == "" {
			boot = mappedAtStart
		}
		if boot != "" {
			return fail("check", fmt.Errorf("%w: %s was mapped on %s (boot %s) when the keeper last reached it", ErrInUse, t.VolumeID, t.InstanceID, boot))
		}
	}

	eb := ebs.New(ebsAPI{k.opts.EC2}, ebs.Options{Wait: opts.Wait})
	if reboot {
		// 2. Stuck at a prompt?
		stuck, err := k.consoleStuck(checkCtx, &t)
		if err != nil {
			return fail("console", fmt.Errorf("ec2: console output: %w", err))
		}
		if !stuck && !opts.Force {
			return fail("console", fmt.Errorf("%w: %s is unreachable but its console shows no passphrase prompt", ErrNotStuck, t.InstanceID))
		}
		k.decide(&t, "", "rescue-console", "ok", fmt.Sprintf("unreachable, prompt on console: %v, forced: %v", stuck, opts.Force))

		// 3. Detach (never forced), 4. reboot, 5. wait for sshd.
		if !detached {
			if device == "" {
				device, err = k.attachedDevice(checkCtx, &t)
				if err != nil {
					return fail("device", err)
				}
			}
			if err := checkCtx.Err(); err != nil {
				return fail("check", fmt.Errorf("stopped before the detach: %w", err))
			}
			if err := eb.Detach(ctx, t.VolumeID, ebs.DetachOptions{InstanceID: t.InstanceID}); err != nil {
				return fail("detach", err)
			}
			k.decide(&t, "", "rescue-detach", "ok", t.VolumeID+" detached from "+device)
		}
		if err := checkCtx.Err(); err != nil && detached {
			return fail("check", fmt.Errorf("stopped before the reboot: %w", err))
		}
		if _, err := k.opts.EC2.RebootInstances(ctx, &ec2.RebootInstancesInput{InstanceIds: []string{t.InstanceID}}); err != nil {
			return fail("reboot", fmt.Errorf("ec2: reboot: %w (%s stays detached; rescue again with its device %s)", err, t.VolumeID, device))
		}
		k.decide(&t, "", "rescue-reboot", "ok", "")
		if err := k.waitReachable(ctx, &t); err != nil {
			return fail("wait", fmt.Errorf("%w (%s stays detached; rescue again with its device %s)", err, t.VolumeID, device))
		}
		k.decide(&t, "", "rescue-wait", "ok", "sshd answers")
	}
	// 6. Attach, 7. unlock.
	if !reboot {
		if err := checkCtx.Err(); err != nil {
			return fail("check", fmt.Errorf("stopped before the attach: %w", err))
		}
	}
	if _, err := eb.Attach(ctx, t.VolumeID, ebs.AttachOptions{InstanceID: t.InstanceID, Device: device}); err != nil {
		return fail("attach", err)
	}
	k.decide(&t, "", "rescue-attach", "ok", t.VolumeID+" attached as "+device)

	// The instance may need a moment to see the new device: a serial it cannot read yet
	// is retried, every other refusal is final.
	back := &backoff{min: k.opts.ReconnectMin, max: 10 * time.Second}
	for {
		r, err := k.UnlockOnce(ctx, t)
		if err == nil || !(errors.Is(err, ErrSerialMismatch) || errors.Is(err, ErrUnreachable)) {
			return r, err
		}
		if sleepCtx(ctx, back.next()) != nil {
			return r, err
		}
	}
}

// stateOver asks the instance on c for its State, within the request timeout.
func (k *Keeper) stateOver(ctx context.Context, t *Target, c *sshConn) (wire.State, error) {
	ctx, cancel := context.WithTimeout(ctx, k.opts.RequestTimeout)
	defer cancel()
	sess, cl, err := k.openSession(ctx, t, c)
	if err != nil {
		return wire.State{}, err
	}
	defer sess.Close()
	st, err := cl.State(ctx)
	if err != nil {
		return st, fmt.Errorf("%w: state: %w", ErrProtocol, errOr(ctx, err))
	}
	k.noteMapped(t, st.BootID, st.Mapped)
	return st, nil
}

// attachedDevice is the device name the volume is attached to the instance as.
func (k *Keeper) attachedDevice(ctx context.Context, t *Target) (string, error) {
	out, err := k.opts.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{t.VolumeID}})
	if err != nil {
		return "", fmt.Errorf("ec2: describe %s: %w", t.VolumeID, err)
	}
	for _, v := range out.Volumes {
		for _, a := range v.Attachments {
			if deref(a.InstanceId) == t.InstanceID && a.State == types.VolumeAttachmentStateAttached && deref(a.Device) != "" {
				return deref(a.Device), nil
			}
		}
	}
	return "", fmt.Errorf("%w: %s is not attached to %s", ErrNotAttached, t.VolumeID, t.InstanceID)
}

// waitReachable dials until the instance's sshd answers with the pinned host key.
func (k *Keeper) waitReachable(ctx context.Context, t *Target) error {
	back := &backoff{min: k.opts.ReconnectMin, max: k.opts.ReconnectMax}
	for {
		if err := sleepCtx(ctx, back.next()); err != nil {
			return fmt.Errorf("%w: sshd did not come back: %w", ErrUnreachable, err)
		}
		err := k.reach(ctx, t)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrUnreachable) {
			return err // a host key that is suddenly not pinned is not waited out
		}
	}
}

// reach dials the instance once. The EC2 attachment check cannot apply here (the volume
// is detached on purpose); the address still comes from EC2.
func (k *Keeper) reach(ctx context.Context, t *Target) error {
	addr := t.SSH.Addr
	if addr == "" {
		out, err := k.opts.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{t.InstanceID}})
		if err != nil || len(out.Reservations) == 0 || len(out.Reservations[0].Instances) == 0 {
			return fmt.Errorf("%w: no address for %s from EC2 (%v)", ErrUnreachable, t.InstanceID, err)
		}
		addr = ec2Address(&out.Reservations[0].Instances[0], &t.SSH)
	}
	c, err := transport{dialTimeout: k.opts.DialTimeout}.dial(ctx, &t.SSH, addr, t.InstanceID)
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// volumeDetached reports whether EC2 has the volume attached to nothing at all.
func (k *Keeper) volumeDetached(ctx context.Context, t *Target) (bool, error) {
	out, err := k.opts.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{t.VolumeID}})
	if isNotFound(err) {
		return false, fmt.Errorf("%w: EC2 does not know %s", ErrNotAttached, t.VolumeID)
	}
	if err != nil {
		return false, fmt.Errorf("ec2: describe %s: %w", t.VolumeID, err)
	}
	for _, v := range out.Volumes {
		if deref(v.VolumeId) == t.VolumeID {
			return len(v.Attachments) == 0 && v.State == types.VolumeStateAvailable, nil
		}
	}
	return false, fmt.Errorf("%w: EC2 does not know %s", ErrNotAttached, t.VolumeID)
}

// ebsAPI lets the ebs package's detach and attach waits run over the keeper's narrower
// EC2 interface; the keeper never creates or deletes volumes.
type ebsAPI struct{ EC2API }

var errNotUsed = errors.New("keeper: not used")

func (ebsAPI) CreateVolume(context.Context, *ec2.CreateVolumeInput, ...func(*ec2.Options)) (*ec2.CreateVolumeOutput, error) {
	return nil, errNotUsed
}

func (ebsAPI) DeleteVolume(context.Context, *ec2.DeleteVolumeInput, ...func(*ec2.Options)) (*ec2.DeleteVolumeOutput, error) {
	return nil, errNotUsed
}
