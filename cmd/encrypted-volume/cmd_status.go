package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// statusResolveTimeout bounds status's look for the local device.
const statusResolveTimeout = 3 * time.Second

// bootIDPath is the kernel's random ID of the current boot: a new value means a reboot.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// errNeedsUnlock is status's answer "the volume is here but its filesystem is not mounted":
// exit code 6 (cli.ExitNeedsUnlock), no message, so a monitor can poll cheaply.
var errNeedsUnlock = errors.New("needs unlock")

// statusReport is what status finds, printed as text or (--json) as one JSON object whose
// field names follow ec2volume -o json.
type statusReport struct {
	VolumeID string `json:"volumeId,omitempty"`
	// Attached is nil when EC2 was not asked (no --volume-id, or --no-aws).
	Attached       *bool  `json:"attached,omitempty"`
	AttachedAs     string `json:"attachedAs,omitempty"` // the EC2 device name, e.g. /dev/sdf
	Device         string `json:"device,omitempty"`     // the local block device
	DeviceContents string `json:"deviceContents,omitempty"`
	DeviceError    string `json:"deviceError,omitempty"`
	Name           string `json:"name"`
	Mapped         bool   `json:"mapped"`
	MappingError   string `json:"mappingError,omitempty"`
	MappedOn       string `json:"mappedOn,omitempty"`
	Mounted        bool   `json:"mounted"`
	MountPoint     string `json:"mountPoint,omitempty"`
	// BootUnlockDisabled is nil when the boot configuration could not be read.
	BootUnlockDisabled *bool  `json:"bootUnlockDisabled,omitempty"`
	BootDetail         string `json:"bootDetail,omitempty"`
	BootID             string `json:"bootId,omitempty"`
	NeedsUnlock        bool   `json:"needsUnlock"`
	// Scratch lists the swap and /tmp mappings with ephemeral keys (encrypted-volume swap, tmp).
	Scratch []scratchReport `json:"scratch,omitempty"`

	mappingStatus string // the cryptsetup-style status block, text output only
}

// status answers the questions of the walkthrough: attached? opened? mounted? boot-time
// unlock disabled? It exits 6 (needs unlock) when the volume is attached to this instance
// or its device is present, but it is neither mapped nor mounted.
func (a *app) status(ctx context.Context, c *config) error {
	r, err := a.statusReport(ctx, c)
	if err != nil {
		return err
	}
	if c.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		r.writeText(a.stdout, c)
	}
	if r.NeedsUnlock {
		return errNeedsUnlock
	}
	return nil
}

func (a *app) statusReport(ctx context.Context, c *config) (*statusReport, error) {
	r := &statusReport{VolumeID: c.volumeID, Name: c.name}
	if c.volumeID != "" && !c.noAWS {
		cl, err := a.newCloud(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("EC2: %w", err)
		}
		dev, ok, err := cl.Attachment(ctx, c.volumeID)
		if err != nil {
			return nil, err
		}
		r.Attached, r.AttachedAs = &ok, dev
	}
	if c.device != "" || c.volumeID != "" {
		// status reports, it does not wait: an attached volume's node is there already (the
		// resolver alone would wait minutes for one that is not, e.g. off the instance).
		rctx, cancel := context.WithTimeout(ctx, statusResolveTimeout)
		var dev string
		var err error
		if c.volumeID == "" {
			_, err = statBlock(c.device)
			dev = c.device
		} else {
			dev, err = a.local.WaitDevice(rctx, c.volumeID, firstNonEmpty(c.device, r.AttachedAs), statusResolveTimeout, func(time.Duration) {})
		}
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				err = fmt.Errorf("no block device for it appeared within %v", statusResolveTimeout)
			}
			r.DeviceError = err.Error()
		} else {
			what, _ := probePath(ctx, dev)
			r.Device, r.DeviceContents = dev, firstNonEmpty(what, "no known signature")
		}
	}
	if dev, ok, err := a.local.MappingDevice(c.name); err != nil {
		r.MappingError = err.Error()
	} else if ok {
		r.Mapped, r.MappedOn = true, dev
		var b bytes.Buffer
		if err := a.local.MappingStatus(&b, c.name); err != nil {
			fmt.Fprintf(&b, "           (status: %v)\n", err)
		}
		r.mappingStatus = b.String()
	}
	mounts, err := a.local.Mounts()
	if err != nil {
		return nil, err
	}
	if mp, ok := findOurMount(mounts, c.mountPoint, c.name); ok {
		r.Mounted, r.MountPoint = true, mp
	}
	disabled, detail, err := a.boot.Status(c.root, bootVolume{Name: c.name, MountPoint: c.mountPoint})
	if err != nil {
		r.BootDetail = err.Error()
	} else {
		r.BootUnlockDisabled, r.BootDetail = &disabled, detail
	}
	if b, err := os.ReadFile(a.bootID); err == nil {
		r.BootID = strings.TrimSpace(string(b))
	}
	r.Scratch = a.scratchReports(c)
	present := (r.Attached != nil && *r.Attached) || r.Device != ""
	// Mapped but not mounted is not "needs unlock": unlock would refuse the existing mapping;
	// that state is for a person (mount it, or close it and unlock).
	r.NeedsUnlock = present && !r.Mapped && !r.Mounted
	return r, nil
}

