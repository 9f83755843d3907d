package dm

import (
	"fmt"
	"strings"
)

// ValidateName reports whether name can be used as a device-mapper name here. The kernel
// itself accepts "." and "control" (which would then shadow /dev/mapper/control or the
// directory itself) and silently truncates at 127 bytes; this package refuses those instead.
func ValidateName(name string) error {
	switch {
	case name == "", name == ".", name == "..", name == "control":
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	case strings.ContainsRune(name, '/'):
		return fmt.Errorf("%w: %q contains '/'", ErrInvalidName, name)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%w: %q contains a NUL byte", ErrInvalidName, name)
	case len(name) > nameLen-1:
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrInvalidName, len(name), nameLen-1)
	}
	return nil
}

// LUKS1UUID returns the device-mapper uuid cryptsetup gives a LUKS1 mapping:
// "CRYPT-LUKS1-<LUKS uuid without dashes>-<name>", cut to the 128 bytes the kernel stores
// (cryptsetup's dm_prepare_uuid formats into a buffer of the same size). cryptsetup, lsblk and
// systemd recognise crypt mappings by the "CRYPT-" prefix and the type after it.
func LUKS1UUID(luksUUID, name string) string {
	return cryptUUID("LUKS1", luksUUID, name)
}

func cryptUUID(typ, luksUUID, name string) string {
	var b strings.Builder
	b.WriteString("CRYPT-")
	b.WriteString(typ)
	b.WriteByte('-')
	if luksUUID != "" {
		b.WriteString(strings.ReplaceAll(luksUUID, "-", ""))
		b.WriteByte('-')
	}
	b.WriteString(name)
	s := b.String()
	if len(s) > uuidLen-1 {
		s = s[:uuidLen-1]
	}
	return s
}

// TypeFromUUID returns the crypt type encoded in a device-mapper uuid ("LUKS1" for
// "CRYPT-LUKS1-…", "PLAIN" for "CRYPT-PLAIN-…"), or "" when the uuid is not a crypt uuid.
func TypeFromUUID(dmUUID string) string {
	rest, ok := strings.CutPrefix(dmUUID, "CRYPT-")
	if !ok {
		return ""
	}
	typ, _, ok := strings.Cut(rest, "-")
	if !ok || typ == "" {
		return ""
	}
	return typ
}

// KeyDescription names the transient logon key of a mapping: "cloudluks:" + the dm uuid, with
// the bytes a table argument cannot carry unescaped (the kernel's white space, backslash — dm
// names may contain them) replaced, so the reference never needs escaping.
func KeyDescription(dmUUID string) string {
	b := []byte("cloudluks:" + dmUUID)
	for i, c := range b {
		if c == '\\' || isDMSpace(c) {
			b[i] = '_'
		}
	}
	return string(b)
}
