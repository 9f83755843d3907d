package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary act as the noautomount program, so the CLI tests run it
// as a real subprocess (exit codes, stdout and stderr as a user sees them).
func TestMain(m *testing.M) {
	if os.Getenv("NOAUTOMOUNT_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "NOAUTOMOUNT_AS_MAIN=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code, out.String(), errb.String()}
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, v := range files {
		hp := filepath.Join(root, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(hp), 0o755))
		if strings.HasPrefix(v, "->") {
			require.NoError(t, os.Symlink(v[2:], hp))
			continue
		}
		require.NoError(t, os.WriteFile(hp, []byte(v), 0o644))
	}
	return root
}

func fixture(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "grubconf", "testdata", name))
	require.NoError(t, err)
	return string(b)
}

func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if fi.Mode()&os.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			out[rel] = "-> " + l
		} else if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			out[rel] = string(b)
		}
		return nil
	}))
	return out
}

func al1Root(t *testing.T) string {
	return writeTree(t, map[string]string{
		"boot/grub/menu.lst": fixture(t, "01-amazon-linux-2011.09-pv-menu.lst"),
		"etc/grub.conf":      "->../boot/grub/menu.lst",
		"etc/system-release": "Amazon Linux AMI release 2011.09\n",
		"etc/crypttab":       "my_enc_fs /dev/xvdf none luks\n",
		"etc/fstab":          "LABEL=/ / ext4 defaults 1 1\n/dev/mapper/my_enc_fs /encrypted_vol ext4 defaults 0 0\n",
	})
}

func TestCLIFlow(t *testing.T) {
	root := al1Root(t)
	orig := snapshot(t, root)

	// Dry run: the diff, nothing written.
	r := runCLI(t, "--root", root, "--volume", "my_enc_fs", "--dry-run")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "--- a/boot/grub/menu.lst\n+++ b/boot/grub/menu.lst\n")
	assert.Contains(t, r.stdout, "+kernel /boot/vmlinuz-2.6.35.14-97.44.amzn1.x86_64 root=LABEL=/ console=hvc0 LANG=en_US.UTF-8 KEYTABLE=us rd_NO_LUKS\n")
	assert.Contains(t, r.stdout, "+#my_enc_fs /dev/xvdf none luks\n")
	assert.Contains(t, r.stderr, "/etc/grub.conf is a symlink; editing the real file /boot/grub/menu.lst")
	assert.Contains(t, r.stderr, "dry run")
	assert.Equal(t, orig, snapshot(t, root), "dry run touches nothing")

	// Apply with backups: the same diff, files changed.
	a := runCLI(t, "--root", root, "--volume", "my_enc_fs", "--mount-point", "/encrypted_vol", "--backup")
	require.Equal(t, 0, a.code, a.stderr)
	assert.Equal(t, r.stdout, a.stdout)
	menu, err := os.ReadFile(filepath.Join(root, "boot/grub/menu.lst"))
	require.NoError(t, err)
	assert.Contains(t, string(menu), "KEYTABLE=us rd_NO_LUKS\n")
	bak, err := os.ReadFile(filepath.Join(root, "boot/grub/menu.lst.cloudluks-bak"))
	require.NoError(t, err)
	assert.Equal(t, orig["boot/grub/menu.lst"], string(bak))
	l, err := os.Readlink(filepath.Join(root, "etc/grub.conf"))
	require.NoError(t, err)
	assert.Equal(t, "../boot/grub/menu.lst", l, "symlink kept")

	// Second run: nothing to do.
	s := runCLI(t, "--root", root, "--volume", "my_enc_fs", "--mount-point", "/encrypted_vol")
	require.Equal(t, 0, s.code, s.stderr)
	assert.Empty(t, s.stdout)
	assert.Contains(t, s.stderr, "nothing to do: boot-time unlock of my_enc_fs is already disabled")

	// Undo dry run shows the reverse diff and changes nothing; undo restores every byte.
	before := snapshot(t, root)
	ud := runCLI(t, "--root", root, "--volume", "my_enc_fs", "--undo", "--dry-run")
	require.Equal(t, 0, ud.code, ud.stderr)
	assert.Contains(t, ud.stdout, "-kernel /boot/vmlinuz-2.6.35.14-97.44.amzn1.x86_64 root=LABEL=/ console=hvc0 LANG=en_US.UTF-8 KEYTABLE=us rd_NO_LUKS\n")
	assert.Equal(t, before, snapshot(t, root))
	u := runCLI(t, "--root", root, "--volume", "my_enc_fs", "--undo")
	require.Equal(t, 0, u.code, u.stderr)
	after := snapshot(t, root)
	for k, v := range orig {
		assert.Equal(t, v, after[k], k)
	}
	for k := range after {
		if _, ok := orig[k]; !ok {
			assert.True(t, strings.HasSuffix(k, ".cloudluks-bak"), "only backups remain besides the originals: %s", k)
		}
	}

	// Nothing left to undo.
	n := runCLI(t, "--root", root, "--volume", "my_enc_fs", "--undo")
	assert.Equal(t, 1, n.code)
	assert.Contains(t, n.stderr, "nothing recorded to undo")
}

