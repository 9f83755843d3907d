package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/dmcrypt"
	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/internal/awstest"
	"github.com/cloudluks/cloudluks/internal/vmtest"
	"github.com/cloudluks/cloudluks/luks"
)

const (
	e2ePass       = "e2e: seed walkthrough passphrase"
	e2eMount      = "/encrypted_vol"
	envE2EVolume  = "E2E_VOLUME"
	e2eDiskSize   = 64 << 20
	e2eScratchDev = 48 << 20 // room for a LUKS2 header (16 MiB) and a small ext4
)

// runProgram runs the program's whole CLI in-process with stdin and returns the exit code
// and the combined output, which is logged.
func runProgram(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	start := time.Now()
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &out)
	t.Logf("$ encrypted-volume %s  → exit %d (%s)\n%s", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond), out.String())
	return code, out.String()
}

// TestEndToEnd replays the seed walkthrough on a real kernel: EC2 create + attach against
// moto on the host; in a first VM boot, setup on the NVMe disk whose serial is the volume
// ID, files written, the failure paths, teardown; in a second boot on the same disk image
// (a reboot), unlock with a hook, the files checked, teardown, and real cryptsetup opening
// the same disk; back on the host, teardown --delete against moto.
func TestEndToEnd(t *testing.T) {
	var (
		volumeID string
		disk     = "/dev/null"
		scratch  = "/dev/null"
		ec2c     *ec2.Client
		flow     = time.Now()
	)
	if !vmtest.InVM() {
		moto := awstest.StartMoto(t)
		ec2c = awstest.NewEC2Client(moto)
		ctx := context.Background()
		instance := awstest.RunInstance(t, ctx, ec2c, "us-east-1c")
		imds := awstest.StartMetadataMock(t, awstest.MetadataConfig{InstanceID: instance, AZ: "us-east-1c"})
		setEnv(t, awstest.Env(moto, imds))

		// Steps 1–2 through the program's own EC2 adapter (the ebs package).
		var progress bytes.Buffer
		cl, err := newEBSCloud(&progress)(ctx, &config{})
		require.NoError(t, err)
		inst, zone, err := cl.Placement(ctx)
		require.NoError(t, err)
		require.Equal(t, instance, inst)
		volumeID, err = cl.Create(ctx, zone, 1, "gp3", "")
		require.NoError(t, err)
		dev, err := cl.Attach(ctx, volumeID, "")
		require.NoError(t, err)
		t.Logf("host: created %s in %s and attached it to %s as %s\n%s", volumeID, zone, inst, dev, progress.String())
		require.LessOrEqual(t, len(ebs.NVMeSerial(volumeID)), 20)

		disk = vmtest.NewDiskImage(t, e2eDiskSize)
		scratch = vmtest.NewDiskImage(t, e2eScratchDev)
	} else {
		volumeID = os.Getenv(envE2EVolume)
	}
	opts := vmtest.Options{
		Disks: []vmtest.Disk{
			{Path: disk, NVMeSerial: ebs.NVMeSerial(volumeID)}, // the EBS volume as Nitro shows it
			{Path: scratch}, // a virtio disk for the failed-mkfs path
		},
		Tools: []string{"mkfs.ext4", "cryptsetup"},
		// The boot configurations bootRoot builds roots from.
		GuestFiles: sampleFiles(t),
		Env:        map[string]string{envE2EVolume: volumeID},
		Timeout:    4 * time.Minute,
	}

	t.Run("setup", func(t *testing.T) {
		start := time.Now()
		if !vmtest.Run(t, opts) {
			t.Logf("host: VM boot 1 (setup, failure paths, teardown) took %s", time.Since(start).Round(time.Millisecond))
			return
		}
		guestSetup(t, volumeID)
	})
	t.Run("reboot", func(t *testing.T) {
		start := time.Now()
		if !vmtest.Run(t, opts) {
			t.Logf("host: VM boot 2 (unlock after reboot, hooks, cryptsetup interop) took %s", time.Since(start).Round(time.Millisecond))
			return
		}
		guestReboot(t, volumeID)
	})
	if vmtest.InVM() || t.Failed() {
		return
	}
	// The passphrase was never written to the volume (only PBKDF2 output and key material).
	img, err := os.ReadFile(disk)
	require.NoError(t, err)
	assert.False(t, bytes.Contains(img, []byte(e2ePass)), "the passphrase is not on the disk")
	assert.True(t, bytes.HasPrefix(img, luksMagic))

	// Back on the host: the volume goes away through the program, against moto.
	code, out := runProgram(t, "", "teardown", "--volume-id", volumeID, "--mount-point", filepath.Join(t.TempDir(), "mnt"), "--delete")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "Step 3/4: detach "+volumeID)
	assert.Contains(t, out, "Step 4/4: delete "+volumeID)
	_, err = ec2c.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{VolumeIds: []string{volumeID}})
	require.Error(t, err, "the volume is gone from EC2")
	t.Logf("whole flow (host EC2 + 2 VM boots + host delete): %s", time.Since(flow).Round(time.Millisecond))
}

