package dm

import "errors"

// Sentinel errors, matched with errors.Is; package dmcrypt exports the same values. Errors
// returned by this package (and package loop) wrap one of these with the name or device
// concerned.
var (
	// ErrUnsupported: the platform has no device-mapper (every GOOS but linux).
	ErrUnsupported = errors.New("dmcrypt: device-mapper is only available on Linux")
	// ErrNoDeviceMapper: the running kernel has no device-mapper (dm-mod not loaded, no
	// /sys/class/misc/device-mapper and no /dev/mapper/control).
	ErrNoDeviceMapper = errors.New("device-mapper is not available in the running kernel (is dm_mod loaded?)")
	// ErrNotRoot: the caller lacks the privilege device-mapper, loop devices or mknod need
	// (the errno stays wrapped too, so errors.Is(err, os.ErrPermission) also holds).
	ErrNotRoot = errors.New("operation not permitted (must be run as root)")
	// ErrExists: a mapping with this name (or uuid) already exists.
	ErrExists = errors.New("device already exists")
	// ErrNotFound: no mapping with this name.
	ErrNotFound = errors.New("device is not active")
	// ErrBusy: the mapping (or loop device) is in use and could not be removed in time.
	ErrBusy = errors.New("device is still in use")
	// ErrInvalidName: the mapping name cannot be used (empty, ".", "..", "control", contains
	// '/', or longer than 127 bytes).
	ErrInvalidName = errors.New("invalid device-mapper name")
	// ErrInvalidParameter: a table parameter cannot be represented (NUL byte, bad key size,
	// unknown flag, zero-length mapping).
	ErrInvalidParameter = errors.New("invalid parameter")
	// ErrNoDevice: the backing device or file does not exist or is not a block device/file.
	ErrNoDevice = errors.New("device does not exist or access denied")
	// ErrProtocol: the kernel answered with a buffer this package cannot decode.
	ErrProtocol = errors.New("malformed device-mapper ioctl data")
)
