//go:build linux

package dm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OpenControl opens the device-mapper control node, creating it (misc 10:236, read from sysfs)
// when devtmpfs or udev has not, and checks the interface version (major 4).
func OpenControl() (*Control, error) {
	f, err := os.OpenFile(ControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		if err = mknodControl(); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(ControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		switch {
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
			return nil, fmt.Errorf("%s: %w (%w)", ControlPath, ErrNotRoot, unwrapErrno(err))
		case errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV), errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("%s: %w (%w)", ControlPath, ErrNoDeviceMapper, unwrapErrno(err))
		}
		return nil, fmt.Errorf("%s: %w", ControlPath, err)
	}
	c := &Control{f: f}
	h, _, err := c.run(cmdVersion, ioctlHeader{}, nil, 0)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("device-mapper version: %w", err)
	}
	if h.Version[0] != versionMajor {
		f.Close()
		return nil, fmt.Errorf("%w: device-mapper ioctl interface %d.%d.%d (need 4.x)", ErrNoDeviceMapper, h.Version[0], h.Version[1], h.Version[2])
	}
	c.version = h.Version
	return c, nil
}

func mknodControl() error {
	b, err := os.ReadFile(sysControlDev)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s and %s missing: %w", ControlPath, sysControlDev, ErrNoDeviceMapper)
		}
		return fmt.Errorf("%s: %w", sysControlDev, err)
	}
	maj, min, err := ParseMajorMinor(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%s: %w", sysControlDev, err)
	}
	if err := os.MkdirAll(MapperDir, 0o755); err != nil {
		return PermErr(MapperDir, err)
	}
	if err := unix.Mknod(ControlPath, unix.S_IFCHR|0o600, int(unix.Mkdev(maj, min))); err != nil && !errors.Is(err, unix.EEXIST) {
		return PermErr(ControlPath, err)
	}
	return nil
}

func PermErr(what string, err error) error {
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%s: %w (%w)", what, ErrNotRoot, unwrapErrno(err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// unwrapErrno returns the errno inside err (so errors.Is(err, os.ErrPermission) keeps working
// next to the package sentinel) or err itself.
func unwrapErrno(err error) error {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return err
}

func ParseMajorMinor(s string) (uint32, uint32, error) {
	a, b, ok := strings.Cut(s, ":")
	maj, err1 := strconv.ParseUint(a, 10, 32)
	min, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%w: device number %q", ErrProtocol, s)
	}
	return uint32(maj), uint32(min), nil
}

const sysControlDev = "/sys/class/misc/device-mapper/dev"

// The interface version this package speaks (the kernel answers with its own, 4.x).
const (
	versionMajor = 4
	versionMinor = 0
	versionPatch = 0
)

// Control is an open handle on /dev/mapper/control. Its methods are the device-mapper ioctls.
// A Control is safe for concurrent use (each call uses its own buffer).
type Control struct {
	f       *os.File
	version [3]uint32
}

func infoFromHeader(h ioctlHeader) DeviceInfo {
	maj, min := decodeDev(h.Dev)
	return DeviceInfo{
		Name:            h.Name,
		UUID:            h.UUID,
		Major:           maj,
		Minor:           min,
		OpenCount:       h.OpenCount,
		TargetCount:     h.TargetCount,
		EventNr:         h.EventNr,
		ReadOnly:        h.Flags&flagReadOnly != 0,
		Suspended:       h.Flags&flagSuspend != 0,
		ActivePresent:   h.Flags&flagActivePresent != 0,
		InactivePresent: h.Flags&flagInactivePresent != 0,
		DeferredRemove:  h.Flags&flagDeferredRemove != 0,
	}
}

// Close closes the control node.
func (c *Control) Close() error { return c.f.Close() }

// Version returns the kernel's device-mapper ioctl interface version (e.g. 4.47.0).
func (c *Control) Version() [3]uint32 { return c.version }

