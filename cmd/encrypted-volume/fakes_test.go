package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/cloudluks/cloudluks/ebs"
)

// fakeLocal models the machine for tests on a host without device-mapper: devices are
// byte slices, a mapping remembers its device, mounts are a list.
type fakeLocal struct {
	mu       sync.Mutex
	devices  map[string][]byte // device path → content (first bytes)
	passes   map[string][]byte // device → passphrase it was formatted with
	mappings map[string]string // name → device
	mounts   []mountEntry
	calls    []string
	failMkfs error
	failOpen error
	resolved map[string]string // volume ID → device
	anyVol   string            // when set, every volume resolves to this device
	// blockResolve makes ResolveDevice wait for its context, as the real resolver waits for
	// a node that does not appear.
	blockResolve bool
}

func newFakeLocal() *fakeLocal {
	return &fakeLocal{
		devices:  map[string][]byte{},
		passes:   map[string][]byte{},
		mappings: map[string]string{},
		resolved: map[string]string{},
	}
}

func (f *fakeLocal) call(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeLocal) ResolveDevice(ctx context.Context, volumeID, deviceName string) (string, error) {
	f.call("resolve %s %s", volumeID, deviceName)
	if f.blockResolve {
		<-ctx.Done() // a device that never appears: only the caller's deadline ends the wait
		return "", ctx.Err()
	}
	dev := deviceName
	if volumeID != "" {
		dev = f.resolved[volumeID]
		if f.anyVol != "" {
			dev = f.anyVol
		}
	}
	if _, ok := f.devices[dev]; !ok || dev == "" {
		return "", fmt.Errorf("%s: %w", firstNonEmpty(volumeID, deviceName), errDeviceMissing)
	}
	return dev, nil
}

func (f *fakeLocal) Probe(ctx context.Context, device string) (string, error) {
	return probe(f.devices[device]), nil
}

type fakeFormatted struct {
	uuid  string
	wiped bool
	key   []byte
}

func (ff *fakeFormatted) Dump(w io.Writer) error {
	_, err := fmt.Fprintf(w, "LUKS header information\nUUID: %s\n", ff.uuid)
	return err
}
func (ff *fakeFormatted) UUID() string { return ff.uuid }
func (ff *fakeFormatted) Wipe()        { ff.wiped = true; clear(ff.key) }

func (f *fakeLocal) Format(ctx context.Context, device string, pass []byte, spec formatSpec) (formatted, error) {
	f.call("format %s %s %d %s %d", device, spec.Cipher, spec.KeyBits, spec.Hash, spec.ForceIterations)
	buf := make([]byte, probeSize)
	copy(buf, luksMagic)
	f.devices[device] = buf
	f.passes[device] = bytes.Clone(pass)
	return &fakeFormatted{uuid: "11111111-2222-3333-4444-555555555555", key: []byte("k")}, nil
}

func (f *fakeLocal) OpenFormatted(ctx context.Context, device, name string, fm formatted) (string, error) {
	f.call("openFormatted %s %s", device, name)
	if f.failOpen != nil {
		return "", f.failOpen
	}
	f.mappings[name] = device
	return mapperPath(name), nil
}

func (f *fakeLocal) Open(ctx context.Context, device, name string, pass []byte) (string, error) {
	f.call("open %s %s", device, name)
	if !bytes.Equal(f.passes[device], pass) {
		return "", fmt.Errorf("%s: %w", device, errWrongPassphrase)
	}
	f.mappings[name] = device
	return mapperPath(name), nil
}

func (f *fakeLocal) Close(ctx context.Context, name string) error {
	f.call("close %s", name)
	if _, ok := f.mappings[name]; !ok {
		return errors.New("no such mapping")
	}
	delete(f.mappings, name)
	return nil
}

func (f *fakeLocal) MappingDevice(name string) (string, bool, error) {
	d, ok := f.mappings[name]
	return d, ok, nil
}

func (f *fakeLocal) MappingStatus(w io.Writer, name string) error {
	d, ok := f.mappings[name]
	if !ok {
		return fmt.Errorf("%s is inactive", name)
	}
	_, err := fmt.Fprintf(w, "%s is active.\n  device:  %s\n", mapperPath(name), d)
	return err
}

func (f *fakeLocal) Mkfs(ctx context.Context, argv []string, device string, stdout, stderr io.Writer) error {
	f.call("mkfs %s %s", strings.Join(argv, " "), device)
	return f.failMkfs
}

func (f *fakeLocal) Mount(source, target string) error {
	f.call("mount %s %s", source, target)
	f.mounts = append(f.mounts, mountEntry{Source: source, MountPoint: target, FSType: "ext4"})
	return nil
}

func (f *fakeLocal) Unmount(target string) error {
	f.call("umount %s", target)
	for i, m := range f.mounts {
		if m.MountPoint == target {
			f.mounts = append(f.mounts[:i], f.mounts[i+1:]...)
			return nil
		}
	}
	return errors.New("not mounted")
}

func (f *fakeLocal) DeviceUsers(ctx context.Context, volumeID string) (string, string, error) {
	f.call("users %s", volumeID)
	dev := f.resolved[volumeID]
	if f.anyVol != "" {
		dev = f.anyVol
	}
	if _, ok := f.devices[dev]; !ok || dev == "" {
		return "", "", nil
	}
	var users []string
	for name, d := range f.mappings {
		if d == dev {
			users = append(users, "held by dm-0 (mapping "+name+")")
		}
	}
	for _, m := range f.mounts {
		if m.Source == dev {
			users = append(users, "mounted on "+m.MountPoint)
		}
	}
	return dev, strings.Join(users, ", "), nil
}

