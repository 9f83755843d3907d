package dmcrypt

// OpenOptions qualify Open, OpenWith and OpenWithKey. The flags mirror cryptsetup's options
// of the same names; each adds the dm-crypt table feature of the same name. Header, Keyslot
// and MaxIterations concern unlocking and are used by Open only: OpenWith's unlock function
// and OpenWithKey's caller do their own unlocking.
type OpenOptions struct {
	// Header is a detached LUKS header file; "" means the header is on the device. Open only.
	Header string
	// ReadOnly maps the device read-only (cryptsetup --readonly).
	ReadOnly bool
	// AllowDiscards passes discards (TRIM) through (--allow-discards).
	AllowDiscards bool
	// SameCPUCrypt, SubmitFromCryptCPUs, NoReadWorkqueue, NoWriteWorkqueue are the
	// --perf-* options.
	SameCPUCrypt        bool
	SubmitFromCryptCPUs bool
	NoReadWorkqueue     bool
	NoWriteWorkqueue    bool
	// Keyring hands the volume key to dm-crypt through the kernel keyring (a "logon" key in a
	// private thread keyring, removed right after the table load) so the table never carries
	// the key. cryptsetup itself does this only for LUKS2; status shows "key location:
	// keyring".
	Keyring bool
	// Keyslot restricts Open to one key slot (luks.Slot(n), cryptsetup --key-slot n); nil
	// tries every enabled slot, as cryptsetup does by default. Open only.
	Keyslot *int
	// MaxIterations is the PBKDF2 work limit passed to luks.Unlock (0 = its default). Open
	// only.
	MaxIterations uint32
}

// Mapping is an active dm-crypt mapping: what Open, OpenWith and OpenWithKey return in full.
// List returns one for every device-mapper device with only Name, Path, UUID, Major and
// Minor filled in (List does not read tables, and not every device is a crypt mapping).
type Mapping struct {
	Name         string // device-mapper name
	Path         string // /dev/mapper/NAME
	UUID         string // device-mapper uuid, "CRYPT-LUKS1-<uuid>-<name>"
	Major, Minor uint32 // of the mapped device (/dev/dm-N)
	Device       string // block device under the mapping (a loop device for an image file)
	BackingFile  string // the image file when Open attached a loop device, else ""
	ReadOnly     bool
	Keyslot      int // slot that unlocked (-1 for OpenWithKey)
}

// CloseOptions qualify CloseWithOptions.
type CloseOptions struct {
	// Deferred: when the mapping is in use, schedule its removal for the last close instead
	// of failing with ErrBusy (cryptsetup close --deferred). The /dev/mapper node goes at
	// once (without udev nothing would remove it after the kernel does; holders keep their
	// open descriptors).
	Deferred bool
	// CancelDeferred: do not close; withdraw a deferred removal scheduled earlier (cryptsetup
	// close --cancel-deferred). Nothing pending is not an error.
	CancelDeferred bool
}
