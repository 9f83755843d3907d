// Package dm speaks the device-mapper ioctl interface of include/uapi/linux/dm-ioctl.h
// (version 4) and the dm-crypt table format of the kernel's
// Documentation/admin-guide/device-mapper/dm-crypt.rst, without cgo or libdevmapper.
//
// It is the layer under package dmcrypt: Control's methods are the ioctls (Create, Load,
// Resume, Suspend, Remove, CancelDeferredRemove, Info, Table, TargetStatus, List); CryptTable
// builds and parses crypt targets; WithThreadKey hands a key to dm-crypt through the kernel
// keyring. It is internal because its callers would need to know device-mapper to use it
// safely (a table carries the key in hex; half-made devices must be removed): programs use
// dmcrypt's cryptsetup-level verbs instead.
//
// The ioctl buffers are encoded by hand (native byte order) rather than through unsafe struct
// casts, so the encoding is testable on any platform and a buffer that carries key material is
// one []byte that is zeroed afterwards.
package dm
