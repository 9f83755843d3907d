//go:build !linux

package cli

import (
	"context"

	"golang.org/x/term"
)

// ReadPasswordContext is term.ReadPassword; ctx is not honoured off Linux.
func ReadPasswordContext(_ context.Context, fd int) ([]byte, error) {
	return term.ReadPassword(fd)
}
