// Package dmcrypt maps LUKS1 volumes through the kernel's dm-crypt target, talking to
// device-mapper, loop devices and the kernel keyring directly through ioctls and keyctl — no
// cgo, no libdevmapper, no dmsetup or cryptsetup binary — and interoperates with cryptsetup on
// the same machine.
//
// It implements the device-mapper ioctl interface of include/uapi/linux/dm-ioctl.h (version
// 4), the dm-crypt table format of the kernel's Documentation/admin-guide/device-mapper/
// dm-crypt.rst, the loop device ioctls of include/uapi/linux/loop.h, and cryptsetup 2.6's
// conventions for LUKS1 mappings (lib/libdevmapper.c, src/cryptsetup.c).
//
// # Open, status, close
//
// The high-level functions do what `cryptsetup open`, `status` and `close` do:
//
//	m, err := dmcrypt.Open(ctx, "/dev/nvme1n1", "data", passphrase,
//		dmcrypt.OpenOptions{})
//	// … use m.Path ("/dev/mapper/data") …
//	st, err := dmcrypt.Status("data")
//	st.Format(os.Stdout, "data") // the text of `cryptsetup status data`
//	err = dmcrypt.Close(ctx, "data")
//
// Open unlocks the header with the luks package, builds the crypt table, creates the device
// with the uuid "CRYPT-LUKS1-<uuid without dashes>-<name>" (so cryptsetup, lsblk and systemd
// recognise it, and Status and Close recognise cryptsetup's mappings), loads the table and
// resumes it. An image file is first attached to a free loop device with autoclear, as
// cryptsetup does, so removing the mapping detaches the loop device. On any failure — wrong
// passphrase, a name in use, a table the kernel rejects — nothing is left behind: no mapping,
// no loop device, no key in a keyring.
//
// # Keys
//
// A table with a hex key is loaded with DM_SECURE_DATA_FLAG (the kernel wipes its copies) and
// every buffer that held it is zeroed; table reads (Control.Table) do the same. With
// OpenOptions.Keyring the key goes to dm-crypt as a "logon" key added to the thread keyring of
// a dedicated OS thread and referenced as ":<size>:logon:<description>"; it is invalidated
// right after the load and the thread ends, so the key never stays in a keyring. CryptTable's
// String and Format redact keys, and so do Target's (the Params of a table read back).
// cryptsetup 2.6 itself always uses hex keys for LUKS1.
//
// # Device nodes and udev
//
// devtmpfs creates only /dev/dm-N. When udevd runs (/run/udev/control exists) Open waits
// briefly for udev's /dev/mapper/NAME; otherwise it creates the node itself, and Close unlinks
// it. /dev/mapper/control is created from /sys/class/misc/device-mapper/dev when missing.
//
// # Removal
//
// Close retries while the device is busy (udev's probes open new devices briefly) until the
// context's deadline, DefaultRemoveTimeout without one, and then fails with ErrBusy;
// CloseWithOptions with Deferred asks the kernel to remove the device at its last close
// (cryptsetup close --deferred); with CancelDeferred it withdraws that request and leaves the
// mapping in place (--cancel-deferred). A deferred close unlinks /dev/mapper/NAME at once —
// without udev nothing would unlink it when the kernel finally removes the device, and a
// stale node could later name another device — and a cancel creates it again.
//
// # Low level
//
// Control exposes the ioctls themselves (Create, Load, Resume, Suspend, Remove,
// CancelDeferredRemove, Info, Table, TargetStatus, List); CryptTable builds and parses crypt
// targets; AttachLoop, FindLoop and LoopBackingFile handle loop devices (LOOP_CONFIGURE with a
// LOOP_SET_FD/SET_STATUS64 fallback).
//
// # Errors
//
// Errors wrap the sentinels ErrNoDeviceMapper, ErrNotRoot, ErrExists, ErrNotFound, ErrBusy,
// ErrNoDevice, ErrInvalidName, ErrInvalidParameter, or the luks package's (ErrNotLUKS,
// ErrWrongPassphrase…), with the device or name concerned. On platforms other than Linux every
// operation returns ErrUnsupported.
package dmcrypt
