package dm

import "time"

// MapperDir is where device-mapper block nodes are named (/dev/mapper/NAME).
const MapperDir = "/dev/mapper"

// ControlPath is the device-mapper control node.
const ControlPath = MapperDir + "/control"

// LoadOptions qualify a table load.
type LoadOptions struct {
	ReadOnly bool // DM_READONLY_FLAG
	// Secure sets DM_SECURE_DATA_FLAG, telling the kernel to wipe its copies of the buffer. Set
	// it whenever a table carries key material (this package also wipes its own buffer).
	Secure bool
}

// RemoveOptions qualify Remove.
type RemoveOptions struct {
	// Deferred: when the device is in use, ask the kernel at once to remove it at its last
	// close (DM_DEFERRED_REMOVE) instead of retrying. Remove then returns nil while the device
	// still exists (Info reports DeferredRemove).
	Deferred bool
	// RetryInterval between EBUSY retries (default 100ms).
	RetryInterval time.Duration
}

// DefaultRemoveTimeout bounds the EBUSY retries of Remove when ctx has no deadline, like
// libdevmapper's retry loop (25 tries, 200 ms apart).
const DefaultRemoveTimeout = 5 * time.Second
