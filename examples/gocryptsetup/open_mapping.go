package main

import "fmt"

// openMapping is the hook for "open DEVICE NAME" without --test-passphrase: it must create
// the dm-crypt mapping /dev/mapper/NAME for DEVICE (a loop device first for an image file).
//
// This placeholder stands in until the dmcrypt package provides mappings: it behaves like
// cryptsetup on a kernel without device-mapper — the same two messages on stderr and exit 1 —
// before asking for any passphrase. The dmcrypt integration replaces this file (for example
// with open_mapping_linux.go plus a stub for other systems) and keeps the signature.
func openMapping(a *app, device, name string) error {
	return &cliError{code: exitParams, msg: fmt.Sprintf("%s\nCannot use device %s, name is invalid or still in use.",
		"Cannot initialize device-mapper. Is dm_mod kernel module loaded?", name)}
}
