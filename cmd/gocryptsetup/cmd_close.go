package main

import (
	"errors"

	"github.com/cloudluks/cloudluks/dmcrypt"
)

// cmdClose removes the mapping NAME (cryptsetup close, alias luksClose). A loop device that
// open attached for an image file detaches with it. Busy mappings are retried for a few
// seconds (udev probes), then reported as still in use (exit 5); an unknown name is exit 4, and
// so is a kernel without device-mapper, as with cryptsetup. --deferred turns a busy mapping's
// removal into one the kernel performs at the last close (exit 0); --cancel-deferred withdraws
// it and leaves the mapping in place.
func cmdClose(a *app, args []string) error {
	name := args[0]
	err := dmcrypt.CloseWithOptions(a.ctx, name, dmcrypt.CloseOptions{
		Deferred:       a.opts.deferred,
		CancelDeferred: a.opts.cancelDeferred,
	})
	if err != nil {
		if errors.Is(err, dmcrypt.ErrNoDeviceMapper) || errors.Is(err, dmcrypt.ErrNotRoot) || errors.Is(err, dmcrypt.ErrUnsupported) {
			// cryptsetup cannot even query the name then and reports it as -ENODEV (exit 4).
			ce := mappingError(name, name, err).(*cliError)
			ce.code = exitDevice
			return ce
		}
		if a.opts.cancelDeferred && !errors.Is(err, dmcrypt.ErrNotFound) && !errors.Is(err, dmcrypt.ErrInvalidName) {
			// The kernel refused (removal already under way): cryptsetup maps its -ENOTSUP to exit 1.
			return &cliError{code: exitParams, msg: "Could not cancel deferred remove from device " + name + "."}
		}
		return mappingError(name, name, err)
	}
	return nil
}