// mapped reports whether a device-mapper device of that name exists.
func mapped(t *testing.T, name string) bool {
	t.Helper()
	_, err := dmcrypt.Status(name)
	if errors.Is(err, dmcrypt.ErrNotFound) {
		return false
	}
	require.NoError(t, err)
	return true
}

func mountedAt(t *testing.T, mp string) bool {
	t.Helper()
	mounts, err := sysLocal{}.Mounts()
	require.NoError(t, err)
	for _, m := range mounts {
		if m.MountPoint == mp {
			return true
		}
	}
	return false
}

// requireClean asserts the state every failure must leave: no mapping, nothing mounted.
func requireClean(t *testing.T) {
	t.Helper()
	assert.False(t, mapped(t, "my_enc_fs"), "no orphaned mapping")
	assert.False(t, mountedAt(t, e2eMount), "nothing mounted")
}

// testFiles are written after setup and checked after the reboot.
func testFiles(t *testing.T) map[string][]byte {
	b := make([]byte, 3<<20)
	_, err := io.ReadFull(deterministic{}, b)
	require.NoError(t, err)
	return map[string][]byte{
		"hello.txt":          []byte("Encrypting your data on Amazon EC2\n"),
		"mysql/ibdata1":      b,
		"mysql/my sql.cnf":   []byte("[mysqld]\ndatadir=/encrypted_vol/mysql\n"),
		"empty-file-as-well": {},
	}
}

// deterministic is a byte stream that differs from sector to sector and is the same in
// every boot.
type deterministic struct{}

func (deterministic) Read(p []byte) (int, error) {
	var ctr [8]byte
	for i := 0; i < len(p); i += 32 {
		ctr[0], ctr[1], ctr[2] = byte(i>>5), byte(i>>13), byte(i>>21)
		s := sha256.Sum256(ctr[:])
		copy(p[i:], s[:])
	}
	return len(p), nil
}

func checkFiles(t *testing.T, dir string) {
	t.Helper()
	for name, want := range testFiles(t) {
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, name)
		assert.Equal(t, sha256.Sum256(want), sha256.Sum256(got), name)
	}
}

