// Package dmcrypt maps LUKS1 and LUKS2 volumes through the kernel's dm-crypt target: the verbs of
// `cryptsetup open`, `status` and `close`, spoken directly to device-mapper, loop devices and
// the kernel keyring — no cgo, no libdevmapper, no dmsetup or cryptsetup binary — and
// interoperating with cryptsetup on the same machine (its mappings are ours to read and
// close, ours are its).
//
// It follows cryptsetup 2.6's conventions for LUKS mappings (lib/libdevmapper.c,
// lib/luks2/luks2_json_metadata.c LUKS2_activate, src/cryptsetup.c) and the dm-crypt table format of the kernel's
// Documentation/admin-guide/device-mapper/dm-crypt.rst.
//
// # Open, status, close
//
//	m, err := dmcrypt.Open(ctx, "/dev/nvme1n1", "data", passphrase,
//		dmcrypt.OpenOptions{})
//	// … use m.Path ("/dev/mapper/data") …
//	st, err := dmcrypt.Status("data")
//	st.Dump(os.Stdout, "data") // the text of `cryptsetup status data`
//	err = dmcrypt.Close(ctx, "data")
//
// There are three ways to open, by where the volume key comes from:
//
//   - Open unlocks the header of either version with a passphrase (luks.UnlockAny).
//   - OpenWithKey takes a key already unlocked (by luks.UnlockAny or luks.Format) and the
//     header as a luks.Metadata (*luks.Header or *luks.Header2).
//   - OpenWith (LUKS1 headers) and OpenWithAny (either version) take a function that
//     unlocks (a prompt, a key file, a key from elsewhere) and call it only after the cheap
//     checks: device-mapper present, the privilege to use it, the name free. A program asks
//     for a passphrase only when the mapping can be made.
//
// Each checks the name once, then builds the crypt table from the header's data segment
// (luks.DataSegment: cipher, offset, size, sector size, IV tweak), creates the device with
// the uuid "CRYPT-LUKS1-<uuid without dashes>-<name>" or "CRYPT-LUKS2-…" (so cryptsetup,
// lsblk and systemd recognise it and status shows the type), loads the table and resumes it. An image file is first attached to a free loop device
// with autoclear, as cryptsetup does, so removing the mapping detaches the loop device. On
// any failure — wrong passphrase, a name in use, a table the kernel rejects — nothing is left
// behind: no mapping, no loop device, no key in a keyring.
//
// Status reports any crypt mapping, ours or cryptsetup's, as a MappingStatus; its Dump and
// DumpInactive write what `cryptsetup status` prints. List names every device-mapper
// device; NameFromPath turns /dev/mapper/NAME or /dev/dm-N into a name; ValidateName says
// whether a name can be used at all (it refuses what the kernel would misread or truncate).
//
// # Plain mode and ephemeral keys
//
// Plain dm-crypt has no header: OpenPlain maps a device with a key hashed from a passphrase
// as `cryptsetup open --type plain` 2.6.1 does (luks.PlainKey: ripemd160 by default, "plain",
// "sha256:16"…), OpenPlainKey with a raw key (a key file, never hashed), and OpenEphemeral
// with a fresh key from getrandom(2) that is never returned or stored — swap and /tmp that
// become unreadable when the mapping closes:
//
//	m, err := dmcrypt.OpenEphemeral(ctx, dev, "swap",
//		dmcrypt.PlainParams{Cipher: "aes-xts-plain64", KeySize: 64}, dmcrypt.OpenOptions{})
//
// PlainParams holds cryptsetup's --cipher, --key-size, --hash, --offset, --skip, --size,
// --sector-size, --iv-large-sectors and --shared; its zero value is 2.6.1's defaults
// (aes-cbc-essiv:sha256, 256 bits, ripemd160), which 2.7 changed, so name every field in
// anything kept for later. Without Shared a device in use is refused (ErrDeviceInUse); an
// offset or size past the end gives ErrOffsetBeyondDevice / ErrDeviceTooSmall. The uuid is
// cryptsetup's "CRYPT-PLAIN-<name>", or "CRYPT-PLAIN-EPHEMERAL-<name>" for an ephemeral key
// (MappingStatus.Ephemeral); status shows "type: PLAIN" either way. The tables are byte for
// byte those cryptsetup loads (checked in the VM with dmsetup table --showkeys).
//
// # Keys
//
// A table with a hex key is loaded with DM_SECURE_DATA_FLAG (the kernel wipes its copies)
// and every buffer that held it is zeroed; so are the tables Status and Close read back.
// With OpenOptions.Keyring the key goes to dm-crypt as a "logon" key added to the thread
// keyring of a dedicated OS thread and referenced from the table; it is invalidated right
// after the load and the thread ends, so the key never stays in a keyring (status then shows
// "key location: keyring"). cryptsetup 2.6 itself always uses hex keys for LUKS1, and the
// keyring for LUKS2; so does this package for LUKS2, under cryptsetup's key description
// "cryptsetup:<LUKS uuid>-d<digest>", so both tools load the same table. A LUKS2 header's
// persistent flags (config.flags: allow-discards, same-cpu-crypt, submit-from-crypt-cpus,
// no-read-workqueue, no-write-workqueue) are added to OpenOptions' flags, and a header with
// unmet requirements (an unfinished reencryption) is refused (luks.ErrUnmetRequirements).
//
// # Device nodes and udev
//
// devtmpfs creates only /dev/dm-N. When udevd runs (/run/udev/control exists) Open waits
// briefly for udev's /dev/mapper/NAME; otherwise it creates the node itself, and Close
// unlinks it. /dev/mapper/control is created from /sys/class/misc/device-mapper/dev when
// missing.
//
// # Removal
//
// Close retries while the device is busy (udev's probes open new devices briefly) until the
// context's deadline, 5 s without one, and then fails with ErrBusy. CloseWithOptions with
// Deferred asks the kernel to remove the device at its last close (cryptsetup close
// --deferred); with CancelDeferred it withdraws that request and leaves the mapping in place
// (--cancel-deferred). A deferred close unlinks /dev/mapper/NAME at once — without udev
// nothing would unlink it when the kernel finally removes the device, and a stale node could
// later name another device — and a cancel creates it again.
//
// # Errors
//
// Errors wrap the sentinels ErrNoDeviceMapper, ErrNotRoot, ErrExists, ErrNotFound, ErrBusy,
// ErrNoDevice, ErrInvalidName, ErrInvalidParameter, ErrProtocol, or the luks package's
// (ErrNotLUKS, ErrWrongPassphrase…), with the device or name concerned. On platforms other
// than Linux every operation returns ErrUnsupported.
//
// # Below this package
//
// The device-mapper ioctls, crypt tables and the keyring hand-over live in
// dmcrypt/internal/dm, the loop devices in dmcrypt/internal/loop. They are internal: using
// them safely takes device-mapper knowledge this package exists to hide (a table carries the
// key in hex, a half-made device must be removed, a loop must be autoclear), and no program
// of this module needs more than the verbs above.
package dmcrypt