func (f *fakeLocal) Mounts() ([]mountEntry, error) {
	return append([]mountEntry(nil), f.mounts...), nil
}

// fakeCloud is an in-memory EC2 for the step logic; the real ebs adapter is tested against
// moto in cloud_test.go.
type fakeCloud struct {
	local    *fakeLocal
	volumes  map[string]string // id → attached device ("" = available)
	n        int
	calls    []string
	failNext error
	// failCreateWait makes Create return the new ID with an error (the wait for
	// "available" failed).
	failCreateWait error
}

func (c *fakeCloud) Placement(ctx context.Context) (string, string, error) {
	return "i-0123456789abcdef0", "us-east-1c", nil
}
func (c *fakeCloud) Create(ctx context.Context, zone string, size int, typ string) (string, error) {
	c.calls = append(c.calls, fmt.Sprintf("create %s %d %s", zone, size, typ))
	c.n++
	id := fmt.Sprintf("vol-%017x", c.n)
	c.volumes[id] = ""
	if c.failCreateWait != nil {
		return id, c.failCreateWait
	}
	return id, nil
}
func (c *fakeCloud) Attach(ctx context.Context, id, want string) (string, error) {
	c.calls = append(c.calls, "attach "+id)
	if c.failNext != nil {
		err := c.failNext
		c.failNext = nil
		return "", err
	}
	c.volumes[id] = "/dev/sdf"
	dev := "/dev/nvme1n1"
	c.local.devices[dev] = make([]byte, probeSize)
	c.local.resolved[id] = dev
	return "/dev/sdf", nil
}
func (c *fakeCloud) Attachment(ctx context.Context, id string) (string, bool, error) {
	d, ok := c.volumes[id]
	if !ok {
		return "", false, fmt.Errorf("%s: InvalidVolume.NotFound", id)
	}
	return d, d != "", nil
}
func (c *fakeCloud) Detach(ctx context.Context, id string) error {
	c.calls = append(c.calls, "detach "+id)
	if _, ok := c.volumes[id]; !ok {
		return c.notFound("detach", id)
	}
	c.volumes[id] = ""
	return nil
}
func (c *fakeCloud) Delete(ctx context.Context, id string) error {
	c.calls = append(c.calls, "delete "+id)
	if _, ok := c.volumes[id]; !ok {
		return c.notFound("delete", id)
	}
	delete(c.volumes, id)
	return nil
}

// notFound is what the ebs adapter returns for an unknown volume: the ebs package's error
// through the same mapping (ebsErr).
func (c *fakeCloud) notFound(op, id string) error {
	return ebsErr(&ebs.Error{Op: op, VolumeID: id, Err: fmt.Errorf("%w: InvalidVolume.NotFound", ebs.ErrNotFound)})
}

type fakeBoot struct {
	disabled map[string]bool
	fail     error
}

func (b *fakeBoot) Disable(ctx context.Context, root string, v bootVolume, w io.Writer) error {
	if b.fail != nil {
		return b.fail
	}
	b.disabled[root] = true
	fmt.Fprintf(w, "    edited %s/etc/grub.conf\n", root)
	return nil
}
func (b *fakeBoot) Status(root string, v bootVolume) (bool, string, error) {
	return b.disabled[root], "fake", nil
}

// fakeTerm answers prompts from a script.
type fakeTerm struct {
	passwords [][]byte
	lines     []string
	asked     int
}

func (t *fakeTerm) ReadPassword() ([]byte, error) {
	t.asked++
	if len(t.passwords) == 0 {
		return nil, io.EOF
	}
	p := t.passwords[0]
	t.passwords = t.passwords[1:]
	return bytes.Clone(p), nil
}
func (t *fakeTerm) ReadLine() (string, error) {
	t.asked++
	if len(t.lines) == 0 {
		return "", io.EOF
	}
	l := t.lines[0]
	t.lines = t.lines[1:]
	return l, nil
}

// harness is an app over fakes plus its captured output.
type harness struct {
	app    *app
	local  *fakeLocal
	cloud  *fakeCloud
	boot   *fakeBoot
	stdout *bytes.Buffer
	stderr *bytes.Buffer
}

func newHarness(t *testing.T, stdin string) *harness {
	t.Helper()
	l := newFakeLocal()
	h := &harness{
		local:  l,
		cloud:  &fakeCloud{local: l, volumes: map[string]string{}},
		boot:   &fakeBoot{disabled: map[string]bool{}},
		stdout: &bytes.Buffer{},
		stderr: &bytes.Buffer{},
	}
	h.app = &app{
		stdin: strings.NewReader(stdin), stdout: h.stdout, stderr: h.stderr,
		newCloud: func(context.Context, *config) (cloud, error) { return h.cloud, nil },
		local:    l,
		boot:     h.boot,
	}
	return h
}

func (h *harness) run(args ...string) int {
	return h.app.main(context.Background(), args)
}

func (h *harness) setStdin(s string) { h.app.stdin = strings.NewReader(s) }

func tempMountPoint(t *testing.T) string {
	t.Helper()
	d := t.TempDir() + "/encrypted_vol"
	return d
}
