package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/dmcrypt"
)

// TestScratchFlagsRefused: bad input to swap and tmp is refused while parsing, with a
// message naming the flag, exit 1, before any EC2 call or local action.
func TestScratchFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"swap", "--device", "/dev/x", "--cipher", "rot13-ecb"}, "--cipher rot13-ecb"},
		{[]string{"swap", "--device", "/dev/x", "--cipher", "aes-xts-plain64", "--key-size", "100"}, "--key-size"},
		{[]string{"tmp", "--device", "/dev/x", "--cipher", "cipher_null-ecb"}, "does not encrypt"},
		{[]string{"swap", "--device", "/dev/x", "--instance-store"}, "one of --device, --instance-store, --volume-id"},
		{[]string{"swap", "--no-aws"}, "--no-aws needs"},
		{[]string{"tmp", "--device", "/dev/x", "--mount-point", "/"}, "--mount-point"},
		{[]string{"tmp", "--device", "/dev/x", "--mount-point", "tmp"}, "--mount-point"},
		{[]string{"swap", "--device", "/dev/x", "--name", "a/b"}, "--name"},
		{[]string{"swap", "--volume-id", "v-1"}, "--volume-id"},
		{[]string{"swap", "--device", "/dev/x", "extra"}, "unexpected argument"},
	} {
		h := newHarness(t, "")
		code := h.run(tc.args...)
		assert.Equal(t, exitUsage, code, "%v: %s", tc.args, h.stderr)
		assert.Contains(t, h.stderr.String(), tc.want, tc.args)
		assert.Empty(t, h.local.calls, "%v: nothing done", tc.args)
	}
}

// TestScratchNeedsKernel: without the real machine (the host tests' fake), swap says so
// instead of pretending.
func TestScratchNeedsKernel(t *testing.T) {
	h := newHarness(t, "")
	code := h.run("swap", "--device", h.dev("nvme1n1"))
	require.Equal(t, exitUsage, code)
	assert.Contains(t, h.stderr.String(), "need a real kernel")
	assert.Empty(t, h.local.calls)
}

func TestScratchHelp(t *testing.T) {
	for _, v := range []string{"swap", "tmp"} {
		h := newHarness(t, "")
		require.Equal(t, 0, h.run(v, "--help"))
		for _, f := range []string{"--instance-store", "--device", "--cipher", "--key-size", "--force", "--root"} {
			assert.Contains(t, h.stdout.String(), f[1:], v)
		}
	}
}

// fakeScratch adds the scratch half of the machine to the host tests' fakeLocal: mappings
// with ephemeral keys, swap and typed mounts as bookkeeping, device files as disks.
type fakeScratch struct {
	*fakeLocal
	eph        map[string]bool
	swaps      map[string]bool
	store      []string
	failSwapon error
}

func newFakeScratch(l *fakeLocal) *fakeScratch {
	return &fakeScratch{fakeLocal: l, eph: map[string]bool{}, swaps: map[string]bool{}}
}

func (f *fakeScratch) OpenEphemeral(ctx context.Context, device, name, cipher string, keyBits int) (string, error) {
	f.call("open-ephemeral %s %s %s %d", device, name, cipher, keyBits)
	f.mappings[name], f.eph[name] = device, true
	return mapperPath(name), nil
}

func (f *fakeScratch) Close(ctx context.Context, name string) error {
	delete(f.eph, name)
	return f.fakeLocal.Close(ctx, name)
}

func (f *fakeScratch) Ephemeral(name string) (bool, bool, *dmcrypt.MappingStatus, error) {
	d, ok := f.mappings[name]
	if !ok {
		return false, false, nil, nil
	}
	st := &dmcrypt.MappingStatus{Name: name, Type: "PLAIN", UUID: "CRYPT-PLAIN-" + name, Device: d, Cipher: "aes-xts-plain64", KeySize: 64}
	if f.eph[name] {
		st.UUID = "CRYPT-PLAIN-EPHEMERAL-" + name // as dmcrypt.OpenEphemeral names it
	}
	return true, f.eph[name], st, nil
}

func (f *fakeScratch) ScratchMappings() ([]*dmcrypt.MappingStatus, error) {
	var out []*dmcrypt.MappingStatus
	for n := range f.eph {
		_, _, st, _ := f.Ephemeral(n)
		out = append(out, st)
	}
	return out, nil
}

func (f *fakeScratch) Swapon(device string) error {
	f.call("swapon %s", device)
	if f.failSwapon != nil {
		return f.failSwapon
	}
	f.swaps[device] = true
	return nil
}

func (f *fakeScratch) Swapoff(device string) error {
	f.call("swapoff %s", device)
	delete(f.swaps, device)
	return nil
}

func (f *fakeScratch) SwapActive(path string) (bool, error) { return f.swaps[path], nil }

func (f *fakeScratch) MountType(source, target, fstype string) error {
	f.call("mount -t %s %s %s", fstype, source, target)
	f.mounts = append(f.mounts, mountEntry{Source: source, MountPoint: target, FSType: fstype})
	return nil
}

