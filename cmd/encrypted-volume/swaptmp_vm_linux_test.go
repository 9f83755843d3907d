package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/dmcrypt"
	"github.com/cloudluks/cloudluks/internal/vmtest"
	"github.com/cloudluks/cloudluks/luks"
)

const (
	vmSwapSerial = "AWS1A2B3C4D5E6F7A8B9" // instance-store style serials (≤ 20 characters)
	vmTmpSerial  = "AWS2B3C4D5E6F7A8B9C0"
	vmScratchLen = 48 << 20
	vmTmpMount   = "/scratchtmp" // the guest's /tmp is the harness's tmpfs
)

// scratchMarker is the test pattern: it must be found through the mappings (the positive
// control) and never on the raw disks.
var scratchMarker = []byte("CLOUDLUKS-SCRATCH-PATTERN:plaintext-that-must-not-reach-the-disk:")

func markerPattern(n int) []byte {
	b := bytes.Repeat(scratchMarker, n/len(scratchMarker)+1)
	return b[:n]
}

// TestSwapTmpVM: in one boot, swap on an NVMe disk is an active swap; the pages of a
// process squeezed by a small memory cgroup (or, failing that, a pattern written to the
// mapping) go to it in plaintext as seen through the mapping, yet after teardown
// (swapoff, close, boot lines out) the raw disk holds neither a swap signature nor the
// pattern; a second ephemeral open (a new boot) does not decrypt the old ciphertext. The
// same for tmp with a file in the mounted filesystem. Then the refusals: a device with a
// filesystem, a mounted device, a LUKS device, a too-small device, an unknown cipher,
// no instance-store disk — each a clear error with nothing changed.
func TestSwapTmpVM(t *testing.T) {
	disks := []vmtest.Disk{
		{Path: "/dev/null", NVMeSerial: vmSwapSerial},
		{Path: "/dev/null", NVMeSerial: vmTmpSerial},
		{Path: "/dev/null", NVMeSerial: "vol0fsfsfsfsfsfsfs01"}, // gets a filesystem
		{Path: "/dev/null", NVMeSerial: "vol0luksluksluks0001"}, // gets a LUKS header
		{Path: "/dev/null"}, // 1 MiB virtio disk: too small
	}
	if !vmtest.InVM() {
		for i, size := range []int64{vmScratchLen, vmScratchLen, 16 << 20, 16 << 20, 1 << 20} {
			disks[i].Path = vmtest.NewDiskImage(t, size)
		}
	}
	start := time.Now()
	if !vmtest.Run(t, vmtest.Options{
		Disks:   disks,
		Tools:   []string{"mkswap", "mkfs.ext4", "dd", "cryptsetup"},
		Timeout: 4 * time.Minute,
	}) {
		t.Logf("host: VM boot (swap, tmp, refusals) took %s", time.Since(start).Round(time.Millisecond))
		if t.Failed() {
			return
		}
		// The host reads the images the guest used: the same checks, independent of the
		// guest's kernel.
		for _, d := range disks[:2] {
			img, err := os.ReadFile(d.Path)
			require.NoError(t, err)
			assert.False(t, bytes.Contains(img, scratchMarker[:32]), "%s: the pattern is on the disk", d.NVMeSerial)
			assert.False(t, bytes.Contains(img, []byte("SWAPSPACE2")), "%s: a readable swap signature", d.NVMeSerial)
		}
		return
	}
	ctx := context.Background()
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("NAME=\"Amazon Linux\"\nID=\"amzn\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"2023\"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/fstab"), []byte("UUID=0c3bdc6e-1e7d-4e2b-a3d0-8d1b2c3d4e5f / xfs defaults,noatime 1 1\n"), 0o644))
	rootBefore := snapshotTree(t, root)

	t.Run("swap", func(t *testing.T) {
		dev := vmtest.GuestDisk(0)
		code, out := runProgram(t, "", "swap", "--device", dev, "--root", root, "-q")
		require.Equal(t, 0, code, out)
		assert.Contains(t, out, "Step 2/6: open "+dev+" cryptswap with an ephemeral key (aes-xts-plain64, 512-bit)")
		mapper := "/dev/mapper/cryptswap"
		on, err := sysLocal{}.SwapActive(mapper)
		require.NoError(t, err)
		require.True(t, on, "swap is active")
		st, err := dmcrypt.Status("cryptswap")
		require.NoError(t, err)
		assert.True(t, st.Ephemeral())
		assert.Equal(t, "PLAIN", st.Type)
		assert.Equal(t, "aes-xts-plain64", st.Cipher)
		ct, err := os.ReadFile(filepath.Join(root, "etc/crypttab"))
		require.NoError(t, err)
		assert.Contains(t, string(ct), "cryptswap /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_"+vmSwapSerial+" /dev/urandom plain,cipher=aes-xts-plain64,size=512,hash=sha256,swap,nofail\n")
		fst, err := os.ReadFile(filepath.Join(root, "etc/fstab"))
		require.NoError(t, err)
		assert.Contains(t, string(fst), "\n/dev/mapper/cryptswap swap swap defaults,nofail 0 0\n")

		// status, text and JSON: the mapping, in use as swap, key ephemeral.
		code, out = runProgram(t, "", "status", "--name", "cryptswap", "--root", root)
		require.Equal(t, 0, code, out)
		assert.Contains(t, out, "scratch:   cryptswap on "+dev+" (aes-xts-plain64, 512-bit), ephemeral key from crypto/rand (only in the kernel), swap; crypttab: new key at every boot")
		code, out = runProgram(t, "", "status", "--name", "cryptswap", "--root", root, "--json")
		require.Equal(t, 0, code, out)
		var rep statusReport
		require.NoError(t, json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep))
		require.Len(t, rep.Scratch, 1)
		assert.Equal(t, scratchReport{Name: "cryptswap", Device: dev, Cipher: "aes-xts-plain64", KeyBits: 512, EphemeralKey: true, KeySource: "crypto/rand", Use: "swap",
			BootLine: "cryptswap /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_" + vmSwapSerial + " /dev/urandom plain,cipher=aes-xts-plain64,size=512,hash=sha256,swap,nofail"}, rep.Scratch[0])

		// A second swap or a teardown of the wrong kind must not touch it.
		code, out = runProgram(t, "", "swap", "--device", dev, "--root", root, "-q", "--name", "other")
		assert.Equal(t, exitBusy, code, out)
		assert.Contains(t, out, "in use")

		// The pattern reaches swap in plaintext (seen through the mapping).
		if !squeezeToSwap(t, 16<<20) {
			t.Log("no memory cgroup swap-out: writing the pattern to the mapping directly")
			writeAt(t, mapper, markerPattern(4<<20), 8<<20)
		}
		require.True(t, bytes.Contains(readAll(t, mapper), scratchMarker[:32]), "positive control: the pattern is in swap, through the mapping")
		require.True(t, bytes.Contains(readAll(t, mapper), []byte("SWAPSPACE2")), "positive control: mkswap's signature, through the mapping")

		code, out = runProgram(t, "", "teardown", "--name", "cryptswap", "--root", root)
		require.Equal(t, 0, code, out)
		assert.Contains(t, out, "swapoff or umount "+mapper)
		on, _ = sysLocal{}.SwapActive(dev)
		assert.False(t, on)
		assert.False(t, mapped(t, "cryptswap"))
		assert.Equal(t, rootBefore, snapshotTree(t, root), "crypttab and fstab byte for byte as before")

		raw := readAll(t, dev)
		assert.False(t, bytes.Contains(raw, scratchMarker[:32]), "no test pattern on the raw disk")
		assert.False(t, bytes.Contains(raw, []byte("SWAPSPACE2")), "no readable swap signature on the raw disk")
		what, err := probePath(ctx, dev)
		require.NoError(t, err)
		assert.Empty(t, what, "blkid sees nothing on the raw disk")

		// A new boot: a fresh key reads the old ciphertext as noise.
		m, err := dmcrypt.OpenEphemeral(ctx, dev, "again", dmcrypt.PlainParams{Cipher: "aes-xts-plain64", KeySize: 64}, dmcrypt.OpenOptions{})
		require.NoError(t, err)
		again := readAll(t, m.Path)
		require.NoError(t, dmcrypt.Close(ctx, "again"))
		assert.False(t, bytes.Contains(again, scratchMarker[:32]), "the old pattern does not decrypt with a new key")
		assert.False(t, bytes.Contains(again, []byte("SWAPSPACE2")))

		// After a reboot the mapping is boot's, from the crypttab line: real cryptsetup,
		// key file /dev/urandom, as systemd-cryptsetup runs it for "swap". status counts it
		// as scratch (key from /dev/urandom), teardown takes it and the lines away.
		code, out = runProgram(t, "", "swap", "--device", dev, "--root", root, "-q")
		require.Equal(t, 0, code, out)
		require.NoError(t, sysLocal{}.Swapoff(mapper))
		require.NoError(t, dmcrypt.Close(ctx, "cryptswap")) // shutdown
		ct, err = os.ReadFile(filepath.Join(root, "etc/crypttab"))
		require.NoError(t, err)
		cs, err := exec.Command("cryptsetup", crypttabOpenArgs(t, string(ct), "cryptswap", dev)...).CombinedOutput()
		require.NoError(t, err, string(cs))
		mk, err := exec.Command("mkswap", mapper).CombinedOutput()
		require.NoError(t, err, string(mk))
		require.NoError(t, sysLocal{}.Swapon(mapper))
		code, out = runProgram(t, "", "status", "--root", root, "--json")
		require.Equal(t, 0, code, out)
		rep = statusReport{}
		require.NoError(t, json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep))
		require.Len(t, rep.Scratch, 1)
		assert.Equal(t, "/dev/urandom", rep.Scratch[0].KeySource)
		assert.True(t, rep.Scratch[0].EphemeralKey)
		assert.Equal(t, "swap", rep.Scratch[0].Use)
		code, out = runProgram(t, "", "teardown", "--name", "cryptswap", "--root", root)
		require.Equal(t, 0, code, out)
		on, _ = sysLocal{}.SwapActive(dev)
		assert.False(t, on)
		assert.False(t, mapped(t, "cryptswap"))
		assert.Equal(t, rootBefore, snapshotTree(t, root))
	})

	t.Run("tmp", func(t *testing.T) {
		dev := vmtest.GuestDisk(1)
		// --force: the guest's /tmp is the harness's, so the test mounts elsewhere.
		code, out := runProgram(t, "", "tmp", "--device", dev, "--mount-point", vmTmpMount, "--force", "--root", root, "-q")
		require.Equal(t, 0, code, out)
		fi, err := os.Stat(vmTmpMount)
		require.NoError(t, err)
		assert.Equal(t, os.ModeDir|os.ModeSticky|0o777, fi.Mode(), "mode 1777")
		assert.True(t, mountedAt(t, vmTmpMount))
		ct, err := os.ReadFile(filepath.Join(root, "etc/crypttab"))
		require.NoError(t, err)
		assert.Contains(t, string(ct), "crypttmp /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_"+vmTmpSerial+" /dev/urandom plain,cipher=aes-xts-plain64,size=512,hash=sha256,tmp=ext4,nofail\n")
		code, out = runProgram(t, "", "status", "--root", root, "--json")
		require.Equal(t, 0, code, out)
		var rep statusReport
		require.NoError(t, json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep))
		require.Len(t, rep.Scratch, 1)
		assert.Equal(t, "mounted", rep.Scratch[0].Use)
		assert.Equal(t, vmTmpMount, rep.Scratch[0].MountPoint)
		assert.True(t, rep.Scratch[0].EphemeralKey)

		require.NoError(t, os.WriteFile(filepath.Join(vmTmpMount, "sortfile"), markerPattern(2<<20), 0o600))
		unix.Sync()
		require.True(t, bytes.Contains(readAll(t, "/dev/mapper/crypttmp"), scratchMarker[:32]), "positive control: the file, through the mapping")

		code, out = runProgram(t, "", "teardown", "--name", "crypttmp", "--root", root)
		require.Equal(t, 0, code, out)
		assert.False(t, mountedAt(t, vmTmpMount))
		assert.False(t, mapped(t, "crypttmp"))
		assert.Equal(t, rootBefore, snapshotTree(t, root))
		raw := readAll(t, dev)
		assert.False(t, bytes.Contains(raw, scratchMarker[:32]), "no test pattern on the raw disk")
		what, err := probePath(ctx, dev)
		require.NoError(t, err)
		assert.Empty(t, what, "no readable filesystem on the raw disk")

		m, err := dmcrypt.OpenEphemeral(ctx, dev, "again", dmcrypt.PlainParams{Cipher: "aes-xts-plain64", KeySize: 64}, dmcrypt.OpenOptions{})
		require.NoError(t, err)
		again := readAll(t, m.Path)
		what, _ = probePath(ctx, m.Path)
		require.NoError(t, dmcrypt.Close(ctx, "again"))
		assert.False(t, bytes.Contains(again, scratchMarker[:32]), "the old file does not decrypt with a new key")
		assert.Empty(t, what, "no filesystem under a new key")
	})

	t.Run("refusals", func(t *testing.T) {
		fsDev, luksDev, small := vmtest.GuestDisk(2), vmtest.GuestDisk(3), vmtest.GuestDisk(4)
		out, err := exec.Command("mkfs.ext4", "-q", fsDev).CombinedOutput()
		require.NoError(t, err, string(out))
		f, err := os.OpenFile(luksDev, os.O_RDWR, 0)
		require.NoError(t, err)
		_, vk, err := luks.Format(ctx, f, []byte("a data volume"), luks.FormatOptions{ForceIterations: 1000})
		require.NoError(t, err)
		vk.Wipe()
		require.NoError(t, f.Close())
		sums := map[string][32]byte{}
		for _, d := range []string{fsDev, luksDev, small} {
			sums[d] = sha256.Sum256(readAll(t, d))
		}
		mnt := filepath.Join(t.TempDir(), "mnt")
		require.NoError(t, os.Mkdir(mnt, 0o755))

		for _, tc := range []struct {
			name  string
			args  []string
			code  int
			want  string
			mount bool
		}{
			{"filesystem", []string{"swap", "--device", fsDev}, exitBusy, "already holds a ext2/3/4 filesystem; refusing to use it for swap without --force", false},
			{"mounted", []string{"swap", "--device", fsDev, "--force"}, exitBusy, "is in use: mounted on " + mnt, true},
			{"luks", []string{"tmp", "--device", luksDev, "--force", "--mount-point", vmTmpMount}, exitBusy, "holds a LUKS header", false},
			{"too small", []string{"swap", "--device", small}, exitUsage, "needs at least 8 MiB", false},
			{"cipher", []string{"swap", "--device", vmtest.GuestDisk(0), "--cipher", "nosuch-xts-plain64"}, exitUsage, "--cipher nosuch-xts-plain64", false},
			{"no instance store", []string{"swap", "--instance-store"}, exitNoDevice, "no instance-store NVMe disk", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.mount {
					require.NoError(t, unix.Mount(fsDev, mnt, "ext4", unix.MS_RDONLY, "")) // read-only: the superblock stays as it is
					defer func() { require.NoError(t, unix.Unmount(mnt, 0)) }()
				}
				code, out := runProgram(t, "", append(tc.args, "--root", root, "-q")...)
				assert.Equal(t, tc.code, code, out)
				assert.Contains(t, out, tc.want)
				assert.NotContains(t, out, "Step 1/", "refused before the first step")
				ms, err := dmcrypt.List()
				require.NoError(t, err)
				assert.Empty(t, ms, "no mapping left")
				assert.Equal(t, rootBefore, snapshotTree(t, root), "boot configuration untouched")
				assert.False(t, mountedAt(t, vmTmpMount))
			})
		}
		for d, s := range sums {
			assert.Equal(t, s, sha256.Sum256(readAll(t, d)), "%s unchanged", d)
		}
	})
}

