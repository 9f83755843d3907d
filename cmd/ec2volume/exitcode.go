package main

import (
	"errors"
	"flag"

	"github.com/cloudluks/cloudluks/ebs"
)

// Exit codes, in one place.
const (
	exitOK       = 0
	exitFailure  = 1 // the operation failed (EC2 refused, timed out, …)
	exitUsage    = 2 // wrong command line
	exitNotFound = 3 // no such volume / instance / device
	exitInUse    = 4 // volume attached, device name taken
)

func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage), errors.Is(err, ebs.ErrInvalidParameter):
		return exitUsage
	case errors.Is(err, ebs.ErrNotFound), errors.Is(err, ebs.ErrDeviceNotFound):
		return exitNotFound
	case errors.Is(err, ebs.ErrInUse):
		return exitInUse
	}
	return exitFailure
}
