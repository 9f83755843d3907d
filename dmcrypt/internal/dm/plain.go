package dm

// PlainUUID returns cryptsetup's device-mapper uuid for a plain mapping: "CRYPT-PLAIN-<name>"
// (dm_prepare_uuid without a volume uuid), cut to what the kernel stores.
func PlainUUID(name string) string { return cryptUUID("PLAIN", "", name) }

// EphemeralUUID returns the uuid of a plain mapping whose key exists only in the kernel:
// "CRYPT-PLAIN-EPHEMERAL-<name>". It still reads as type PLAIN to cryptsetup, lsblk and
// systemd; cryptsetup itself never makes it, since its plain uuids end in the mapping's own
// name right after "CRYPT-PLAIN-".
func EphemeralUUID(name string) string { return cryptUUID("PLAIN", "EPHEMERAL", name) }