func TestCLIRefusesEncryptedRoot(t *testing.T) {
	root := writeTree(t, map[string]string{
		"boot/grub/grub.conf": fixture(t, "05-fedora15-encrypted-root-grub.conf"),
		"etc/grub.conf":       "->../boot/grub/grub.conf",
		"etc/crypttab":        "my_enc_fs /dev/xvdf none luks\n",
	})
	orig := snapshot(t, root)
	r := runCLI(t, "--root", root, "--volume", "my_enc_fs")
	assert.Equal(t, 1, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, `/boot/grub/grub.conf: kernel argument "rd_LUKS_UUID=luks-ea29e6e7-bc91-4630-a743-3a69ae69856d": refusing to disable boot-time unlock`)
	assert.Contains(t, r.stderr, "nothing was changed")
	assert.Equal(t, orig, snapshot(t, root))
}

func TestCLIUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--root", dir, "--mount-point", "/encrypted_vol"}, 1, "--mount-point and --device need --volume"},
		{[]string{"--root", dir, "--device", "/dev/xvdf"}, 1, "--mount-point and --device need --volume"},
		{[]string{"--root", dir, "--volume", "a b"}, 1, "invalid volume"},
		{[]string{"--root", dir, "--volume", "x", "extra"}, 1, "unexpected argument"},
		{[]string{"--bogus"}, 1, "flag provided but not defined"},
		{[]string{"--volume", "x"}, 1, "--root is required"},
		{[]string{"--root", "/nonexistent-root-dir", "--volume", "x"}, 1, "no such file or directory"},
		{[]string{"-h"}, 0, "usage: noautomount"},
	}
	for _, tt := range tests {
		r := runCLI(t, tt.args...)
		assert.Equal(t, tt.code, r.code, "%v: %s", tt.args, r.stderr)
		assert.Contains(t, r.stderr, tt.msg)
	}
}

func TestCLIConflictExitCode(t *testing.T) {
	root := al1Root(t)
	require.Equal(t, 0, runCLI(t, "--root", root, "--volume", "my_enc_fs").code)
	fstab := filepath.Join(root, "etc/fstab")
	b, err := os.ReadFile(fstab)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(fstab, []byte(strings.Replace(string(b), "noauto,nofail", "noauto,nofail,noatime", 1)), 0o644))
	r := runCLI(t, "--root", root, "--volume", "my_enc_fs", "--undo")
	assert.Equal(t, 5, r.code)
	assert.Contains(t, r.stderr, "/etc/fstab: file changed since it was read")
}

