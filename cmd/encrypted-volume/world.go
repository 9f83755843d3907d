package main

import (
	"context"
	"io"
	"time"
)

// cloud is the EC2 side of the program, implemented over the ebs package. Progress lines
// (waiting for "available", "attached"…) go to the writer given at construction.
type cloud interface {
	// Placement is the instance the program runs on and its availability zone.
	Placement(ctx context.Context) (instanceID, zone string, err error)
	Create(ctx context.Context, zone string, sizeGiB int, volumeType string) (volumeID string, err error)
	// Attach attaches the volume to this instance at a free device name (or want) and
	// returns the name EC2 recorded.
	Attach(ctx context.Context, volumeID, want string) (deviceName string, err error)
	// Attachment reports the current attachment of the volume to this instance.
	Attachment(ctx context.Context, volumeID string) (deviceName string, attached bool, err error)
	Detach(ctx context.Context, volumeID string) error
	Delete(ctx context.Context, volumeID string) error
}

// formatSpec is what luksFormat gets from the flags.
type formatSpec struct {
	Cipher          string
	KeyBits         int
	Hash            string
	IterTime        time.Duration
	ForceIterations uint32
}

// formatted is a freshly formatted device: its header (for the dump) and its volume key
// (to open it without a second PBKDF2 run). Wipe zeroes the key.
type formatted interface {
	Dump(w io.Writer) error
	UUID() string
	Wipe()
}

// local is everything the program does to this machine. The real one drives luks,
// dmcrypt, mkfs and mount(2); tests on a host without device-mapper use a fake.
type local interface {
	// ResolveDevice finds the block device of volumeID (requested as deviceName when
	// attached through EC2, "" otherwise) and checks it exists.
	ResolveDevice(ctx context.Context, volumeID, deviceName string) (string, error)
	// Probe names what the device holds ("" = nothing known).
	Probe(ctx context.Context, device string) (string, error)
	Format(ctx context.Context, device string, pass []byte, spec formatSpec) (formatted, error)
	OpenFormatted(ctx context.Context, device, name string, f formatted) (mapperPath string, err error)
	Open(ctx context.Context, device, name string, pass []byte) (mapperPath string, err error)
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