// run issues one ioctl. payload is copied after the header; out is the extra room (bytes) the
// kernel may fill. With flagSecureData the whole buffer is zeroed before it is dropped (the
// returned data is then a copy the caller must wipe). The buffer grows on DM_BUFFER_FULL_FLAG.
func (c *Control) run(cmd uint, h ioctlHeader, payload []byte, out int) (ioctlHeader, []byte, error) {
	if cmd == cmdDevStatus {
		statusCalls.Add(1)
	}
	size := ioctlHeaderSize + len(payload) + out
	for {
		buf := make([]byte, (size+7)&^7)
		h.Version = [3]uint32{versionMajor, versionMinor, versionPatch}
		h.DataSize = uint32(len(buf))
		h.DataStart = ioctlHeaderSize
		h.put(buf)
		copy(buf[ioctlHeaderSize:], payload)
		secure := h.Flags&flagSecureData != 0
		rc, err := c.ioctl(ioctlNumber(cmd), buf)
		_ = rc
		if err != nil {
			if secure {
				clear(buf)
			}
			return ioctlHeader{}, nil, err
		}
		oh, perr := parseHeader(buf)
		if perr != nil {
			clear(buf)
			return oh, nil, perr
		}
		if oh.Flags&flagBufferFull != 0 && out > 0 {
			if secure {
				clear(buf)
			}
			if size > 64<<20 {
				return oh, nil, fmt.Errorf("%w: result larger than 64 MiB", ErrProtocol)
			}
			size *= 2
			continue
		}
		var data []byte
		if oh.DataSize > oh.DataStart && int(oh.DataSize) <= len(buf) && oh.DataStart >= ioctlHeaderSize {
			data = make([]byte, oh.DataSize-oh.DataStart)
			copy(data, buf[oh.DataStart:oh.DataSize])
		}
		if secure {
			clear(buf)
		}
		return oh, data, nil
	}
}

func (c *Control) ioctl(req uint, buf []byte) (uintptr, error) {
	for {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, c.f.Fd(), uintptr(req), uintptr(unsafe.Pointer(&buf[0])))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return r, e
		}
		return r, nil
	}
}

// dmErr wraps an errno from a device-mapper command with the name and the package sentinel.
func dmErr(op, name string, err error) error {
	var sentinel error
	switch {
	case errors.Is(err, unix.ENXIO):
		sentinel = ErrNotFound
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		sentinel = ErrNotRoot
	case errors.Is(err, unix.EBUSY) && op == "create":
		sentinel = ErrExists
	case errors.Is(err, unix.EBUSY):
		sentinel = ErrBusy
	case errors.Is(err, unix.ENODEV):
		sentinel = ErrNoDevice
	}
	if sentinel != nil {
		return fmt.Errorf("%s %s: %w (%w)", op, name, sentinel, err)
	}
	return fmt.Errorf("%s %s: %w", op, name, err)
}

func byName(name string) (ioctlHeader, error) {
	if err := ValidateName(name); err != nil {
		return ioctlHeader{}, err
	}
	return ioctlHeader{Name: name}, nil
}

// Create makes an empty device with the given name and uuid (uuid may be empty).
func (c *Control) Create(name, uuid string) (DeviceInfo, error) {
	h, err := byName(name)
	if err != nil {
		return DeviceInfo{}, err
	}
	if len(uuid) > uuidLen-1 || strings.IndexByte(uuid, 0) >= 0 {
		return DeviceInfo{}, fmt.Errorf("create %s: %w: uuid", name, ErrInvalidParameter)
	}
	h.UUID = uuid
	oh, _, err := c.run(cmdDevCreate, h, nil, 0)
	if err != nil {
		return DeviceInfo{}, dmErr("create", name, err)
	}
	return infoFromHeader(oh), nil
}

// Load loads targets as the inactive table of name; Resume makes it live.
func (c *Control) Load(name string, targets []Target, opts LoadOptions) error {
	h, err := byName(name)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return fmt.Errorf("load %s: %w: no targets", name, ErrInvalidParameter)
	}
	payload := make([]byte, targetsSize(targets))
	defer clear(payload)
	if err := putTargets(payload, targets); err != nil {
		return fmt.Errorf("load %s: %w", name, err)
	}
	h.TargetCount = uint32(len(targets))
	if opts.ReadOnly {
		h.Flags |= flagReadOnly
	}
	if opts.Secure {
		h.Flags |= flagSecureData
	}
	if _, _, err := c.run(cmdTableLoad, h, payload, 0); err != nil {
		return dmErr("load table of", name, err)
	}
	return nil
}

// Resume activates the inactive table (DM_DEV_SUSPEND without the suspend flag).
func (c *Control) Resume(name string) (DeviceInfo, error) {
	h, err := byName(name)
	if err != nil {
		return DeviceInfo{}, err
	}
	oh, _, err := c.run(cmdDevSuspend, h, nil, 0)
	if err != nil {
		return DeviceInfo{}, dmErr("resume", name, err)
	}
	return infoFromHeader(oh), nil
}