// TestCLIWithoutVolume: --volume is optional; without it only the boot loader's kernel
// arguments change (crypttab and fstab stay byte-identical), the output says so and names
// the crypttab line that still unlocks at boot, a second run has nothing to do, and --undo
// without --volume reverts exactly that run. A later run for the volume still does its part.
func TestCLIWithoutVolume(t *testing.T) {
	root := al1Root(t)
	orig := snapshot(t, root)

	d := runCLI(t, "--root", root, "--dry-run")
	require.Equal(t, 0, d.code, d.stderr)
	assert.Contains(t, d.stderr, "no --volume: only the boot loader's kernel arguments are edited; /etc/crypttab and /etc/fstab are left as they are")
	assert.Contains(t, d.stderr, "warning: no volume named: /etc/crypttab still unlocks my_enc_fs at boot")
	assert.Contains(t, d.stdout, "+++ b/boot/grub/menu.lst\n")
	assert.NotContains(t, d.stdout, "crypttab")
	assert.NotContains(t, d.stdout, "fstab")
	assert.Equal(t, orig, snapshot(t, root), "dry run touches nothing")

	a := runCLI(t, "--root", root)
	require.Equal(t, 0, a.code, a.stderr)
	assert.Equal(t, d.stdout, a.stdout)
	assert.Contains(t, a.stderr, "1 file(s) changed")
	now := snapshot(t, root)
	assert.Contains(t, now["boot/grub/menu.lst"], "KEYTABLE=us rd_NO_LUKS\n")
	assert.Equal(t, orig["etc/crypttab"], now["etc/crypttab"])
	assert.Equal(t, orig["etc/fstab"], now["etc/fstab"])

	s := runCLI(t, "--root", root)
	require.Equal(t, 0, s.code, s.stderr)
	assert.Empty(t, s.stdout)
	assert.Contains(t, s.stderr, "nothing to do: boot-time LUKS unlock in the kernel arguments is already disabled")

	// The volume's own run does only crypttab and fstab now.
	v := runCLI(t, "--root", root, "--volume", "my_enc_fs", "--dry-run")
	require.Equal(t, 0, v.code, v.stderr)
	assert.NotContains(t, v.stdout, "menu.lst")
	assert.Contains(t, v.stdout, "+#my_enc_fs /dev/xvdf none luks\n")

	u := runCLI(t, "--root", root, "--undo")
	require.Equal(t, 0, u.code, u.stderr)
	assert.Equal(t, orig, snapshot(t, root), "undo restores every byte")
	n := runCLI(t, "--root", root, "--undo")
	assert.Equal(t, 1, n.code)
	assert.Contains(t, n.stderr, "kernel arguments: nothing recorded to undo")
}

// TestCLIWithoutVolumeRefuses: unnamed, a crypttab line marked initramfs may be root's, so
// the run is refused with a hint to name the volume.
func TestCLIWithoutVolumeRefuses(t *testing.T) {
	root := writeTree(t, map[string]string{
		"boot/grub/menu.lst": fixture(t, "01-amazon-linux-2011.09-pv-menu.lst"),
		"etc/system-release": "Amazon Linux AMI release 2011.09\n",
		"etc/crypttab":       "my_enc_fs /dev/xvdf none luks,initramfs\n",
	})
	orig := snapshot(t, root)
	r := runCLI(t, "--root", root)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "name it with --volume NAME")
	assert.Equal(t, orig, snapshot(t, root))
}

// TestCLINoArguments: a bare noautomount used to edit the live /; now it prints its usage on
// stderr, changes nothing and exits 1.
func TestCLINoArguments(t *testing.T) {
	r := runCLI(t)
	assert.Equal(t, 1, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "usage: noautomount --root DIR")
	assert.NotContains(t, r.stderr, "family")
}

func TestCLIVersion(t *testing.T) {
	r := runCLI(t, "--version")
	assert.Equal(t, 0, r.code)
	assert.Regexp(t, `^noautomount \S+( rev [0-9a-f]+(-dirty)?)?\n$`, r.stdout)
}

// TestCLINoBootConfig: a root without boot configuration gets one message, not "no boot
// loader configuration found" followed by "already disabled".
// A root holding only /etc/fstab (no boot loader file) used to get both messages.
func TestCLINoBootConfig(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"empty":      {},
		"fstab only": {"etc/fstab": "LABEL=/ / ext4 defaults 1 1\n"},
	} {
		root := writeTree(t, files)
		for _, args := range [][]string{{"--root", root}, {"--root", root, "--volume", "my_enc_fs"}} {
			r := runCLI(t, args...)
			assert.Equal(t, 0, r.code, "%s %v: %s", name, args, r.stderr)
			assert.Contains(t, r.stderr, "nothing changed: no boot loader configuration found under "+root, "%s %v", name, args)
			assert.NotContains(t, r.stderr, "already disabled", "%s %v", name, args)
			assert.NotContains(t, r.stderr, "warning: no boot loader", "%s %v", name, args)
		}
	}
}

