package ebs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// ResolveOptions configure local device resolution. The roots exist so that tests (and tools
// working on a chroot) can point the resolver at a fake tree.
type ResolveOptions struct {
	SysRoot string // "" = "/sys"
	DevRoot string // "" = "/dev"
	// Identify returns the 4096-byte NVMe Identify Controller data of a device node; nil =
	// the NVMe admin ioctl (IdentifyController). Errors are tolerated: the serial number in
	// sysfs is what identifies the volume, the vendor-area name only cross-checks it.
	Identify func(devPath string) ([]byte, error)
	Timeout  time.Duration // wait for the node; 0 = DefaultDeviceTimeout
	Poll     time.Duration // 0 = DefaultDevicePoll
}

func (o ResolveOptions) withDefaults(w WaitOptions) ResolveOptions {
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.DevRoot == "" {
		o.DevRoot = "/dev"
	}
	if o.Identify == nil {
		o.Identify = IdentifyController
	}
	if o.Timeout <= 0 {
		o.Timeout = w.DeviceTimeout
		if o.Timeout <= 0 {
			o.Timeout = DefaultDeviceTimeout
		}
	}
	if o.Poll <= 0 {
		o.Poll = w.DevicePoll
		if o.Poll <= 0 {
			o.Poll = DefaultDevicePoll
		}
	}
	return o
}

// NVMeSerial is the serial number an EBS volume's NVMe controller reports: the volume ID
// without its dash ("vol-0123456789abcdef0" → "vol0123456789abcdef0").
func NVMeSerial(volumeID string) string { return strings.ReplaceAll(volumeID, "-", "") }

var nvmeNamespace = regexp.MustCompile(`^nvme[0-9]+n[0-9]+$`)

// ResolveDevice finds the local block device of an attached volume and waits (up to
// o.Timeout) for it to appear. requested is the name the volume was attached under
// ("/dev/sdf"), "" if unknown.
//
//   - Nitro (NVMe): the namespace whose controller serial (sysfs
//     block/nvme*n*/device/serial) is the volume ID without its dash. When the controller's
//     vendor area names a device (EBS does; qemu does not) it must be the requested name.
//     Found from the volume ID alone.
//   - Xen: /dev/sdX appears as /dev/xvdX, or four letters later (sda → xvde) on RHEL/CentOS
//     6 kernels, recognised by a root disk at xvde and no xvda. A udev symlink at the
//     requested name is followed.
//
// A path that names the volume but leads to an NVMe disk with another serial (a stale
// symlink) is never returned: the resolver keeps waiting for the volume's own namespace (or
// for udev to fix the link) and reports ErrStaleDevice when the time is up. A controller
// whose vendor area names another device fails at once with ErrStaleDevice.
func ResolveDevice(ctx context.Context, volumeID, requested string, o ResolveOptions) (string, error) {
	o = o.withDefaults(WaitOptions{})
	deadline := time.Now().Add(o.Timeout)
	var stale error
	for {
		dev, err := findDevice(volumeID, requested, o)
		if err == nil {
			return dev, nil
		}
		var sl *staleLinkError
		switch {
		case errors.As(err, &sl):
			// A link left over from an earlier attachment at the same name: udev replaces
			// it, or the namespace with our serial shows up in sysfs, once the new device
			// is there. Keep looking; report the link only if nothing better appears.
			stale = err
		case !errors.Is(err, ErrDeviceNotFound):
			return "", &Error{Op: "resolve", VolumeID: volumeID, Device: requested, Err: err}
		}
		if time.Now().After(deadline) {
			if stale != nil {
				return "", &Error{Op: "resolve", VolumeID: volumeID, Device: requested, Err: fmt.Errorf("after %v: %w", o.Timeout, stale)}
			}
			return "", &Error{Op: "resolve", VolumeID: volumeID, Device: requested,
				Err: fmt.Errorf("%w after %v (no NVMe serial %s, no Xen device for %q)", ErrDeviceNotFound, o.Timeout, NVMeSerial(volumeID), requested)}
		}
		if err := sleep(ctx, o.Poll); err != nil {
			return "", &Error{Op: "resolve", VolumeID: volumeID, Device: requested, Err: err}
		}
	}
}