func guestSetup(t *testing.T, volumeID string) {
	flow := time.Now()
	dev := vmtest.GuestDisk(0)
	root := bootRoot(t, "al1-2011.09")
	// setup's preflight question, answered by a real kernel (the host has no device-mapper).
	require.NoError(t, sysLocal{}.DeviceMapper())

	// The seed exactly: LUKS1, aes-cbc-essiv:sha256, 256-bit key, sha1 (iterations forced low).
	code, out := runProgram(t, e2ePass+"\n", "setup", "--type", "luks1", "--no-aws", "--volume-id", volumeID,
		"--root", root, "--cipher", "aes-cbc-essiv:sha256", "--key-size", "256", "--hash", "sha1",
		"--pbkdf-force-iterations", "1000")
	require.Equal(t, 0, code, out)
	for _, want := range []string{
		"Step 1/9: create EBS volume...\n    skipped: using existing volume " + volumeID,
		"Step 2/9: resolve the local device of " + volumeID + " (--no-aws: by NVMe serial)...\n    local device: " + dev,
		"Step 3/9: luksFormat " + dev + " (aes-cbc-essiv:sha256, 256-bit, sha1)...",
		"LUKS header information for " + dev + "\n\nVersion:       \t1\nCipher name:   \taes\nCipher mode:   \tcbc-essiv:sha256\nHash spec:     \tsha1\nPayload offset:\t4096\nMK bits:       \t256\n",
		"Step 6/9: mkfs.ext4 -m 0 /dev/mapper/my_enc_fs...",
		"Writing superblocks and filesystem accounting information", // mke2fs's own output, as in the seed
		"Step 8/9: disable boot-time unlock (root " + root + ")...",
		"/dev/mapper/my_enc_fs is active and is in use.\n  type:    LUKS1\n  cipher:  aes-cbc-essiv:sha256\n  keysize: 256 bits\n",
		"  device:  " + dev + "\n",
		"Done: /dev/mapper/my_enc_fs is mounted at /encrypted_vol.",
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, e2ePass)
	require.True(t, mountedAt(t, e2eMount))
	assert.Contains(t, readRootFile(t, root, "boot/grub/menu.lst"), "KEYTABLE=us rd_NO_LUKS\n", "step 8 of the seed")

	for name, data := range testFiles(t) {
		p := filepath.Join(e2eMount, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, data, 0o600))
	}
	checkFiles(t, e2eMount)

	code, out = runProgram(t, "", "status", "--no-aws", "--volume-id", volumeID, "--root", root)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "device:    "+dev+" (LUKS header)")
	assert.Contains(t, out, "mapping:   my_enc_fs open on "+dev)
	assert.Contains(t, out, "mounted:   /dev/mapper/my_enc_fs on /encrypted_vol")
	assert.Contains(t, out, "boot:      boot-time unlock disabled (al1-rhel6: rd_NO_LUKS in effect)")

	// What teardown --detach checks before it lets EC2 detach the volume: the real kernel's
	// sysfs names the dm-crypt mapping holding the NVMe disk.
	udev, users, err := sysLocal{}.DeviceUsers(context.Background(), volumeID)
	require.NoError(t, err)
	assert.Equal(t, dev, udev)
	assert.Regexp(t, `^held by dm-[0-9]+ \(mapping my_enc_fs\)$`, users)

	// Failure: mount point busy at teardown (a process holds a file open). Clear message,
	// exit 5, nothing changed; teardown works once the file is closed.
	f, err := os.Open(filepath.Join(e2eMount, "hello.txt"))
	require.NoError(t, err)
	code, out = runProgram(t, "", "teardown")
	assert.Equal(t, exitBusy, code)
	assert.Contains(t, out, "step 1/4 failed (umount /encrypted_vol): umount /encrypted_vol: mount point busy")
	assert.True(t, mountedAt(t, e2eMount), "still mounted: a retry can finish the job")
	assert.True(t, mapped(t, "my_enc_fs"))
	require.NoError(t, f.Close())

	code, out = runProgram(t, "", "teardown")
	require.Equal(t, 0, code, out)
	requireClean(t)
	_, users, err = sysLocal{}.DeviceUsers(context.Background(), volumeID)
	require.NoError(t, err)
	assert.Empty(t, users, "nothing uses the disk after teardown")
	t.Logf("guest: setup + write + status + teardown flow: %s", time.Since(flow).Round(time.Millisecond))

	hdr := readHeader(t, dev)

	// Failure: volume already formatted — refused without --force, header untouched.
	code, out = runProgram(t, e2ePass+"\n", "setup", "--type", "luks1", "--no-aws", "--volume-id", volumeID, "--root", root, "--pbkdf-force-iterations", "1000")
	assert.Equal(t, exitBusy, code)
	assert.Contains(t, out, "step 3/9 failed (luksFormat "+dev+" (aes-xts-plain64, 512-bit, sha256)): "+dev+" already holds a LUKS header; refusing to format it without --force")
	assert.Equal(t, hdr.UUID, readHeader(t, dev).UUID)
	requireClean(t)

	// Failure: wrong passphrase at unlock.
	code, out = runProgram(t, "not the passphrase\n", "unlock", "--no-aws", "--volume-id", volumeID)
	assert.Equal(t, exitNoPerm, code)
	assert.Contains(t, out, "step 2/4 failed (luksOpen "+dev+" my_enc_fs): ")
	assert.Contains(t, out, "No key available with this passphrase.")
	requireClean(t)

	// Failure: device missing (a volume that is not attached to this machine).
	code, out = runProgram(t, e2ePass+"\n", "unlock", "--no-aws", "--volume-id", "vol-0badc0ffee0000000")
	assert.Equal(t, exitNoDevice, code)
	assert.Contains(t, out, "step 1/4 failed (resolve the local device of vol-0badc0ffee0000000)")
	requireClean(t)
	code, out = runProgram(t, e2ePass+"\n", "unlock", "--device", "/dev/nvme9n1")
	assert.Equal(t, exitNoDevice, code)
	assert.Contains(t, out, "/dev/nvme9n1: device not found")
	requireClean(t)

	// Failure: mount point busy at unlock (something else is mounted there): the mapping
	// opened by step 2 is closed again.
	require.NoError(t, unix.Mount("tmpfs", e2eMount, "tmpfs", 0, "size=1m"))
	code, out = runProgram(t, e2ePass+"\n", "unlock", "--no-aws", "--volume-id", volumeID)
	assert.Equal(t, exitBusy, code)
	assert.Contains(t, out, "step 3/4 failed (mount /dev/mapper/my_enc_fs /encrypted_vol): mount point /encrypted_vol is busy: tmpfs is already mounted there")
	assert.Contains(t, out, "Cleanup: closed my_enc_fs")
	assert.False(t, mapped(t, "my_enc_fs"))
	require.NoError(t, unix.Unmount(e2eMount, 0))
	requireClean(t)

	// Failure inside setup on a real kernel: mkfs fails at step 6; the mapping made by step 5
	// is closed again and the output says what is left.
	scratch := vmtest.GuestDisk(1)
	code, out = runProgram(t, e2ePass+"\n", "setup", "--device", scratch, "--root", bootRoot(t, "al2023"),
		"--type", "luks1", "--pbkdf-force-iterations", "1000", "--mkfs", "mkfs.ext4 -E no-such-option")
	assert.Equal(t, exitOtherFail, code)
	assert.Contains(t, out, "step 6/9 failed (mkfs.ext4 -E no-such-option /dev/mapper/my_enc_fs)")
	assert.Contains(t, out, "Cleanup: closed my_enc_fs")
	assert.Contains(t, out, "Note: "+scratch+" now holds a LUKS header")
	requireClean(t)
	guestLUKS2(t, scratch)
}

