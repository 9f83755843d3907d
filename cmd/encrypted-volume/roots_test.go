package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/grubconf"
	"github.com/cloudluks/cloudluks/internal/vmtest"
)

// sample reads one of grubconf's real boot configuration samples (provenance in
// grubconf/testdata/README.md).
func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir(), name))
	require.NoError(t, err)
	return b
}

// samplesDir is grubconf/testdata, found from this source file's path fixed at build time;
// in the VM test's guest it is guestSamples, where sampleFiles has them copied (the host
// path may be under /tmp, which the guest mounts afresh).
func samplesDir() string {
	if vmtest.InVM() {
		return guestSamples
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "grubconf", "testdata")
}

const guestSamples = "/samples"

// sampleFiles maps the samples for vmtest.Options.GuestFiles.
func sampleFiles(t testing.TB) map[string]string {
	t.Helper()
	dir := samplesDir()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	files := map[string]string{}
	for _, e := range ents {
		if e.Type().IsRegular() {
			files[filepath.Join(guestSamples, e.Name())] = filepath.Clean(filepath.Join(dir, e.Name()))
		}
	}
	return files
}

// bootRoot builds a root directory of the given kind from the samples, with the seed's
// volume in crypttab and fstab (what an operator following older guides would have).
func bootRoot(t testing.TB, kind string) string {
	t.Helper()
	root := t.TempDir()
	write := func(rel string, b []byte) {
		p := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, b, 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	crypttab := []byte("# <target name> <source device> <key file> <options>\nmy_enc_fs /dev/xvdf none luks\n")
	fstab := []byte("LABEL=/     /               ext4    defaults,noatime  1   1\n/dev/mapper/my_enc_fs /encrypted_vol ext4 defaults 0 2\n")
	switch kind {
	case "al1-2011.09": // the seed's system: GRUB 0.97 menu.lst behind /etc/grub.conf
		write("boot/grub/menu.lst", sample(t, "01-amazon-linux-2011.09-pv-menu.lst"))
		require.NoError(t, os.Symlink("../boot/grub/menu.lst", filepath.Join(root, "etc/grub.conf")))
		write("etc/system-release", []byte("Amazon Linux AMI release 2011.09\n"))
	case "al2":
		write("etc/default/grub", sample(t, "07-amazon-linux-2-etc-default-grub"))
		write("etc/os-release", []byte("NAME=\"Amazon Linux\"\nVERSION=\"2\"\nID=\"amzn\"\nID_LIKE=\"centos rhel fedora\"\nVERSION_ID=\"2\"\nPRETTY_NAME=\"Amazon Linux 2\"\n"))
	case "al2023":
		write("boot/loader/entries/ec2c1b5d7c9a4f0b8d2f3e6a1b2c3d4e-6.1.170-213.321.amzn2023.x86_64.conf", sample(t, "08-al2023-bls-entry.conf"))
		write("etc/os-release", []byte("NAME=\"Amazon Linux\"\nVERSION=\"2023\"\nID=\"amzn\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"2023\"\nPRETTY_NAME=\"Amazon Linux 2023\"\n"))
	case "fedora15-encrypted-root":
		write("boot/grub/grub.conf", sample(t, "05-fedora15-encrypted-root-grub.conf"))
		require.NoError(t, os.Symlink("../boot/grub/grub.conf", filepath.Join(root, "etc/grub.conf")))
		write("etc/system-release", []byte("Fedora release 15 (Lovelock)\n"))
	default:
		t.Fatalf("unknown root kind %q", kind)
	}
	write("etc/crypttab", crypttab)
	write("etc/fstab", fstab)
	return root
}

func readRootFile(t testing.TB, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	require.NoError(t, err)
	return string(b)
}

// The boot adapter against real grubconf on real samples: before, status says "not
// disabled"; Disable edits what the family needs and prints a diff; after, status says
// "disabled" and a second Disable changes nothing. An encrypted root is refused untouched.
func TestBootConfigDisable(t *testing.T) {
	v := bootVolume{Name: "my_enc_fs", LUKSUUID: "93f0e44a-9a3b-47c5-b6b1-7428a3edcc10", MountPoint: "/encrypted_vol"}
	tests := []struct {
		kind  string
		check func(t *testing.T, root string)
	}{
		{"al1-2011.09", func(t *testing.T, root string) {
			menu := readRootFile(t, root, "boot/grub/menu.lst")
			assert.Contains(t, menu, "KEYTABLE=us rd_NO_LUKS\n", "the seed's step 8: rd_NO_LUKS on the kernel line")
			fi, err := os.Lstat(filepath.Join(root, "etc/grub.conf"))
			require.NoError(t, err)
			assert.True(t, fi.Mode()&os.ModeSymlink != 0, "/etc/grub.conf stays a symlink")
			assert.NotRegexp(t, `(?m)^my_enc_fs`, readRootFile(t, root, "etc/crypttab"), "SysV ignores noauto: the line is commented out")
		}},
		{"al2", func(t *testing.T, root string) {
			assert.Contains(t, readRootFile(t, root, "etc/default/grub"), "rd.luks=0")
			assert.Contains(t, readRootFile(t, root, "etc/crypttab"), "noauto")
		}},
		{"al2023", func(t *testing.T, root string) {
			assert.Contains(t, readRootFile(t, root, "etc/crypttab"), "noauto,nofail")
			assert.Contains(t, readRootFile(t, root, "etc/fstab"), "noauto")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			root := bootRoot(t, tt.kind)
			disabled, detail, err := grubBoot{}.Status(root, v)
			require.NoError(t, err)
			assert.False(t, disabled, detail)

			var out bytes.Buffer
			require.NoError(t, grubBoot{}.Disable(context.Background(), root, v, &out))
			assert.Contains(t, out.String(), "--- a/", "a unified diff of the edit is printed")
			tt.check(t, root)

			disabled, detail, err = grubBoot{}.Status(root, v)
			require.NoError(t, err)
			assert.True(t, disabled, detail)
			out.Reset()
			require.NoError(t, grubBoot{}.Disable(context.Background(), root, v, &out))
			assert.Contains(t, out.String(), "already disabled")
		})
	}
	t.Run("nothing to edit", func(t *testing.T) {
		var out bytes.Buffer
		require.NoError(t, grubBoot{}.Disable(context.Background(), t.TempDir(), v, &out))
		assert.Contains(t, out.String(), "nothing can unlock the volume at boot")
	})
	t.Run("encrypted root is refused", func(t *testing.T) {
		root := bootRoot(t, "fedora15-encrypted-root")
		before := readRootFile(t, root, "boot/grub/grub.conf")
		err := grubBoot{}.Disable(context.Background(), root, v, &bytes.Buffer{})
		require.ErrorIs(t, err, grubconf.ErrEncryptedBoot)
		assert.Equal(t, before, readRootFile(t, root, "boot/grub/grub.conf"))
	})
}

func TestStatusReportsBootConfig(t *testing.T) {
	root := bootRoot(t, "al1-2011.09")
	h := newHarness(t, "")
	h.app.boot = grubBoot{}
	require.Equal(t, 0, h.run("status", "--no-aws", "--root", root))
	assert.Contains(t, h.stdout.String(), "boot:      boot-time unlock NOT disabled (al1-rhel6: would edit ")
	require.NoError(t, grubBoot{}.Disable(context.Background(), root, bootVolume{Name: "my_enc_fs", MountPoint: "/encrypted_vol"}, &bytes.Buffer{}))
	h.stdout.Reset()
	require.Equal(t, 0, h.run("status", "--no-aws", "--root", root))
	assert.Contains(t, h.stdout.String(), "boot:      boot-time unlock disabled (al1-rhel6: rd_NO_LUKS in effect)")
	assert.True(t, strings.Contains(h.stdout.String(), "mapping:   my_enc_fs is not open"))

	h.stdout.Reset()
	empty := t.TempDir()
	require.Equal(t, 0, h.run("status", "--no-aws", "--root", empty))
	assert.Contains(t, h.stdout.String(), "boot:      unknown (no boot loader, crypttab or fstab found under "+empty+")")
}

// TestStatusGrubCfgOnly: a root whose only boot configuration is a generated grub.cfg
// (e.g. /boot of an image mounted alone) has a boot configuration; status used to call it
// "no boot loader, crypttab or fstab found" because the check here missed grub.cfg.
func TestStatusGrubCfgOnly(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "boot/grub2/grub.cfg")
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	cfg := "menuentry 'Amazon Linux 2' {\n\tlinux16 /boot/vmlinuz-4.14 root=UUID=5b1a ro console=ttyS0\n\tinitrd16 /boot/initramfs-4.14.img\n}\n"
	require.NoError(t, os.WriteFile(p, []byte(cfg), 0o644))
	v := bootVolume{Name: "my_enc_fs", MountPoint: "/encrypted_vol"}
	disabled, detail, err := grubBoot{}.Status(root, v)
	require.NoError(t, err)
	assert.False(t, disabled)
	assert.Contains(t, detail, "would edit /boot/grub2/grub.cfg")
	var out bytes.Buffer
	require.NoError(t, grubBoot{}.Disable(context.Background(), root, v, &out))
	assert.Contains(t, readRootFile(t, root, "boot/grub2/grub.cfg"), "rd.luks=0")
	disabled, _, err = grubBoot{}.Status(root, v)
	require.NoError(t, err)
	assert.True(t, disabled)
}