func (r *statusReport) writeText(w io.Writer, c *config) {
	switch {
	case r.VolumeID == "":
		fmt.Fprintln(w, "volume:    (no --volume-id)")
	case r.Attached == nil:
		fmt.Fprintf(w, "volume:    %s (EC2 not asked: --no-aws)\n", r.VolumeID)
	case *r.Attached:
		fmt.Fprintf(w, "volume:    %s attached to this instance as %s\n", r.VolumeID, r.AttachedAs)
	default:
		fmt.Fprintf(w, "volume:    %s not attached to this instance\n", r.VolumeID)
	}
	switch {
	case r.Device != "":
		fmt.Fprintf(w, "device:    %s (%s)\n", r.Device, r.DeviceContents)
	case r.DeviceError != "":
		fmt.Fprintf(w, "device:    not found (%s)\n", r.DeviceError)
	}
	switch {
	case r.Mapped:
		fmt.Fprintf(w, "mapping:   %s open on %s\n", r.Name, r.MappedOn)
		fmt.Fprint(w, r.mappingStatus)
	case r.MappingError != "":
		fmt.Fprintf(w, "mapping:   %s: %s\n", r.Name, r.MappingError)
	default:
		fmt.Fprintf(w, "mapping:   %s is not open\n", r.Name)
	}
	if r.Mounted {
		fmt.Fprintf(w, "mounted:   %s on %s\n", mapperPath(r.Name), r.MountPoint)
	} else {
		fmt.Fprintf(w, "mounted:   no (%s is not mounted)\n", mapperPath(r.Name))
	}
	switch {
	case r.BootUnlockDisabled == nil:
		fmt.Fprintf(w, "boot:      unknown (%s)\n", r.BootDetail)
	case *r.BootUnlockDisabled:
		fmt.Fprintf(w, "boot:      boot-time unlock disabled (%s)\n", r.BootDetail)
	default:
		fmt.Fprintf(w, "boot:      boot-time unlock NOT disabled (%s)\n", r.BootDetail)
	}
	if r.BootID != "" {
		fmt.Fprintf(w, "boot id:   %s\n", r.BootID)
	}
	writeScratchText(w, r.Scratch)
	if r.NeedsUnlock {
		which := "--volume-id " + r.VolumeID
		if c.device != "" {
			which = "--device " + c.device
		}
		if c.noAWS {
			which += " --no-aws"
		}
		fmt.Fprintf(w, "needs unlock: yes (encrypted-volume unlock %s --name %s --mount-point %s)\n", which, r.Name, c.mountPoint)
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
