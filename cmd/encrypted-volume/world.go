package main

import (
	"context"
	"io"
	"time"

	"github.com/cloudluks/cloudluks/luks"
)

// cloud is the EC2 side of the program, implemented over the ebs package. Progress lines
// (waiting for "available", "attached"…) go to the writer given at construction.
type cloud interface {
	// Placement is the instance the program runs on and its availability zone.
	Placement(ctx context.Context) (instanceID, zone string, err error)
	// Create makes a volume and waits until it is available. name makes it idempotent: the
	// same name yields the same volume in every process (ebs.CreateOptions.Name), so a
	// setup killed during the create finds its volume again when run once more. The ID is
	// printed as soon as EC2 answers (the ebs progress event "create vol-…: creating"),
	// before the wait.
	Create(ctx context.Context, zone string, sizeGiB int, volumeType, name string) (volumeID string, err error)
	// Attach attaches the volume to this instance at a free device name (or want) and
	// returns the name EC2 recorded.
	Attach(ctx context.Context, volumeID, want string) (deviceName string, err error)
	// Attachment reports the current attachment of the volume to this instance.
	Attachment(ctx context.Context, volumeID string) (deviceName string, attached bool, err error)
	Detach(ctx context.Context, volumeID string) error
	Delete(ctx context.Context, volumeID string) error
}

// local is what needs root and a real kernel: device-mapper, mount(2), mkfs, the mount
// table and the block-device nodes of attached volumes. Everything else (luksFormat,
// luksDump, the unlock's PBKDF2, the signature probe) runs for real on whatever file the
// device path names, so tests use temporary files as devices and a fake of this interface
// only on a host without device-mapper.
type local interface {
	// DeviceMapper returns nil when the kernel offers device-mapper (setup's preflight).
	DeviceMapper() error
	// WaitDevice waits up to timeout for the block device of volumeID (requested as
	// deviceName when attached through EC2, "" otherwise) to appear, calling progress now
	// and then with the time waited so far.
	WaitDevice(ctx context.Context, volumeID, deviceName string, timeout time.Duration, progress func(waited time.Duration)) (string, error)
	// OpenWithKey maps device with its header (LUKS1 or LUKS2) and volume key.
	OpenWithKey(ctx context.Context, device, name string, hdr luks.Metadata, vk *luks.VolumeKey) (mapperPath string, err error)
	Close(ctx context.Context, name string) error
	// MappingDevice returns the backing device of an open mapping, ok=false if none.
	MappingDevice(name string) (device string, ok bool, err error)
	MappingStatus(w io.Writer, name string) error
	Mkfs(ctx context.Context, argv []string, device string, stdout, stderr io.Writer) error
	Mount(source, target string) error
	Unmount(target string) error
	Mounts() ([]mountEntry, error)
	// DeviceUsers finds the local block device of volumeID by its NVMe serial without
	// waiting long, and says what on this machine still uses it: a device-mapper mapping or
	// another holder, a mount ("" = nothing). device is "" when no such device is here.
	DeviceUsers(ctx context.Context, volumeID string) (device, users string, err error)
}

// bootConfig is the boot-time-unlock side, implemented over grubconf.
type bootConfig interface {
	// Check fails when nothing under root can be edited to keep boot from waiting for the
	// passphrase (setup's preflight: without step 8 the next boot may hang).
	Check(root string) error
	// Disable makes boot never wait for this volume's passphrase and prints what changed.
	Disable(ctx context.Context, root string, v bootVolume, w io.Writer) error
	// Status says whether boot-time unlock is disabled, with a one-line explanation.
	Status(root string, v bootVolume) (disabled bool, detail string, err error)
}

// bootVolume names the volume in the boot configuration.
type bootVolume struct {
	Name       string // mapping name
	LUKSUUID   string // "" when unknown
	MountPoint string
}