func (f *fakeScratch) InstanceStore() ([]string, error) { return f.store, nil }

func (f *fakeScratch) StableName(device string) (string, error) {
	return "/dev/disk/by-id/nvme-Fake_Model_" + filepath.Base(device), nil
}

func (f *fakeScratch) DeviceSize(device string) (int64, error) { return 64 << 20, nil }

func (f *fakeScratch) Users(device string) (string, error) {
	for _, d := range f.mappings {
		if d == device {
			return "held by a mapping", nil
		}
	}
	return "", nil
}

func scratchRoot(t *testing.T) (string, map[string]string) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=\"rhel\"\nVERSION_ID=\"9.4\"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/fstab"), []byte("UUID=0c3b / xfs defaults 0 0\n"), 0o644))
	return root, snapshotTree(t, root)
}

// TestSwapOnNewEBSVolume: with no device named, swap creates and attaches an EBS volume
// through the cloud code, then maps, formats, switches on and writes the boot lines in
// that order; status shows the ephemeral mapping; teardown takes everything back.
func TestSwapOnNewEBSVolume(t *testing.T) {
	h := newHarness(t, "")
	fs := newFakeScratch(h.local)
	h.app.local = fs
	root, before := scratchRoot(t)
	code := h.run("swap", "--root", root, "--size", "8")
	require.Equal(t, 0, code, "%s\n%s", h.stdout, h.stderr)
	dev := filepath.Join(h.local.dir, "nvme1n1")
	out := h.stdout.String()
	last := -1
	for _, s := range []string{
		"Step 1/6: create and attach a 8 GiB gp3 EBS volume...",
		"VOLUME vol-00000000000000001 8 us-east-1c available",
		"local device: " + dev + " (/dev/disk/by-id/nvme-Fake_Model_nvme1n1)",
		"Step 2/6: open " + dev + " cryptswap with an ephemeral key (aes-xts-plain64, 512-bit)...",
		"Step 3/6: mkswap /dev/mapper/cryptswap...",
		"Step 4/6: swapon /dev/mapper/cryptswap...",
		"Step 5/6: crypttab and fstab lines for /dev/disk/by-id/nvme-Fake_Model_nvme1n1",
		"+cryptswap /dev/disk/by-id/nvme-Fake_Model_nvme1n1 /dev/urandom plain,cipher=aes-xts-plain64,size=512,hash=sha256,swap,nofail",
		"Step 6/6: cryptsetup status cryptswap...",
		"Done: swap on /dev/mapper/cryptswap",
	} {
		i := strings.Index(out, s)
		require.Greater(t, i, last, "%q missing or out of order in\n%s", s, out)
		last = i
	}
	assert.Equal(t, []string{"create us-east-1c 8 gp3", "attach vol-00000000000000001"}, h.cloud.calls)

	h.stdout.Reset()
	require.Equal(t, 0, h.run("status", "--name", "cryptswap", "--root", root, "--json"), h.stderr.String())
	var rep statusReport
	require.NoError(t, json.Unmarshal(h.stdout.Bytes(), &rep))
	require.Len(t, rep.Scratch, 1)
	assert.Equal(t, scratchReport{Name: "cryptswap", Device: dev, Cipher: "aes-xts-plain64", KeyBits: 512, EphemeralKey: true, KeySource: "crypto/rand", Use: "swap",
		BootLine: "cryptswap /dev/disk/by-id/nvme-Fake_Model_nvme1n1 /dev/urandom plain,cipher=aes-xts-plain64,size=512,hash=sha256,swap,nofail"}, rep.Scratch[0])

	h.stdout.Reset()
	require.Equal(t, 0, h.run("teardown", "--name", "cryptswap", "--root", root), h.stderr.String())
	assert.Contains(t, h.stdout.String(), "Step 1/5: swapoff or umount /dev/mapper/cryptswap...")
	assert.Empty(t, fs.swaps)
	assert.Empty(t, fs.mappings)
	assert.Equal(t, before, snapshotTree(t, root), "boot lines out, byte for byte")

	// teardown again: everything skipped, still exit 0.
	h.stdout.Reset()
	require.Equal(t, 0, h.run("teardown", "--name", "cryptswap", "--root", root))
}

// TestScratchFailureCleansUp: a failing step closes the mapping (its key is gone), writes
// no boot lines and names the volume the run created.
func TestScratchFailureCleansUp(t *testing.T) {
	h := newHarness(t, "")
	fs := newFakeScratch(h.local)
	fs.failSwapon = errors.New("swapon: invalid argument")
	h.app.local = fs
	root, before := scratchRoot(t)
	code := h.run("swap", "--root", root)
	require.NotEqual(t, 0, code)
	assert.Contains(t, h.stderr.String(), "step 4/6 failed (swapon /dev/mapper/cryptswap)")
	assert.Contains(t, h.stdout.String(), "Cleanup: closed cryptswap (its key is gone)")
	assert.Contains(t, h.stdout.String(), "teardown --name cryptswap --volume-id vol-00000000000000001 --delete")
	assert.Empty(t, fs.mappings)
	assert.Equal(t, before, snapshotTree(t, root))
}