// findDevice is one look at the trees; ErrDeviceNotFound means "not (yet) there".
func findDevice(volumeID, requested string, o ResolveOptions) (string, error) {
	want := NVMeSerial(volumeID)
	entries, _ := os.ReadDir(filepath.Join(o.SysRoot, "block"))
	for _, e := range entries {
		name := e.Name()
		if !nvmeNamespace.MatchString(name) || readSerial(o.SysRoot, name) != want {
			continue
		}
		dev := filepath.Join(o.DevRoot, name)
		if _, err := os.Stat(dev); err != nil {
			continue // sysfs knows it, the node is not made yet
		}
		if requested != "" {
			if buf, err := o.Identify(dev); err == nil {
				if ctrl, err := ParseIdentifyController(buf); err == nil && ctrl.BlockDevice != "" &&
					deviceKey(ctrl.BlockDevice) != deviceKey(requested) {
					return "", fmt.Errorf("%w: %s has serial %s but its controller names %s, not %s",
						ErrStaleDevice, dev, want, ctrl.BlockDevice, requested)
				}
			}
		}
		return dev, nil
	}
	if requested == "" {
		return "", ErrDeviceNotFound
	}
	for _, cand := range xenCandidates(requested, o.DevRoot) {
		fi, err := os.Lstat(cand)
		if err != nil {
			continue
		}
		target := cand
		if fi.Mode()&os.ModeSymlink != 0 {
			if target, err = filepath.EvalSymlinks(cand); err != nil {
				continue // dangling: udev has not finished
			}
			if !within(target, o.DevRoot) {
				return "", &staleLinkError{fmt.Sprintf("%s points outside %s (%s)", cand, o.DevRoot, target)}
			}
		}
		if base := filepath.Base(target); nvmeNamespace.MatchString(base) {
			if readSerial(o.SysRoot, base) == want {
				return target, nil
			}
			// A symlink to an NVMe disk whose serial is not ours: stale, refuse.
			return "", &staleLinkError{fmt.Sprintf("%s leads to %s, whose serial is %q, not %s",
				cand, target, readSerial(o.SysRoot, base), want)}
		}
		return target, nil
	}
	return "", ErrDeviceNotFound
}

// staleLinkError is a device link that leads to another disk; it wraps ErrStaleDevice.
type staleLinkError struct{ msg string }

func (e *staleLinkError) Error() string { return ErrStaleDevice.Error() + ": " + e.msg }
func (e *staleLinkError) Unwrap() error { return ErrStaleDevice }

func readSerial(sysRoot, name string) string {
	b, err := os.ReadFile(filepath.Join(sysRoot, "block", name, "device", "serial"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
}

func within(path, root string) bool {
	r, err := filepath.EvalSymlinks(root)
	if err != nil {
		r = root
	}
	rel, err := filepath.Rel(r, path)
	return err == nil && !strings.HasPrefix(rel, "..")
}

// XenDeviceName returns the name a Xen guest gives a volume attached as requested:
// "/dev/sdf" → "/dev/xvdf", or with rhel6Shift "/dev/xvdj" (RHEL/CentOS 6 kernels shift
// sd letters by four). Names already in xvd form, and shifts past z, return "".
func XenDeviceName(requested string, rhel6Shift bool) string {
	n := strings.TrimPrefix(requested, "/dev/")
	if strings.HasPrefix(n, "xvd") {
		if rhel6Shift {
			return ""
		}
		return "/dev/" + n
	}
	if !strings.HasPrefix(n, "sd") || len(n) < 3 {
		return ""
	}
	rest := n[2:]
	if rhel6Shift {
		if len(rest) != 1 || rest[0] < 'a' || rest[0] > 'z'-4 {
			return ""
		}
		rest = string(rest[0]+4) + rest[1:]
	}
	return "/dev/xvd" + rest
}

// xenCandidates lists the paths to try for a requested name, most specific first.
func xenCandidates(requested, devRoot string) []string {
	shift := !exists(filepath.Join(devRoot, "xvda")) && exists(filepath.Join(devRoot, "xvde"))
	var out []string
	if x := XenDeviceName(requested, shift); x != "" {
		out = append(out, filepath.Join(devRoot, strings.TrimPrefix(x, "/dev/")))
	}
	// The requested name itself: Amazon Linux's udev rules link /dev/sdf to xvdf, and
	// amazon-ec2-utils links it to the NVMe namespace.
	out = append(out, filepath.Join(devRoot, strings.TrimPrefix(requested, "/dev/")))
	return out
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// LocalDevice returns the local block device of a volume attached to this instance (or, if
// the instance is unknown, its only attachment), waiting for the node to appear.
func (c *Client) LocalDevice(ctx context.Context, volumeID string) (string, error) {
	vol, err := c.describe(ctx, volumeID)
	if err != nil {
		return "", &Error{Op: "resolve", VolumeID: volumeID, Err: err}
	}
	active := vol.activeAttachments()
	var a *Attachment
	if inst, ierr := c.Instance(ctx); ierr == nil {
		a = vol.attachmentFor(inst.ID)
		if a == nil {
			return "", &Error{Op: "resolve", VolumeID: volumeID, InstanceID: inst.ID, State: vol.State,
				Err: fmt.Errorf("%w: not attached to this instance", ErrDeviceNotFound)}
		}
		if a.State != AttachmentAttached && a.State != AttachmentAttaching {
			// Going or gone: its device will not appear (or is about to vanish), so do not
			// wait DeviceTimeout for it.
			return "", &Error{Op: "resolve", VolumeID: volumeID, InstanceID: inst.ID, Device: a.Device, State: a.State,
				Err: fmt.Errorf("%w: the attachment to this instance is %s", ErrDeviceNotFound, a.State)}
		}
	} else if len(active) == 1 {
		a = &active[0]
	} else {
		return "", &Error{Op: "resolve", VolumeID: volumeID, State: vol.State,
			Err: fmt.Errorf("%w: %d attachments and no instance metadata", ErrDeviceNotFound, len(active))}
	}
	return ResolveDevice(ctx, volumeID, a.Device, c.opts.Resolve)
}