// guestLUKS2: setup's default LUKS2 on a real kernel — the kernel maps it (cryptsetup
// status says LUKS2), real cryptsetup opens it and reads the filesystem made through our
// mapping, and unlock and teardown work on it.
func guestLUKS2(t *testing.T, scratch string) {
	f, err := os.OpenFile(scratch, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(make([]byte, 20<<20), 0) // the LUKS1 header left by the failed setup
	require.NoError(t, err)
	require.NoError(t, f.Close())
	const name, mp = "l2_fs", "/encrypted_l2"
	code, out := runProgram(t, e2ePass+"\n", "setup", "--device", scratch, "--root", bootRoot(t, "al2023"),
		"--name", name, "--mount-point", mp, "--pbkdf-force-iterations", "4", "--pbkdf-memory", "32", "--pbkdf-parallel", "1")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "Step 3/9: luksFormat "+scratch+" (LUKS2, aes-xts-plain64, 512-bit, argon2id)...")
	assert.Contains(t, out, "  type:    LUKS2\n")
	require.NoError(t, os.WriteFile(filepath.Join(mp, "hello.txt"), []byte("LUKS2\n"), 0o644))
	code, out = runProgram(t, "", "teardown", "--name", name, "--mount-point", mp)
	require.Equal(t, 0, code, out)

	cs := "/usr/sbin/cryptsetup"
	require.NoError(t, os.MkdirAll("/run/cryptsetup", 0o700))
	cryptsetup(t, cs, e2ePass, "open", "--type", "luks2", "--key-file", "-", scratch, "cs_l2")
	assert.Contains(t, cryptsetup(t, cs, "", "status", "cs_l2"), "type:    LUKS2")
	csmp := filepath.Join(t.TempDir(), "cs")
	require.NoError(t, os.MkdirAll(csmp, 0o755))
	require.NoError(t, unix.Mount("/dev/mapper/cs_l2", csmp, "ext4", unix.MS_RDONLY, ""))
	b, err := os.ReadFile(filepath.Join(csmp, "hello.txt"))
	assert.NoError(t, err)
	assert.Equal(t, "LUKS2\n", string(b))
	require.NoError(t, unix.Unmount(csmp, 0))
	cryptsetup(t, cs, "", "close", "cs_l2")

	code, out = runProgram(t, e2ePass+"\n", "unlock", "--device", scratch, "--name", name, "--mount-point", mp)
	require.Equal(t, 0, code, out)
	b, err = os.ReadFile(filepath.Join(mp, "hello.txt"))
	assert.NoError(t, err)
	assert.Equal(t, "LUKS2\n", string(b))
	code, out = runProgram(t, "", "teardown", "--name", name, "--mount-point", mp)
	require.Equal(t, 0, code, out)
	assert.False(t, mapped(t, name))
}

