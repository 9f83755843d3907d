package main

import (
	"context"
	"errors"
	"io"
)

// These adapters are wired to ebs, luks, dmcrypt and grubconf as those packages land.
var errNotWired = errors.New("not wired yet")

func newEBSCloud(progress io.Writer) func(ctx context.Context, c *config) (cloud, error) {
	return func(ctx context.Context, c *config) (cloud, error) { return nil, errNotWired }
}

type grubBoot struct{}

func (grubBoot) Disable(ctx context.Context, root, name, luksUUID string, w io.Writer) error {
	return errNotWired
}
func (grubBoot) Status(root, name string) (bool, string, error) { return false, "", errNotWired }

func (sysLocal) ResolveDevice(ctx context.Context, volumeID, deviceName string) (string, error) {
	return "", errNotWired
}
func (sysLocal) Format(ctx context.Context, device string, pass []byte, spec formatSpec) (formatted, error) {
	return nil, errNotWired
}
func (sysLocal) OpenFormatted(ctx context.Context, device, name string, f formatted) (string, error) {
	return "", errNotWired
}
func (sysLocal) Open(ctx context.Context, device, name string, pass []byte) (string, error) {
	return "", errNotWired
}
func (sysLocal) Close(ctx context.Context, name string) error { return errNotWired }
func (sysLocal) MappingDevice(name string) (string, bool, error) {
	return "", false, errNotWired
}
func (sysLocal) MappingStatus(w io.Writer, name string) error { return errNotWired }
