//go:build !unix

package main

import (
	"context"
	"errors"
)

func lockFile(context.Context, string) (func(), error) {
	return nil, errors.New("no file locking on this system")
}
