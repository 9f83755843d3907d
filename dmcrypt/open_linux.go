//go:build linux

package dmcrypt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/dmcrypt/internal/dm"
	"github.com/cloudluks/cloudluks/dmcrypt/internal/loop"
	"github.com/cloudluks/cloudluks/luks"
)

const udevControl = "/run/udev/control"

// Open unlocks the LUKS1 or LUKS2 device (block device or image file) with passphrase and
// maps it as /dev/mapper/NAME, like `cryptsetup open DEVICE NAME`. An image file is attached
// to a loop device first (autoclear: it detaches when the mapping goes away). On any error
// nothing is left behind: no mapping, no loop device, no keyring key.
func Open(ctx context.Context, device, name string, passphrase []byte, opts OpenOptions) (*Mapping, error) {
	return OpenWithAny(ctx, device, name, func() (luks.Metadata, *luks.VolumeKey, int, error) {
		hdrPath := device
		if opts.Header != "" {
			hdrPath = opts.Header
		}
		hf, err := os.Open(hdrPath)
		if err != nil {
			return nil, nil, 0, deviceErr(hdrPath, err)
		}
		defer hf.Close()
		h, vk, slot, err := luks.UnlockAny(ctx, hf, passphrase, luks.UnlockOptions{Keyslot: opts.Keyslot, MaxIterations: opts.MaxIterations})
		if err != nil {
			return nil, nil, 0, fmt.Errorf("%s: %w", hdrPath, err)
		}
		return h, vk, slot, nil
	}, opts)
}

// OpenWith is Open with the unlock step supplied by the caller (a passphrase prompt, a key
// file, a key from elsewhere): it checks first that device-mapper is there, that the caller
// may use it and that name is free — before the costly PBKDF2 work and before a prompt, as
// cryptsetup does — then calls unlock once and maps the device with the key it returns. The
// key is wiped before OpenWith returns. An error from unlock is returned unchanged.
func OpenWith(ctx context.Context, device, name string, unlock func() (*luks.Header, *luks.VolumeKey, int, error), opts OpenOptions) (*Mapping, error) {
	if unlock == nil {
		return OpenWithAny(ctx, device, name, nil, opts)
	}
	return OpenWithAny(ctx, device, name, func() (luks.Metadata, *luks.VolumeKey, int, error) {
		h, vk, slot, err := unlock()
		if h == nil {
			return nil, vk, slot, err
		}
		return h, vk, slot, err
	}, opts)
}

// OpenWithAny is OpenWith for an unlock function that returns a header of either version
// (luks.UnlockAny's result).
func OpenWithAny(ctx context.Context, device, name string, unlock func() (luks.Metadata, *luks.VolumeKey, int, error), opts OpenOptions) (*Mapping, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if unlock == nil {
		return nil, fmt.Errorf("open %s: %w: no unlock function", name, ErrInvalidParameter)
	}
	c, err := openFree(name)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	h, vk, slot, err := unlock()
	if vk != nil {
		defer vk.Wipe()
	}
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("open %s: %w: unlock returned no header", name, ErrInvalidParameter)
	}
	m, err := openWithKey(ctx, c, device, name, h, vk, opts)
	if err != nil {
		return nil, err
	}
	m.Keyslot = slot
	return m, nil
}

// openFree opens the control node and checks that name is not taken: the one name-exists
// check of an open (the kernel's create refuses a name taken since, so this is only about
// failing early and cheaply).
func openFree(name string) (*dm.Control, error) {
	c, err := dm.OpenControl()
	if err != nil {
		return nil, err
	}
	if _, err := c.Info(name); err == nil {
		c.Close()
		return nil, fmt.Errorf("device %s: %w", name, ErrExists)
	}
	return c, nil
}

func deviceErr(path string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("device %s: %w", path, ErrNoDevice)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("device %s: %w", path, ErrNotRoot)
	}
	return fmt.Errorf("device %s: %w", path, err)
}