// TestTmpOnInstanceStore: --instance-store skips a disk in use and takes the next; the
// mount point gets mode 1777 and the fstab line its mount point.
func TestTmpOnInstanceStore(t *testing.T) {
	h := newHarness(t, "")
	fs := newFakeScratch(h.local)
	h.app.local = fs
	busy, free := h.dev("nvme1n1"), h.dev("nvme2n1")
	fs.mappings["other"] = busy
	fs.store = []string{busy, free}
	root, _ := scratchRoot(t)
	mp := filepath.Join(t.TempDir(), "tmp")
	code := h.run("tmp", "--instance-store", "--mount-point", mp, "--force", "--root", root, "-q")
	require.Equal(t, 0, code, "%s\n%s", h.stdout, h.stderr)
	assert.Contains(t, h.stdout.String(), "instance store: using "+free)
	assert.Contains(t, h.local.calls, "mkfs mkfs.ext4 -q -m 0 /dev/mapper/crypttmp")
	assert.Contains(t, h.local.calls, "mount -t ext4 /dev/mapper/crypttmp "+mp)
	fi, err := os.Stat(mp)
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|os.ModeSticky|0o777, fi.Mode())
	fst, err := os.ReadFile(filepath.Join(root, "etc/fstab"))
	require.NoError(t, err)
	assert.Contains(t, string(fst), "/dev/mapper/crypttmp "+mp+" ext4 nosuid,nodev,nofail,x-systemd.before=local-fs.target,x-systemd.device-timeout=30s 0 0\n")
	assert.Empty(t, h.cloud.calls, "no EC2 for an instance-store disk")
}

// snapshotTree maps every file under root to its content (directories as "dir").
func snapshotTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if fi.IsDir() {
			out[rel] = "dir " + fi.Mode().String()
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = fi.Mode().String() + " " + string(b)
		return err
	}))
	return out
}

// TestScratchRefusedBeforeVolumeCreated: on the new-EBS-volume path, the boot
// configuration's refusals that need no device (a crypttab name, an fstab mount point
// taken, /usr as mount point) come before any cloud call: no volume is created and
// attached only to be left behind.
func TestScratchRefusedBeforeVolumeCreated(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		args                []string
		code                int
	}{
		{"fstab /tmp taken", "etc/fstab", "UUID=0c3b / xfs defaults 0 0\ntmpfs /tmp tmpfs defaults 0 0\n", []string{"tmp"}, 5},
		{"crypttab name taken", "etc/crypttab", "cryptswap /dev/disk/by-id/nvme-other none luks\n", []string{"swap"}, 5},
		{"crypttab tmp name taken", "etc/crypttab", "crypttmp UUID=1234 none luks\n", []string{"tmp"}, 5},
		{"mount point /usr", "", "", []string{"tmp", "--mount-point", "/usr", "--force"}, 1},
		{"mount point /var/lib/mysql", "", "", []string{"tmp", "--mount-point", "/var/lib/mysql", "--force"}, 1},
		{"mount point /scratch without --force", "", "", []string{"tmp", "--mount-point", "/scratch"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "")
			h.app.local = newFakeScratch(h.local)
			root, _ := scratchRoot(t)
			if tc.file != "" {
				require.NoError(t, os.WriteFile(filepath.Join(root, tc.file), []byte(tc.content), 0o644))
			}
			before := snapshotTree(t, root)
			code := h.run(append(tc.args, "--root", root, "-q")...)
			assert.Equal(t, tc.code, code, "%s\n%s", h.stdout, h.stderr)
			assert.Empty(t, h.cloud.calls, "no volume created or attached")
			assert.NotContains(t, h.stdout.String(), "Step 1/")
			assert.Equal(t, before, snapshotTree(t, root))
		})
	}
}

// TestTmpMountPointNeedsForce: /tmp and /var/tmp go without --force; anywhere else needs
// it, and a system directory is refused even with it — before anything happens.
func TestTmpMountPointNeedsForce(t *testing.T) {
	for _, tc := range []struct {
		mp    string
		force bool
		want  string
	}{
		{"/scratch", false, "--mount-point /scratch: a file system emptied at every boot goes on /tmp or /var/tmp; anywhere else needs --force"},
		{"/home", true, "mount point \"/home\""},
		{"/etc", true, "mount point \"/etc\""},
		{"/var", true, "mount point \"/var\""},
		{"/var/lib/mysql", true, "mount point \"/var/lib/mysql\""},
		{"/boot/efi", true, "mount point \"/boot/efi\""},
	} {
		h := newHarness(t, "")
		h.app.local = newFakeScratch(h.local)
		root, before := scratchRoot(t)
		args := []string{"tmp", "--mount-point", tc.mp, "--root", root, "-q"}
		if tc.force {
			args = append(args, "--force")
		}
		assert.Equal(t, 1, h.run(args...), tc.mp)
		assert.Contains(t, h.stderr.String(), tc.want, tc.mp)
		assert.Empty(t, h.cloud.calls, tc.mp)
		assert.Equal(t, before, snapshotTree(t, root), tc.mp)
	}
}
