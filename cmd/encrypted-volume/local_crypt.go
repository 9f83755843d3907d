package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cloudluks/cloudluks/dmcrypt"
	"github.com/cloudluks/cloudluks/luks"
)

// formatSpec is what luksFormat makes: LUKS2 with v2's options, or LUKS1 with v1's.
type formatSpec struct {
	luks2 bool
	v1    luks.FormatOptions
	v2    luks.LUKS2FormatOptions
}

// luksFormat formats device (a block device or, in tests, an image file) and returns the
// header and the volume key, so the mapping is opened without a second PBKDF run. The
// caller wipes the key. On error the header is nil.
func luksFormat(ctx context.Context, device string, pass []byte, spec formatSpec) (luks.Metadata, *luks.VolumeKey, error) {
	f, err := os.OpenFile(device, os.O_RDWR|os.O_EXCL, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, deviceErr(device, err)
		}
		// O_EXCL on a block device fails with EBUSY while it is mounted or mapped.
		return nil, nil, coded(fmt.Errorf("%s: %w", device, err), errBusy)
	}
	defer f.Close()
	var hdr luks.Metadata
	var vk *luks.VolumeKey
	if spec.luks2 {
		_, vk, err = luks.FormatLUKS2(ctx, f, pass, spec.v2)
		if err == nil {
			if hdr, err = luks.ReadHeader2(f); err != nil {
				vk.Wipe()
			}
		}
	} else {
		var h1 *luks.Header
		if h1, vk, err = luks.Format(ctx, f, pass, spec.v1); err == nil {
			hdr = h1
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", device, err)
	}
	if err := f.Sync(); err != nil {
		vk.Wipe()
		return nil, nil, fmt.Errorf("%s: %w", device, err)
	}
	return hdr, vk, nil
}

// headerUUID is the LUKS UUID of a header of either version.
func headerUUID(m luks.Metadata) string {
	if ds, err := m.DataSegment(); err == nil {
		return ds.UUID
	}
	switch h := m.(type) {
	case *luks.Header:
		return h.UUID
	case *luks.Header2:
		return h.UUID
	}
	return ""
}

// luksUnlock reads the header (LUKS1 or LUKS2) of device and recovers its volume key with
// pass; the caller wipes the key.
func luksUnlock(ctx context.Context, device string, pass []byte) (luks.Metadata, *luks.VolumeKey, error) {
	f, err := os.Open(device)
	if err != nil {
		return nil, nil, deviceErr(device, err)
	}
	defer f.Close()
	hdr, vk, _, err := luks.UnlockAny(ctx, f, pass, luks.UnlockOptions{})
	if err != nil {
		return nil, nil, mapDMErr(fmt.Errorf("%s: %w", device, err))
	}
	return hdr, vk, nil
}

// DeviceMapper asks the kernel for its mappings: the cheapest question that fails the
// way an open would when dm-mod is missing or the caller is not root.
func (sysLocal) DeviceMapper() error {
	_, err := dmcrypt.List()
	return deviceMapperErr(err)
}

// deviceMapperErr is DeviceMapper's answer for dmcrypt's error: a caller without the
// privilege gets cryptsetup's "no permission" code, a kernel without device-mapper stays a
// plain failure of the preflight.
func deviceMapperErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("device-mapper: %w (load dm-mod and dm-crypt, run as root)", mapDMErr(err))
}

func (sysLocal) OpenWithKey(ctx context.Context, device, name string, hdr luks.Metadata, vk *luks.VolumeKey) (string, error) {
	m, err := dmcrypt.OpenWithKey(ctx, device, name, hdr, vk, dmcrypt.OpenOptions{})
	if err != nil {
		return "", mapDMErr(err)
	}
	return m.Path, nil
}

func (sysLocal) Close(ctx context.Context, name string) error {
	return mapDMErr(dmcrypt.Close(ctx, name))
}

// MappingDevice treats "no device-mapper in this kernel" like "no mapping": teardown and
// status then work on a machine (or host test) without dm.
func (sysLocal) MappingDevice(name string) (string, bool, error) {
	st, err := dmcrypt.Status(name)
	switch {
	case errors.Is(err, dmcrypt.ErrNotFound), errors.Is(err, dmcrypt.ErrNoDeviceMapper), errors.Is(err, dmcrypt.ErrUnsupported):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return st.Device, true, nil
}

func (sysLocal) MappingStatus(w io.Writer, name string) error {
	st, err := dmcrypt.Status(name)
	if errors.Is(err, dmcrypt.ErrNotFound) {
		return dmcrypt.DumpInactive(w, name)
	}
	if err != nil {
		return err
	}
	return st.Dump(w, name)
}

// mapDMErr adds the program's exit-code sentinels to the library's errors.
func mapDMErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, luks.ErrWrongPassphrase):
		return coded(err, errWrongPassphrase)
	case errors.Is(err, dmcrypt.ErrNotRoot), errors.Is(err, os.ErrPermission):
		return coded(err, errNoPermission)
	case errors.Is(err, dmcrypt.ErrExists), errors.Is(err, dmcrypt.ErrBusy):
		return coded(err, errBusy)
	case errors.Is(err, dmcrypt.ErrNoDevice), errors.Is(err, os.ErrNotExist):
		return coded(err, errDeviceMissing)
	}
	return err
}
