package main

import (
	"errors"

	"github.com/cloudluks/cloudluks/dmcrypt"
)

// cmdClose removes the mapping NAME (cryptsetup close, alias luksClose). A loop device that
// open attached for an image file detaches with it. Busy mappings are retried for a few
// seconds (udev probes), then reported as still in use (exit 5); an unknown name is exit 4, and
// so is a kernel without device-mapper, as with cryptsetup.
func cmdClose(a *app, args []string) error {
	name := args[0]
	if err := dmcrypt.Close(a.ctx, name); err != nil {
		if errors.Is(err, dmcrypt.ErrNoDeviceMapper) || errors.Is(err, dmcrypt.ErrNotRoot) || errors.Is(err, dmcrypt.ErrUnsupported) {
			// cryptsetup cannot even query the name then and reports it as -ENODEV (exit 4).
			ce := mappingError(name, name, err).(*cliError)
			ce.code = exitDevice
			return ce
		}
		return mappingError(name, name, err)
	}
	return nil
}