func readHeader(t *testing.T, dev string) *luks.Header {
	t.Helper()
	f, err := os.Open(dev)
	require.NoError(t, err)
	defer f.Close()
	h, err := luks.ReadHeader(f)
	require.NoError(t, err)
	return h
}

func guestReboot(t *testing.T, volumeID string) {
	flow := time.Now()
	dev := vmtest.GuestDisk(0)
	requireClean(t)
	self, err := os.Executable()
	require.NoError(t, err)
	probeOut := filepath.Join(t.TempDir(), "hook.json")

	// What a monitor sees after the reboot, before anyone unlocks: exit 6 and one JSON object
	// with the real kernel's boot id.
	code, out := runProgram(t, "", "status", "--json", "--no-aws", "--volume-id", volumeID)
	require.Equal(t, 6, code, out)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	assert.Equal(t, dev, st["device"])
	assert.Equal(t, false, st["mapped"])
	assert.Equal(t, false, st["mounted"])
	assert.Equal(t, true, st["needsUnlock"])
	assert.Regexp(t, `^[0-9a-f-]{36}$`, st["bootId"])

	// The operator's command after a reboot; the passphrase is piped in and followed by more
	// input that a hook inheriting stdin would see.
	code, out = runProgram(t, e2ePass+"\n"+e2ePass+"\n", "unlock", "--no-aws", "--volume-id", volumeID,
		"--hook", self+" "+hookProbeArg+" "+probeOut)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "Step 4/4: post-mount hooks (1)...")
	checkFiles(t, e2eMount)
	t.Logf("guest: unlock after reboot: %s", time.Since(flow).Round(time.Millisecond))

	r := readProbe(t, probeOut)
	assert.NotContains(t, strings.Join(r.Args, " ")+strings.Join(r.Env, " ")+r.Stdin, e2ePass)
	assert.Empty(t, r.Stdin)
	assert.Contains(t, r.Env, "ENCRYPTED_VOLUME_MOUNT=/encrypted_vol")

	code, out = runProgram(t, "", "status", "--no-aws", "--volume-id", volumeID)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "mounted:   /dev/mapper/my_enc_fs on /encrypted_vol")
	assert.Contains(t, out, "  keysize: 256 bits\n")

	code, out = runProgram(t, "", "teardown")
	require.Equal(t, 0, code, out)
	requireClean(t)

	// Interoperability: real cryptsetup opens the disk the program made and shows the same
	// files. The passphrase goes to cryptsetup on stdin, never on its command line.
	cs := "/usr/sbin/cryptsetup"
	require.NoError(t, os.MkdirAll("/run/cryptsetup", 0o700))
	dump := cryptsetup(t, cs, "", "luksDump", dev)
	var ours bytes.Buffer
	require.NoError(t, readHeader(t, dev).Dump(&ours, dev))
	assert.Equal(t, dump, ours.String(), "luksDump of the program's header, by cryptsetup and by luks")

	cryptsetup(t, cs, e2ePass, "open", "--type", "luks1", "--key-file", "-", dev, "cs_fs")
	status := cryptsetup(t, cs, "", "status", "cs_fs")
	assert.Contains(t, status, "cipher:  aes-cbc-essiv:sha256")
	mp := filepath.Join(t.TempDir(), "cs")
	require.NoError(t, os.MkdirAll(mp, 0o755))
	require.NoError(t, unix.Mount("/dev/mapper/cs_fs", mp, "ext4", unix.MS_RDONLY, ""))
	checkFiles(t, mp)
	require.NoError(t, unix.Unmount(mp, 0))
	cryptsetup(t, cs, "", "close", "cs_fs")
	assert.False(t, mapped(t, "cs_fs"))
	t.Logf("guest: reboot flow incl. cryptsetup interop: %s", time.Since(flow).Round(time.Millisecond))
}

func cryptsetup(t *testing.T, cs, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(cs, append([]string{"--disable-locks"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("$ cryptsetup %s\n%s", strings.Join(args, " "), out.String())
	require.NoError(t, err, out.String())
	return out.String()
}
