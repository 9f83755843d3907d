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

// luksFormatted keeps what luks.Format returned until the mapping is open.
type luksFormatted struct {
	device string
	hdr    *luks.Header
	vk     *luks.VolumeKey
}

func (f *luksFormatted) Dump(w io.Writer) error { return f.hdr.Dump(w, f.device) }
func (f *luksFormatted) UUID() string           { return f.hdr.UUID }
func (f *luksFormatted) Wipe() {
	if f.vk != nil {
		f.vk.Wipe()
	}
}

func (sysLocal) Format(ctx context.Context, device string, pass []byte, spec formatSpec) (formatted, error) {
	f, err := os.OpenFile(device, os.O_RDWR|os.O_EXCL, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, deviceErr(device, err)
		}
		// O_EXCL on a block device fails with EBUSY while it is mounted or mapped.
		return nil, coded(fmt.Errorf("%s: %w", device, err), errBusy)
	}
	defer f.Close()
	hdr, vk, err := luks.Format(ctx, f, pass, luks.FormatOptions{
		Cipher:          spec.Cipher,
		KeySize:         spec.KeyBits,
		Hash:            spec.Hash,
		IterTime:        spec.IterTime,
		ForceIterations: spec.ForceIterations,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", device, err)
	}
	if err := f.Sync(); err != nil {
		vk.Wipe()
		return nil, fmt.Errorf("%s: %w", device, err)
	}
	return &luksFormatted{device: device, hdr: hdr, vk: vk}, nil
}

func (sysLocal) OpenFormatted(ctx context.Context, device, name string, fm formatted) (string, error) {
	lf, ok := fm.(*luksFormatted)
	if !ok {
		panic("OpenFormatted: not from sysLocal.Format") // programmer misuse
	}
	m, err := dmcrypt.OpenWithKey(ctx, device, name, lf.hdr, lf.vk, dmcrypt.OpenOptions{})
	if err != nil {
		return "", mapDMErr(err)
	}
	return m.Path, nil
}

func (sysLocal) Open(ctx context.Context, device, name string, pass []byte) (string, error) {
	m, err := dmcrypt.Open(ctx, device, name, pass, dmcrypt.OpenOptions{})
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
	case errors.Is(err, dmcrypt.ErrExists), errors.Is(err, dmcrypt.ErrBusy):
		return coded(err, errBusy)
	case errors.Is(err, dmcrypt.ErrNoDevice), errors.Is(err, os.ErrNotExist):
		return coded(err, errDeviceMissing)
	}
	return err
}
