package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// sigImage makes a 32 MiB image (xfs: 320 MiB, its minimum, sparse) and lets a real tool
// write a signature onto it; nil for a zeroed image.
type sigImage struct {
	name  string
	size  int64
	tool  string // program that must be on PATH
	hint  string
	write func(t *testing.T, img string)
}

func sigImages(t *testing.T) []sigImage {
	run := func(stdin string, argv ...string) func(t *testing.T, img string) {
		return func(t *testing.T, img string) {
			t.Helper()
			args := append(append([]string{}, argv[1:]...), img)
			cmd := exec.Command(argv[0], args...)
			cmd.Stdin = strings.NewReader(stdin)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s: %s", argv[0], out)
		}
	}
	return []sigImage{
		{"zero", 32 << 20, "", "", nil},
		{"ext2", 32 << 20, "mkfs.ext2", "apt-get install e2fsprogs", run("", "mkfs.ext2", "-q", "-F")},
		{"ext3", 32 << 20, "mkfs.ext3", "apt-get install e2fsprogs", run("", "mkfs.ext3", "-q", "-F")},
		{"ext4", 32 << 20, "mkfs.ext4", "apt-get install e2fsprogs", run("", "mkfs.ext4", "-q", "-F")},
		{"xfs", 320 << 20, "mkfs.xfs", "apt-get install xfsprogs", run("", "mkfs.xfs", "-q", "-f")},
		{"swap", 32 << 20, "mkswap", "apt-get install util-linux", run("", "mkswap", "-q")},
		{"dos", 32 << 20, "sfdisk", "apt-get install fdisk", run("label: dos\n,10M,L\n", "sfdisk", "-q")},
		{"gpt", 32 << 20, "sgdisk", "apt-get install gdisk", run("", "sgdisk", "-n", "1:2048:+10M")},
		{"luks1", 32 << 20, "cryptsetup", "apt-get install cryptsetup-bin", run("pw", "cryptsetup", "luksFormat", "--type", "luks1", "-q", iters, "--key-file=-")},
		{"luks2", 32 << 20, "cryptsetup", "apt-get install cryptsetup-bin", run("pw", "cryptsetup", "luksFormat", "--type", "luks2", "-q", "--pbkdf", "pbkdf2", iters, "--key-file=-")},
		// Secondary header at 2 MiB, where a LUKS1 header file's key slots do not reach.
		{"luks2-2m", 32 << 20, "cryptsetup", "apt-get install cryptsetup-bin", run("pw", "cryptsetup", "luksFormat", "--type", "luks2", "-q", "--pbkdf", "pbkdf2", iters, "--luks2-metadata-size", "2m", "--luks2-keyslots-size", "4m", "--key-file=-")},
	}
}

func newSigImage(t *testing.T, dir string, im sigImage) string {
	t.Helper()
	img := filepath.Join(dir, im.name+".img")
	require.NoError(t, os.WriteFile(img, nil, 0o600))
	require.NoError(t, os.Truncate(img, im.size))
	if im.write != nil {
		testenv.LookPath(t, im.tool, im.hint)
		im.write(t, img)
	}
	return img
}

// luksFormat over an image holding each kind of signature prints what cryptsetup 2.6.1
// prints for the same image: the WARNING line (none with -q, none on zeros), with -v the
// "will be wiped" lines, and afterwards blkid sees only the new LUKS header (a GPT's backup
// header in the last sector is erased too).
func TestLuksFormatSignatureWarningSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	wipefs := testenv.LookPath(t, "wipefs", "apt-get install util-linux")
	for _, im := range sigImages(t) {
		t.Run(im.name, func(t *testing.T) {
			dir := t.TempDir()
			src := newSigImage(t, dir, im)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "key"), []byte("pw"), 0o600))
			for _, mode := range [][]string{{"-v"}, {"-q"}, {"-q", "-v"}} {
				var outs [2]result
				for i, prog := range []string{cs, binPath} {
					img := filepath.Join(dir, "t.img")
					copyFile(t, src, img)
					args := append([]string{"luksFormat", "--type", "luks1", iters, "t.img", "key"}, mode...)
					outs[i] = runIn(t, dir, prog, "", args...)
					require.Equal(t, 0, outs[i].code, "%s: %s", prog, outs[i].stderr)
					wf, err := exec.Command(wipefs, "-i", "-O", "TYPE", img).Output()
					require.NoError(t, err)
					assert.Equal(t, "crypto_LUKS", strings.TrimSpace(string(wf)), "signatures on the image after %s", prog)
				}
				assert.Equal(t, outs[0].stdout, outs[1].stdout, "stdout with %v", mode)
				assert.Equal(t, outs[0].stderr, outs[1].stderr, "stderr with %v", mode)
				warned := strings.Contains(outs[1].stdout, "WARNING: Device t.img already contains a '")
				assert.Equal(t, im.name != "zero" && mode[0] != "-q", warned, "warning shown: %q", outs[1].stdout)
			}
		})
	}
}