// Suspend suspends I/O on name (flushing outstanding I/O first).
func (c *Control) Suspend(name string) error {
	h, err := byName(name)
	if err != nil {
		return err
	}
	h.Flags = flagSuspend
	if _, _, err := c.run(cmdDevSuspend, h, nil, 0); err != nil {
		return dmErr("suspend", name, err)
	}
	return nil
}

// statusCalls counts DM_DEV_STATUS ioctls process-wide.
var statusCalls atomic.Uint64

// StatusCalls returns how many DM_DEV_STATUS ioctls (Info) this process has issued, so tests
// can tell how often an operation asked the kernel whether a name exists.
func StatusCalls() uint64 { return statusCalls.Load() }

// Info returns the state of name (DM_DEV_STATUS).
func (c *Control) Info(name string) (DeviceInfo, error) {
	h, err := byName(name)
	if err != nil {
		return DeviceInfo{}, err
	}
	oh, _, err := c.run(cmdDevStatus, h, nil, 0)
	if err != nil {
		return DeviceInfo{}, dmErr("status of", name, err)
	}
	return infoFromHeader(oh), nil
}

// Table returns the live table of name. Crypt targets carry their key in hex: the kernel is
// told to wipe its copy (DM_SECURE_DATA_FLAG), the ioctl buffer is zeroed, and the caller must
// clear every returned Params.
func (c *Control) Table(name string) ([]Target, error) {
	return c.tableStatus(name, flagStatusTable|flagSecureData)
}

// TargetStatus returns the targets' runtime status lines (crypt: empty).
func (c *Control) TargetStatus(name string) ([]Target, error) {
	return c.tableStatus(name, 0)
}

func (c *Control) tableStatus(name string, flags uint32) ([]Target, error) {
	h, err := byName(name)
	if err != nil {
		return nil, err
	}
	h.Flags = flags
	oh, data, err := c.run(cmdTableStatus, h, nil, 16<<10)
	if err != nil {
		return nil, dmErr("table of", name, err)
	}
	ts, err := parseTargets(data, oh.TargetCount)
	if err != nil {
		clear(data)
		return nil, fmt.Errorf("table of %s: %w", name, err)
	}
	// Params alias data; hand out independent copies and wipe data.
	for i := range ts {
		ts[i].Params = append([]byte(nil), ts[i].Params...)
	}
	clear(data)
	return ts, nil
}

// List returns every device-mapper device with its uuid.
func (c *Control) List() ([]DeviceInfo, error) {
	return c.ListWithBuffer(16 << 10)
}

// ListWithBuffer is List starting with room for initial bytes of records; the buffer doubles
// while the kernel sets DM_BUFFER_FULL_FLAG (tests start tiny to exercise the growth).
func (c *Control) ListWithBuffer(initial int) ([]DeviceInfo, error) {
	_, data, err := c.run(cmdListDevices, ioctlHeader{Flags: flagUUID}, nil, initial)
	if err != nil {
		return nil, dmErr("list", "devices", err)
	}
	return parseNameList(data)
}

// CancelDeferredRemove withdraws a deferred removal that Remove with Deferred scheduled
// (the device message "@cancel_deferred_remove", as `cryptsetup close --cancel-deferred` and
// `dmsetup remove --cancel-deferred` send it). Without a pending deferred removal it does
// nothing; once the kernel has started removing the device it fails with ErrBusy.
func (c *Control) CancelDeferredRemove(name string) error {
	h, err := byName(name)
	if err != nil {
		return err
	}
	msg, err := targetMessage(0, "@cancel_deferred_remove")
	if err != nil {
		return err
	}
	if _, _, err := c.run(cmdTargetMsg, h, msg, 0); err != nil {
		return dmErr("cancel deferred remove of", name, err)
	}
	return nil
}

// Remove removes name. While the device is busy (open, e.g. by udev's blkid probe just after
// creation) it retries until ctx's deadline (DefaultRemoveTimeout without one), then returns an
// error wrapping ErrBusy — unless opts.Deferred, which schedules a deferred removal instead.
func (c *Control) Remove(ctx context.Context, name string, opts RemoveOptions) error {
	h, err := byName(name)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRemoveTimeout)
		defer cancel()
	}
	interval := opts.RetryInterval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	for {
		_, _, err := c.run(cmdDevRemove, h, nil, 0)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return dmErr("remove", name, err)
		}
		if opts.Deferred {
			dh := h
			dh.Flags = flagDeferredRemove
			if _, _, derr := c.run(cmdDevRemove, dh, nil, 0); derr != nil {
				return dmErr("deferred remove", name, derr)
			}
			return nil
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("remove %s: %w (%w)", name, ErrBusy, err)
		case <-t.C:
		}
	}
}
