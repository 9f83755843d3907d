package main

import (
	"errors"
	"fmt"

	"github.com/cloudluks/cloudluks/grubconf"
)

// errNoBootConfig: nothing under --root that step 8 could edit.
var errNoBootConfig = errors.New("no boot loader, crypttab or fstab found")

// Check is setup's preflight for step 8: a root whose boot configuration cannot be found is
// refused before a volume exists, since a boot that still tries to unlock the volume waits
// for a passphrase nobody can type.
func (grubBoot) Check(root string) error {
	sys, err := grubconf.Detect(root)
	if err != nil {
		return fmt.Errorf("boot configuration: %w", err)
	}
	if !sys.HasBootConfig() {
		return fmt.Errorf("%w under %s (is --root the instance's root directory?)", errNoBootConfig, root)
	}
	return nil
}
