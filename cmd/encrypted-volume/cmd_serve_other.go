//go:build !linux

package main

import (
	"context"
	"errors"
	"time"
)

func lockFile(ctx context.Context, path string, wait time.Duration, waiting func()) (func(), error) {
	return nil, errors.New("serve runs on Linux only")
}

func ignoreHangup() {}

func sameDevice(mapped, dev string) bool { return mapped == dev }
