package dmcrypt

import "github.com/cloudluks/cloudluks/dmcrypt/internal/dm"

// ValidateName reports whether name can be used as a device-mapper name here. The kernel
// itself accepts "." and "control" (which would then shadow /dev/mapper/control or the
// directory itself) and silently truncates at 127 bytes; this package refuses those instead,
// and a name with '/' or a NUL byte, with an error wrapping ErrInvalidName.
func ValidateName(name string) error { return dm.ValidateName(name) }