// squeezeToSwap runs dd with a buffer of n bytes of the pattern inside a memory cgroup
// capped well below n, so its pages go to swap, and reports whether that could be set up.
func squeezeToSwap(t *testing.T, n int) bool {
	t.Helper()
	cg := "/sys/fs/cgroup"
	if err := unix.Mount("none", cg, "cgroup2", 0, ""); err != nil && err != unix.EBUSY {
		t.Logf("cgroup2: %v", err)
		return false
	}
	if err := os.WriteFile(filepath.Join(cg, "cgroup.subtree_control"), []byte("+memory"), 0o644); err != nil {
		t.Logf("memory controller: %v", err)
		return false
	}
	grp := filepath.Join(cg, "squeeze")
	if err := os.Mkdir(grp, 0o755); err != nil && !os.IsExist(err) {
		t.Logf("cgroup: %v", err)
		return false
	}
	if err := os.WriteFile(filepath.Join(grp, "memory.max"), []byte("4M"), 0o644); err != nil {
		t.Logf("memory.max: %v", err)
		return false
	}
	src := filepath.Join(t.TempDir(), "pattern")
	require.NoError(t, os.WriteFile(src, markerPattern(n), 0o600))
	fd, err := unix.Open(grp, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	cmd := exec.Command("dd", "if="+src, "of=/dev/null", "bs="+strconv.Itoa(n), "count=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	out, err := cmd.CombinedOutput()
	t.Logf("dd in a 4M memory cgroup: %v %s", err, out)
	ev, _ := os.ReadFile(filepath.Join(grp, "memory.events"))
	t.Logf("memory.events: %s", strings.ReplaceAll(string(ev), "\n", "; "))
	return err == nil
}

// crypttabOpenArgs turns the crypttab line of name into the cryptsetup command line that
// sets it up at boot (plain mode, key file, cipher=, size=, hash=), so the test opens what
// the line says rather than what the test believes it says. dev stands in for the line's
// by-id name, which no udev creates in the guest.
func crypttabOpenArgs(t *testing.T, crypttab, name, dev string) []string {
	t.Helper()
	for _, l := range strings.Split(crypttab, "\n") {
		f := strings.Fields(l)
		if len(f) != 4 || f[0] != name {
			continue
		}
		require.True(t, strings.HasPrefix(f[1], "/dev/disk/by-id/"), "stable device name: %s", l)
		args := []string{"open", "--type", "plain", "--key-file", f[2], "-q"}
		plain := false
		for _, o := range strings.Split(f[3], ",") {
			k, v, _ := strings.Cut(o, "=")
			switch k {
			case "plain":
				plain = true
			case "cipher":
				args = append(args, "--cipher", v)
			case "size":
				args = append(args, "--key-size", v)
			case "hash":
				args = append(args, "--hash", v)
			case "swap", "tmp", "nofail":
			default:
				t.Fatalf("crypttab option %q not handled: %s", o, l)
			}
		}
		require.True(t, plain, "plain mode: %s", l)
		return append(args, dev, name)
	}
	t.Fatalf("no crypttab line for %s in:\n%s", name, crypttab)
	return nil
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	return b
}

func writeAt(t *testing.T, path string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
}