// With --header the header file is probed, warned about and wiped; the data device is left
// as it is (cryptsetup 2.6.1 does the same: a GPT on the data device survives).
func TestLuksFormatSignatureDetachedSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	wipefs := testenv.LookPath(t, "wipefs", "apt-get install util-linux")
	dir := t.TempDir()
	var ext4, gpt sigImage
	for _, im := range sigImages(t) {
		switch im.name {
		case "ext4":
			ext4 = im
		case "gpt":
			gpt = im
		}
	}
	var luks2 sigImage
	for _, im := range sigImages(t) {
		if im.name == "luks2-2m" {
			luks2 = im
		}
	}
	dsrc := newSigImage(t, dir, gpt)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key"), []byte("pw"), 0o600))
	for _, him := range []sigImage{ext4, luks2} {
		hsrc := newSigImage(t, dir, him)
		var outs [2]result
		var sigs [2]string
		for i, prog := range []string{cs, binPath} {
			copyFile(t, hsrc, filepath.Join(dir, "h.img"))
			copyFile(t, dsrc, filepath.Join(dir, "d.img"))
			outs[i] = runIn(t, dir, prog, "", "luksFormat", "--type", "luks1", iters, "--header", "h.img", "d.img", "key", "-v")
			require.Equal(t, 0, outs[i].code, "%s: %s", prog, outs[i].stderr)
			wf, err := exec.Command(wipefs, "-i", "-O", "OFFSET,TYPE", filepath.Join(dir, "h.img"), filepath.Join(dir, "d.img")).Output()
			require.NoError(t, err)
			sigs[i] = string(wf)
		}
		assert.Equal(t, outs[0], outs[1], him.name)
		assert.Equal(t, sigs[0], sigs[1], "%s: signatures left on the header file and the data device", him.name)
	}
}

// A detached header on a block device: the device's Stat size is 0, and the wipe after the
// format must not take that for "nothing written" and erase the new header's own magic
// (it did: luksFormat said "Command successful." and left a device nothing could open).
func TestLuksFormatDetachedHeaderOnBlockDevice(t *testing.T) {
	cs := cryptsetup(t)
	losetup := testenv.LookPath(t, "losetup", "apt-get install mount")
	testenv.NeedRoot(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "hb.img")
	require.NoError(t, os.WriteFile(img, nil, 0o600))
	require.NoError(t, os.Truncate(img, 16<<20))
	cmd := exec.Command(cs, "luksFormat", "--type", "luks1", "-q", iters, "--key-file=-", img)
	cmd.Stdin = strings.NewReader("old")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	dev, err := exec.Command(losetup, "-f", "--show", img).Output()
	if err != nil {
		testenv.Missing(t, "a loop device ("+err.Error()+")", "modprobe loop")
	}
	loop := strings.TrimSpace(string(dev))
	t.Cleanup(func() { _ = exec.Command(losetup, "-d", loop).Run() })
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key"), []byte("pw"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "d.img"), nil, 0o600))
	require.NoError(t, os.Truncate(filepath.Join(dir, "d.img"), 16<<20))
	r := runIn(t, dir, binPath, "", "luksFormat", "--type", "luks1", iters, "--header", loop, "d.img", "key", "-q", "-v")
	require.Equal(t, 0, r.code, r.stderr)
	chk := exec.Command(cs, "open", "--test-passphrase", "--header", loop, "--key-file", filepath.Join(dir, "key"), filepath.Join(dir, "d.img"))
	out, err = chk.CombinedOutput()
	assert.NoError(t, err, "cryptsetup opens the new header: %s", out)
}
