package main

import (
	"errors"

	"github.com/cloudluks/cloudluks/internal/cli"
)

// Exit codes, as cryptsetup(8) defines them.
const (
	exitOK        = cli.ExitOK
	exitUsage     = cli.ExitUsage      // wrong parameters, or a step failed for another reason
	exitNoPerm    = cli.ExitPermission // wrong passphrase, or not privileged (device-mapper as non-root)
	exitNoDevice  = cli.ExitNoDevice   // wrong or missing device
	exitBusy      = cli.ExitBusy       // device or mount point busy, already formatted, mapping exists
	exitOtherFail = cli.ExitFailure
)

var (
	errWrongPassphrase = errors.New("no key available with this passphrase")
	errDeviceMissing   = errors.New("device not found")
	errNoPermission    = errors.New("permission denied")
	errBusy            = errors.New("busy")
	errAlreadyUsed     = errors.New("already holds data")
	// errVolumeGone marks an EC2 answer that the volume does not exist: teardown treats it
	// as "nothing left to detach or delete" (its exit code stays that of errDeviceMissing).
	errVolumeGone = errors.New("volume does not exist")
)

// exitCode maps an error to the exit code, in one place.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errNeedsUnlock):
		return cli.ExitNeedsUnlock
	case errors.Is(err, errUsage), errors.Is(err, errAborted), errors.Is(err, errEmptyPass):
		return exitUsage
	case errors.Is(err, errWrongPassphrase), errors.Is(err, errPassMismatch), errors.Is(err, errNoPermission):
		return exitNoPerm
	case errors.Is(err, errDeviceMissing):
		return exitNoDevice
	case errors.Is(err, errBusy), errors.Is(err, errAlreadyUsed):
		return exitBusy
	default:
		return exitOtherFail
	}
}

// coded attaches sentinels (an exit code, errVolumeGone) to err without changing its text.
type codedError struct {
	err   error
	codes []error
}

func (e *codedError) Error() string   { return e.err.Error() }
func (e *codedError) Unwrap() []error { return append([]error{e.err}, e.codes...) }

func coded(err error, codes ...error) error { return &codedError{err: err, codes: codes} }
