package main

import (
	"errors"
	"flag"
	"os"

	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/keeper"
	"github.com/cloudluks/cloudluks/keeper/config"
	"github.com/cloudluks/cloudluks/keeper/consolekeys"
	"github.com/cloudluks/cloudluks/keeper/vault"
	"github.com/cloudluks/cloudluks/luks"
)

// Errors of the program itself.
var (
	errNoTarget = errors.New("no such target in the configuration")
	// OpenSSH's own words, capital and full stop included.
	errHostKeyRefused error = message("Host key verification failed.")
	errNotUnlocked          = errors.New("not every target is unlocked")
)

// message is an error whose text is another tool's message, kept word for word.
type message string

func (m message) Error() string { return string(m) }

// exitCode maps an error to the exit-code table every cloudluks program shares, in one place.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return cli.ExitOK
	case errors.Is(err, errUsage), errors.Is(err, config.ErrSyntax), errors.Is(err, config.ErrUnknownKey),
		errors.Is(err, config.ErrInvalid), errors.Is(err, vault.ErrInvalid), errors.Is(err, keeper.ErrInvalid):
		return cli.ExitUsage
	case errors.Is(err, vault.ErrWrongKey), errors.Is(err, keeper.ErrWrongPassphrase), errors.Is(err, luks.ErrWrongPassphrase), errors.Is(err, errHostKeyRefused),
		errors.Is(err, keeper.ErrHostKeyUnknown), errors.Is(err, keeper.ErrHostKeyChanged), errors.Is(err, keeper.ErrAuth),
		errors.Is(err, keeper.ErrRefused), errors.Is(err, consolekeys.ErrConflict), errors.Is(err, cli.ErrPassphraseMismatch), errors.Is(err, os.ErrPermission):
		return cli.ExitPermission
	case errors.Is(err, vault.ErrNotFound), errors.Is(err, errNoTarget), errors.Is(err, os.ErrNotExist),
		errors.Is(err, keeper.ErrNoPassphrase):
		return cli.ExitNoDevice
	case errors.Is(err, vault.ErrExists), errors.Is(err, vault.ErrLocked), errors.Is(err, vault.ErrChanged), errors.Is(err, keeper.ErrInUse):
		return cli.ExitBusy
	case errors.Is(err, errNotUnlocked):
		return cli.ExitNeedsUnlock
	}
	return cli.ExitFailure
}
