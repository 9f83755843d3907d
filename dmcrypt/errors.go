package dmcrypt

import "github.com/cloudluks/cloudluks/dmcrypt/internal/dm"

// Sentinel errors, matched with errors.Is. Errors returned by this package wrap one of these
// (or a luks sentinel such as luks.ErrWrongPassphrase / luks.ErrNotLUKS, passed through) together
// with the name or device concerned.
var (
	// ErrUnsupported: the platform has no device-mapper (every GOOS but linux).
	ErrUnsupported = dm.ErrUnsupported
	// ErrNoDeviceMapper: the running kernel has no device-mapper (dm-mod not loaded, no
	// /sys/class/misc/device-mapper and no /dev/mapper/control).
	ErrNoDeviceMapper = dm.ErrNoDeviceMapper
	// ErrNotRoot: the caller lacks the privilege device-mapper, loop devices or mknod need
	// (the errno stays wrapped too, so errors.Is(err, os.ErrPermission) also holds).
	ErrNotRoot = dm.ErrNotRoot
	// ErrExists: a mapping with this name (or uuid) already exists.
	ErrExists = dm.ErrExists
	// ErrNotFound: no mapping with this name.
	ErrNotFound = dm.ErrNotFound
	// ErrBusy: the mapping (or loop device) is in use and could not be removed in time.
	ErrBusy = dm.ErrBusy
	// ErrInvalidName: the mapping name cannot be used (empty, ".", "..", "control", contains
	// '/', or longer than 127 bytes).
	ErrInvalidName = dm.ErrInvalidName
	// ErrInvalidParameter: a table parameter cannot be represented (NUL byte, bad key size,
	// unknown flag, zero-length mapping).
	ErrInvalidParameter = dm.ErrInvalidParameter
	// ErrNoDevice: the backing device or file does not exist or is not a block device/file.
	ErrNoDevice = dm.ErrNoDevice
	// ErrProtocol: the kernel answered with a buffer this package cannot decode.
	ErrProtocol = dm.ErrProtocol
)
