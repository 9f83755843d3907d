package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/luks"
)

// fakeLocal stands in for what needs privilege on a host without device-mapper: the
// mapping table, mount(2), mkfs and the wait for a device node. Devices are real files in a
// temporary directory, so luksFormat, luksDump, luksOpen's key recovery and the signature
// probe run for real on them.
type fakeLocal struct {
	mu       sync.Mutex
	dir      string            // where the device files are
	mappings map[string]string // name → device
	versions []int             // LUKS version of each header OpenWithKey was given
	mounts   []mountEntry
	calls    []string
	failMkfs error
	failOpen error
	noDM     error             // DeviceMapper's answer
	resolved map[string]string // volume ID → device
	anyVol   string            // when set, every volume resolves to this device
	// blockResolve makes WaitDevice wait for its context or timeout, as the real resolver
	// waits for a node that does not appear.
	blockResolve bool
	// waited, when set, is reported to WaitDevice's progress before it answers, as the
	// real resolver does every ten seconds.
	waited   []time.Duration
	lastWait time.Duration // the timeout WaitDevice was last given
}

func newFakeLocal(dir string) *fakeLocal {
	return &fakeLocal{dir: dir, mappings: map[string]string{}, resolved: map[string]string{}}
}

// fakeDeviceSize holds a LUKS1 header with a 512-bit key (2 MiB) and a payload.
const fakeDeviceSize = 4 << 20

// dev creates the device file name, zero-filled (a fresh disk), and returns its path.
func (f *fakeLocal) dev(name string) string {
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		panic(err)
	}
	if err := os.Truncate(p, fakeDeviceSize); err != nil {
		panic(err)
	}
	return p
}

// devWith creates the device file name holding content at its start.
func (f *fakeLocal) devWith(name string, content []byte) string {
	p := f.dev(name)
	fh, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		panic(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt(content, 0); err != nil {
		panic(err)
	}
	return p
}

func (f *fakeLocal) call(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeLocal) DeviceMapper() error { return f.noDM }

func (f *fakeLocal) WaitDevice(ctx context.Context, volumeID, deviceName string, timeout time.Duration, progress func(time.Duration)) (string, error) {
	f.call("wait %s %s", volumeID, deviceName)
	f.lastWait = timeout
	for _, w := range f.waited {
		progress(w)
	}
	if f.blockResolve {
		// A device that never appears: only the deadline ends the wait.
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		<-ctx.Done()
		return "", ctx.Err()
	}
	dev := f.resolved[volumeID]
	if f.anyVol != "" {
		dev = f.anyVol
	}
	if dev == "" {
		return "", fmt.Errorf("%s: %w", volumeID, errDeviceMissing)
	}
	return dev, nil
}

func (f *fakeLocal) OpenWithKey(ctx context.Context, device, name string, hdr luks.Metadata, vk *luks.VolumeKey) (string, error) {
	f.call("open %s %s", device, name)
	if f.failOpen != nil {
		return "", f.failOpen
	}
	if hdr == nil || vk == nil {
		return "", errors.New("open without a header and key")
	}
	// The key must be the header's: what the kernel's mapping would need.
	if err := luks.CheckVolumeKey(hdr, vk); err != nil {
		return "", err
	}
	f.versions = append(f.versions, hdr.LUKSVersion())
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
	if dev == "" {
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
func (c *fakeCloud) Create(ctx context.Context, zone string, size int, typ, name string) (string, error) {
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
	p := filepath.Join(c.local.dir, "nvme1n1")
	if _, err := os.Stat(p); err != nil {
		p = c.local.dev("nvme1n1") // the new volume appears as a fresh disk
	}
	c.local.resolved[id] = p
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
	disabled  map[string]bool
	fail      error
	failCheck error
}

func (b *fakeBoot) Check(root string) error { return b.failCheck }

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

func (t *fakeTerm) ReadPassword(context.Context) ([]byte, error) {
	t.asked++
	if len(t.passwords) == 0 {
		return nil, io.EOF
	}
	p := t.passwords[0]
	t.passwords = t.passwords[1:]
	return bytes.Clone(p), nil
}
func (t *fakeTerm) ReadLine(context.Context) (string, error) {
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
	l := newFakeLocal(testDevDir(t))
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
		stateDir: t.TempDir(),
	}
	return h
}

// run runs the program; a setup gets a fixed PBKDF2 iteration count unless the test gives
// one, so the real luksFormat does not calibrate for two seconds per run.
func (h *harness) run(args ...string) int {
	help := slices.Contains(args, "-h") || slices.Contains(args, "--help")
	if len(args) > 0 && args[0] == "setup" && !help && !slices.Contains(args, "--pbkdf-force-iterations") && !slices.Contains(args, "--iter-time") {
		// LUKS2 (the default) gets argon2id at its smallest costs, LUKS1 PBKDF2's minimum.
		fast := []string{"--pbkdf-force-iterations", "4", "--pbkdf-memory", "32", "--pbkdf-parallel", "1"}
		if slices.Contains(args, "luks1") || slices.Contains(args, "--type=luks1") || slices.Contains(args, "--pbkdf") {
			fast = []string{"--pbkdf-force-iterations", "1000"}
		}
		args = append(append([]string{"setup"}, fast...), args[1:]...)
	}
	return h.app.main(context.Background(), args)
}

// dev is h.local.dev.
func (h *harness) dev(name string) string { return h.local.dev(name) }

func (h *harness) setStdin(s string) { h.app.stdin = strings.NewReader(s) }

func tempMountPoint(t *testing.T) string {
	t.Helper()
	d := t.TempDir() + "/encrypted_vol"
	return d
}

var devDirs sync.Map // test name → its device directory

// testDevDir is the directory of a test's device files: the same for every harness of one
// test, so a device path can be named once per test.
func testDevDir(t *testing.T) string {
	t.Helper()
	if d, ok := devDirs.Load(t.Name()); ok {
		return d.(string)
	}
	d := t.TempDir()
	devDirs.Store(t.Name(), d)
	return d
}

// devPath is the path the device file name has (or will have) in this test.
func devPath(t *testing.T, name string) string { return filepath.Join(testDevDir(t), name) }