// newKernelEntry is what a kernel update on Amazon Linux AMI adds to menu.lst: a new
// first entry whose kernel line does not carry rd_NO_LUKS.
const newKernelEntry = "title Amazon Linux 2011.09 (2.6.35.14-97.45.amzn1.x86_64)\nroot (hd0)\nkernel /boot/vmlinuz-2.6.35.14-97.45.amzn1.x86_64 root=LABEL=/ console=hvc0 LANG=en_US.UTF-8 KEYTABLE=us\ninitrd /boot/initramfs-2.6.35.14-97.45.amzn1.x86_64.img\n"

// addKernelEntry inserts newKernelEntry before the first title, as grubby does.
func addKernelEntry(t *testing.T, root string) string {
	t.Helper()
	p := filepath.Join(root, "boot/grub/menu.lst")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	i := strings.Index(string(b), "title ")
	require.GreaterOrEqual(t, i, 0)
	out := string(b[:i]) + newKernelEntry + string(b[i:])
	require.NoError(t, os.WriteFile(p, []byte(out), 0o644))
	return out
}

// TestCLIUndoAfterKernelUpdate is bug 6: apply, a kernel update adds an entry, apply again,
// undo. Undo used to restore crypttab and fstab but leave rd_NO_LUKS on the original kernel
// line, with nothing left recorded to undo it. Now every line either apply touched loses
// exactly the argument it got, and the kernel update's entry stays.
func TestCLIUndoAfterKernelUpdate(t *testing.T) {
	root := al1Root(t)
	orig := snapshot(t, root)
	require.Equal(t, 0, runCLI(t, "--root", root, "--volume", "my_enc_fs").code)
	addKernelEntry(t, root)
	r := runCLI(t, "--root", root, "--volume", "my_enc_fs")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "+kernel /boot/vmlinuz-2.6.35.14-97.45.amzn1.x86_64 root=LABEL=/ console=hvc0 LANG=en_US.UTF-8 KEYTABLE=us rd_NO_LUKS")

	r = runCLI(t, "--root", root, "--volume", "my_enc_fs", "--undo")
	require.Equal(t, 0, r.code, r.stderr)
	after := snapshot(t, root)
	assert.NotContains(t, after["boot/grub/menu.lst"], "rd_NO_LUKS")
	want := orig["boot/grub/menu.lst"]
	i := strings.Index(want, "title ")
	assert.Equal(t, want[:i]+newKernelEntry+want[i:], after["boot/grub/menu.lst"], "the kernel update's entry is kept")
	for _, f := range []string{"etc/crypttab", "etc/fstab", "etc/grub.conf"} {
		assert.Equal(t, orig[f], after[f], f)
	}
	assert.NotContains(t, after, "var/lib/cloudluks/grubconf/my_enc_fs.json")
}

// TestCLIUndoStaleJournal: a kernel update after the apply makes the record stale (the
// file is no longer what apply wrote). --dry-run --undo shows what undo would do and
// writes nothing; --undo then removes the argument and keeps the new entry.
func TestCLIUndoStaleJournal(t *testing.T) {
	root := al1Root(t)
	orig := snapshot(t, root)
	require.Equal(t, 0, runCLI(t, "--root", root, "--volume", "my_enc_fs").code)
	updated := addKernelEntry(t, root)
	before := snapshot(t, root)

	r := runCLI(t, "--root", root, "--volume", "my_enc_fs", "--undo", "--dry-run")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "-kernel /boot/vmlinuz-2.6.35.14-97.44.amzn1.x86_64 root=LABEL=/ console=hvc0 LANG=en_US.UTF-8 KEYTABLE=us rd_NO_LUKS")
	assert.Contains(t, r.stdout, "+kernel /boot/vmlinuz-2.6.35.14-97.44.amzn1.x86_64 root=LABEL=/ console=hvc0 LANG=en_US.UTF-8 KEYTABLE=us\n")
	assert.Contains(t, r.stderr, "dry run: 3 file(s) would change, nothing written")
	assert.Equal(t, before, snapshot(t, root), "dry run writes nothing")

	r = runCLI(t, "--root", root, "--volume", "my_enc_fs", "--undo")
	require.Equal(t, 0, r.code, r.stderr)
	after := snapshot(t, root)
	assert.Equal(t, strings.ReplaceAll(updated, " rd_NO_LUKS", ""), after["boot/grub/menu.lst"])
	assert.Equal(t, orig["etc/crypttab"], after["etc/crypttab"])
	assert.Equal(t, orig["etc/fstab"], after["etc/fstab"])
}