// OpenWithKey maps device under name with an already unlocked volume key (e.g. from
// luks.UnlockAny or luks.Format). h (a *luks.Header or *luks.Header2) describes the payload
// through its DataSegment: cipher, key size, offset, size, sector size, IV tweak, uuid,
// and for LUKS2 the persistent flags of config.flags, which add to opts' flags as in
// cryptsetup. A LUKS2 key always goes through the kernel keyring, as cryptsetup 2.6 hands
// it over, under cryptsetup's own description ("cryptsetup:<uuid>-d<digest>").
func OpenWithKey(ctx context.Context, device, name string, h luks.Metadata, vk *luks.VolumeKey, opts OpenOptions) (*Mapping, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if _, err := segmentTable(h, vk, device, ^uint64(0)); err != nil {
		return nil, err // nil or mismatched key: fail before touching the kernel
	}
	c, err := openFree(name)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return openWithKey(ctx, c, device, name, h, vk, opts)
}

// openWithKey maps device with the name openFree has checked.
func openWithKey(ctx context.Context, c *dm.Control, device, name string, h luks.Metadata, vk *luks.VolumeKey, opts OpenOptions) (m *Mapping, err error) {
	if _, err := segmentTable(h, vk, device, ^uint64(0)); err != nil {
		return nil, err // an unlock function that returned no key
	}
	var st unix.Stat_t
	if err := unix.Stat(device, &st); err != nil {
		return nil, deviceErr(device, err)
	}
	m = &Mapping{Name: name, Path: dm.MapperDir + "/" + name, Keyslot: -1, ReadOnly: opts.ReadOnly}
	devPath := device
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		if abs, err := filepath.Abs(device); err == nil {
			devPath = abs
		}
		// A read-only block device (an EBS volume attached read-only, a read-only loop
		// device) is mapped read-only, as cryptsetup does; the kernel would accept a
		// read/write table and fail the writes later.
		if ro, err := blockReadOnly(devPath); err != nil {
			return nil, err
		} else if ro {
			m.ReadOnly = true
		}
	case unix.S_IFREG:
		lo, err := loop.Attach(device, loop.Options{ReadOnly: opts.ReadOnly, Autoclear: true})
		if err != nil {
			return nil, err
		}
		// Our handle keeps the autoclear loop alive until the table holds it; closing it on
		// any failure path detaches the loop.
		defer lo.Close()
		devPath = lo.Path
		m.BackingFile = lo.BackingFile
		if lo.ReadOnly {
			m.ReadOnly = true
		}
	default:
		return nil, fmt.Errorf("device %s: %w: not a block device or regular file", device, ErrNoDevice)
	}
	m.Device = devPath

	sectors, err := deviceSectors(devPath)
	if err != nil {
		return nil, err
	}
	table, err := segmentTable(h, vk, devPath, sectors)
	if err != nil {
		return nil, err
	}
	seg, _ := h.DataSegment() // checked by segmentTable
	m.UUID = dm.LUKS1UUID(seg.UUID, name)
	table.AllowDiscards = opts.AllowDiscards
	table.SameCPUCrypt = opts.SameCPUCrypt
	table.SubmitFromCryptCPUs = opts.SubmitFromCryptCPUs
	table.NoReadWorkqueue = opts.NoReadWorkqueue
	table.NoWriteWorkqueue = opts.NoWriteWorkqueue
	keyDesc := ""
	if opts.Keyring {
		keyDesc = dm.KeyDescription(m.UUID)
	}
	if h2, ok := h.(*luks.Header2); ok {
		m.UUID = dm.LUKS2UUID(seg.UUID, name)
		applyPersistentFlags(table, seg.Flags)
		d, _ := h2.SegmentDigest(0)
		keyDesc = dm.LUKS2KeyDescription(seg.UUID, d)
	}
	if keyDesc != "" {
		table.Key = nil
		table.Keyring = &dm.KeyringKey{Type: "logon", Description: keyDesc, Size: vk.Len()}
	}
	tgt, err := table.Target()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer clear(tgt.Params)

	info, err := c.Create(name, m.UUID)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			// Never leave a half-made device behind.
			rctx, cancel := context.WithTimeout(context.Background(), dm.DefaultRemoveTimeout)
			defer cancel()
			_ = c.Remove(rctx, name, dm.RemoveOptions{})
			removeNode(name, info.Major, info.Minor)
		}
	}()
	load := func() error {
		return c.Load(name, []dm.Target{tgt}, dm.LoadOptions{ReadOnly: m.ReadOnly, Secure: table.HasKeyMaterial()})
	}
	if table.Keyring != nil {
		err = dm.WithThreadKey(table.Keyring.Description, vk.Bytes(), load)
	} else {
		err = load()
	}
	if err != nil {
		return nil, err
	}
	if info, err = c.Resume(name); err != nil {
		return nil, err
	}
	m.Major, m.Minor = info.Major, info.Minor
	if err = ensureNode(ctx, name, info.Major, info.Minor); err != nil {
		return nil, err
	}
	return m, nil
}

