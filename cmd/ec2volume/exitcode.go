package main

import (
	"errors"
	"flag"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/internal/cli"
)

// Exit codes: the table all cloudluks programs share (internal/cli).
const (
	exitOK       = cli.ExitOK
	exitFailure  = cli.ExitFailure  // the operation failed (EC2 refused, timed out, …)
	exitUsage    = cli.ExitUsage    // wrong command line
	exitNotFound = cli.ExitNoDevice // no such volume / instance / device
	exitInUse    = cli.ExitBusy     // volume attached, device name taken
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