// TestCLIUndoLineEditedByOthers: when a line apply edited was changed again by someone
// else, undo cannot take the argument out without losing that change: --dry-run says so
// and exits 0, --undo refuses with exit 5 and writes nothing.
func TestCLIUndoLineEditedByOthers(t *testing.T) {
	root := al1Root(t)
	require.Equal(t, 0, runCLI(t, "--root", root, "--volume", "my_enc_fs").code)
	fstab := filepath.Join(root, "etc/fstab")
	b, err := os.ReadFile(fstab)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(fstab, []byte(strings.Replace(string(b), "noauto,nofail", "noauto,nofail,noatime", 1)), 0o644))
	before := snapshot(t, root)

	r := runCLI(t, "--root", root, "--volume", "my_enc_fs", "--undo", "--dry-run")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "/etc/fstab: line 2 was changed since it was edited")
	assert.Contains(t, r.stderr, "dry run: nothing written; a real run would refuse: /etc/fstab: file changed since it was read")
	assert.Equal(t, before, snapshot(t, root))

	r = runCLI(t, "--root", root, "--volume", "my_enc_fs", "--undo")
	assert.Equal(t, 5, r.code, r.stderr)
	assert.Contains(t, r.stderr, "/etc/fstab: file changed since it was read")
	assert.Empty(t, r.stdout, "no diff for a plan that is not applied")
	assert.Equal(t, before, snapshot(t, root), "nothing written")
}

// TestCLIOversizedFile: a 2 GiB sparse grub.cfg in the root is refused at once with exit
// 1 and a message naming the file and the limit, instead of being read (it took a minute
// and gigabytes of memory in a dry run).
func TestCLIOversizedFile(t *testing.T) {
	root := writeTree(t, map[string]string{"boot/grub2/grub.cfg": "menuentry 'x' {\n\tlinux /vmlinuz root=/dev/xvda1\n}\n"})
	require.NoError(t, os.Truncate(filepath.Join(root, "boot/grub2/grub.cfg"), 2<<30))
	r := runCLI(t, "--root", root, "--volume", "my_enc_fs", "--dry-run")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "/boot/grub2/grub.cfg: 2147483648 bytes, more than the 16777216-byte limit")
}

// TestCLIUndoTwoVolumes: the kernel argument is shared. Undoing one volume used to take it
// out and turn boot-time unlock of the other back on; now it is kept, with a warning, and
// the other volume's undo takes it out.
func TestCLIUndoTwoVolumes(t *testing.T) {
	root := writeTree(t, map[string]string{
		"boot/grub/menu.lst": fixture(t, "01-amazon-linux-2011.09-pv-menu.lst"),
		"etc/system-release": "Amazon Linux AMI release 2011.09\n",
		"etc/crypttab":       "my_enc_fs /dev/xvdf none luks\nother_fs /dev/xvdg none luks\n",
		"etc/fstab":          "LABEL=/ / ext4 defaults 1 1\n/dev/mapper/my_enc_fs /encrypted_vol ext4 defaults 0 0\n/dev/mapper/other_fs /other ext4 defaults 0 0\n",
	})
	orig := snapshot(t, root)
	require.Equal(t, 0, runCLI(t, "--root", root, "--volume", "my_enc_fs").code)
	require.Equal(t, 0, runCLI(t, "--root", root, "--volume", "other_fs").code)

	r := runCLI(t, "--root", root, "--volume", "my_enc_fs", "--undo")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "warning: kept rd_NO_LUKS: other_fs still needs it")
	assert.NotContains(t, r.stdout, "menu.lst")
	s := runCLI(t, "--root", root, "--volume", "other_fs", "--dry-run")
	assert.Contains(t, s.stderr, "nothing to do: boot-time unlock of other_fs is already disabled")

	r = runCLI(t, "--root", root, "--volume", "other_fs", "--undo")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "-kernel /boot/vmlinuz-2.6.35.14-97.44.amzn1.x86_64 root=LABEL=/ console=hvc0 LANG=en_US.UTF-8 KEYTABLE=us rd_NO_LUKS\n")
	assert.Equal(t, orig, snapshot(t, root), "the last undo restores every byte")
}