// blockReadOnly reports whether the block device at path is read-only (BLKROGET).
func blockReadOnly(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, deviceErr(path, err)
	}
	defer f.Close()
	ro, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKROGET)
	if err != nil {
		return false, fmt.Errorf("device %s: BLKROGET: %w", path, err)
	}
	return ro != 0, nil
}

func deviceSectors(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, deviceErr(path, err)
	}
	defer f.Close()
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("device %s: size: %w", path, err)
	}
	return uint64(n) / 512, nil
}

// ensureNode makes /dev/mapper/NAME point at the new device. With udevd running (its control
// socket exists) udev's dm rules create the node; wait briefly for it rather than racing udev.
// Without udev (or when udev does not deliver), mknod it.
func ensureNode(ctx context.Context, name string, major, minor uint32) error {
	path := dm.MapperDir + "/" + name
	want := unix.Mkdev(major, minor)
	if _, err := os.Stat(udevControl); err == nil {
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if nodeIs(path, want) {
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if nodeIs(path, want) {
		return nil
	}
	_ = os.Remove(path) // stale node of an earlier device with this name
	if err := os.MkdirAll(dm.MapperDir, 0o755); err != nil {
		return dm.PermErr(dm.MapperDir, err)
	}
	if err := unix.Mknod(path, unix.S_IFBLK|0o660, int(want)); err != nil && !errors.Is(err, unix.EEXIST) {
		return dm.PermErr(path, err)
	}
	return nil
}

// nodeIs reports whether path is (or links to) the block device want.
func nodeIs(path string, want uint64) bool {
	var st unix.Stat_t
	return unix.Stat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == want
}

// removeNode unlinks /dev/mapper/NAME when it is the node of major:minor (device-mapper never
// removes it; udev would, and then this finds nothing).
func removeNode(name string, major, minor uint32) {
	path := dm.MapperDir + "/" + name
	var st unix.Stat_t
	if unix.Lstat(path, &st) != nil {
		return
	}
	if st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == unix.Mkdev(major, minor) {
		_ = os.Remove(path)
	}
}

// Close removes the mapping name, retrying while it is busy until ctx's deadline
// (5 s without one). A loop device under it that was attached with autoclear
// (by Open or by cryptsetup) detaches; Close waits briefly for that.
func Close(ctx context.Context, name string) error {
	return CloseWithOptions(ctx, name, CloseOptions{})
}

// CloseWithOptions is Close with options: Deferred schedules the removal for the last close
// when the mapping is in use; CancelDeferred withdraws such a scheduled removal instead of
// closing (the mapping stays).
func CloseWithOptions(ctx context.Context, name string, opts CloseOptions) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	c, err := dm.OpenControl()
	if err != nil {
		return err
	}
	defer c.Close()
	info, err := c.Info(name)
	if err != nil {
		return err
	}
	if opts.CancelDeferred {
		if err := c.CancelDeferredRemove(name); err != nil {
			return err
		}
		// A deferred close unlinked /dev/mapper/NAME; the mapping stays after all, so give
		// it its node back (udev, when running, does not: it saw no remove event).
		return ensureNode(ctx, name, info.Major, info.Minor)
	}
	loopDev := ""
	if ts, err := c.Table(name); err == nil {
		if len(ts) == 1 && ts[0].Type == "crypt" {
			if ct, err := dm.ParseCryptTarget(ts[0]); err == nil {
				ct.Wipe()
				if maj, min, err := dm.ParseMajorMinor(ct.Device); err == nil {
					if p := blockPath(maj, min); strings.HasPrefix(p, "/dev/loop") {
						loopDev = p
					}
				}
			}
		}
		for _, t := range ts {
			clear(t.Params)
		}
	}
	if err := c.Remove(ctx, name, dm.RemoveOptions{Deferred: opts.Deferred}); err != nil {
		return err
	}
	removeNode(name, info.Major, info.Minor)
	if loopDev != "" {
		if _, err := c.Info(name); errors.Is(err, ErrNotFound) {
			waitLoopDetached(ctx, loopDev)
		}
	}
	return nil
}

// waitLoopDetached gives the kernel a moment to finish an autoclear detach, so a caller that
// checks right after Close sees the loop device free. Non-autoclear loops are left alone,
// as cryptsetup leaves them.
func waitLoopDetached(ctx context.Context, dev string) {
	base := filepath.Base(dev)
	b, err := os.ReadFile("/sys/block/" + base + "/loop/autoclear")
	if err != nil || strings.TrimSpace(string(b)) != "1" {
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if loop.BackingFile(base) == "" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// blockPath names the block device major:minor the way cryptsetup's crypt_lookup_dev does:
// "/dev/mapper/NAME" for device-mapper devices, else "/dev/" + the sysfs name.
func blockPath(major, minor uint32) string {
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", major, minor)
	if b, err := os.ReadFile(sys + "/dm/name"); err == nil {
		return dm.MapperDir + "/" + strings.TrimSpace(string(b))
	}
	if l, err := os.Readlink(sys); err == nil {
		return "/dev/" + filepath.Base(l)
	}
	return fmt.Sprintf("%d:%d", major, minor)
}

// Status reports the mapping name like `cryptsetup status NAME`: any crypt mapping, made by
// this package or by cryptsetup. A name that is not active gives ErrNotFound.
func Status(name string) (*MappingStatus, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	c, err := dm.OpenControl()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	info, err := c.Info(name)
	if err != nil {
		return nil, err
	}
	s := &MappingStatus{
		Name: name, UUID: info.UUID, Type: dm.TypeFromUUID(info.UUID),
		Major: info.Major, Minor: info.Minor,
		OpenCount: info.OpenCount, InUse: info.OpenCount > 0,
		Suspended: info.Suspended, ReadOnly: info.ReadOnly,
	}
	if !info.ActivePresent {
		return s, nil
	}
	ts, err := c.Table(name)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, t := range ts {
			clear(t.Params)
		}
	}()
	if len(ts) == 0 {
		return s, nil
	}
	s.TargetType = ts[0].Type
	if ts[0].Type != "crypt" {
		return s, nil
	}
	ct, err := dm.ParseCryptTarget(ts[0])
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", name, err)
	}
	s.fillFromTable(ct)
	ct.Wipe()
	// A multi-segment table (not made by LUKS1 tools) reports its total size.
	s.Size = 0
	for _, t := range ts {
		s.Size += t.Length
	}
	if maj, min, err := dm.ParseMajorMinor(ct.Device); err == nil {
		s.DeviceMajor, s.DeviceMinor = maj, min
		s.Device = blockPath(maj, min)
	}
	s.Loop = loop.BackingFile(s.Device)
	return s, nil
}

// List returns every device-mapper device (any target type: crypt mappings have a uuid
// starting "CRYPT-") with its Name, Path, UUID, Major and Minor set.
func List() ([]Mapping, error) {
	c, err := dm.OpenControl()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ds, err := c.List()
	if err != nil {
		return nil, err
	}
	ms := make([]Mapping, len(ds))
	for i, d := range ds {
		ms[i] = Mapping{Name: d.Name, Path: dm.MapperDir + "/" + d.Name, UUID: d.UUID, Major: d.Major, Minor: d.Minor, Keyslot: -1}
	}
	return ms, nil
}

// NameFromPath returns the device-mapper name behind a path such as /dev/mapper/NAME or
// /dev/dm-3, the way libdevmapper resolves a path given where a name is expected: a block
// device of device-mapper is asked for its name in sysfs; otherwise a path under /dev/mapper
// stands for its last element. A missing path gives ErrNotFound (cryptsetup then reports the
// device as inactive without asking the kernel).
func NameFromPath(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", fmt.Errorf("%s: %w (%w)", path, ErrNotFound, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		b, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/dm/name", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
		if err == nil {
			return strings.TrimSpace(string(b)), nil
		}
	}
	if filepath.Dir(path) == dm.MapperDir {
		return filepath.Base(path), nil
	}
	return "", fmt.Errorf("%s: %w: not a device-mapper device", path, ErrNotFound)
}
