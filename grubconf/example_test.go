package grubconf_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cloudluks/cloudluks/grubconf"
)

// exampleRoot writes a small Amazon Linux AMI 2011.09 system (the seed walkthrough's) into
// a temporary directory: menu.lst behind the /etc/grub.conf symlink, crypttab and fstab.
func exampleRoot() string {
	root, err := os.MkdirTemp("", "grubconf-example-")
	if err != nil {
		panic(err)
	}
	files := map[string]string{
		"boot/grub/menu.lst": "default=0\ntimeout=1\ntitle Amazon Linux 2011.09 (2.6.35.14-97.44.amzn1.x86_64)\nroot (hd0)\nkernel /boot/vmlinuz-2.6.35.14-97.44.amzn1.x86_64 root=LABEL=/ console=hvc0\ninitrd /boot/initramfs-2.6.35.14-97.44.amzn1.x86_64.img\n",
		"etc/system-release": "Amazon Linux AMI release 2011.09\n",
		"etc/crypttab":       "my_enc_fs /dev/xvdf none luks\n",
		"etc/fstab":          "LABEL=/ / ext4 defaults 1 1\n/dev/mapper/my_enc_fs /encrypted_vol ext4 defaults 0 2\n",
	}
	for p, c := range files {
		hp := filepath.Join(root, p)
		_ = os.MkdirAll(filepath.Dir(hp), 0o755)
		_ = os.WriteFile(hp, []byte(c), 0o644)
	}
	_ = os.Symlink("../boot/grub/menu.lst", filepath.Join(root, "etc/grub.conf"))
	return root
}

// Plan the edits, show them as a diff (a dry run), apply them, ask for the status.
func Example() {
	root := exampleRoot()
	defer os.RemoveAll(root)

	sys, err := grubconf.Detect(root)
	if err != nil {
		panic(err)
	}
	fmt.Println("family:", sys.Family, "argument:", sys.Arg)
	vol := grubconf.Volume{Name: "my_enc_fs", MountPoint: "/encrypted_vol"}
	plan, err := sys.PlanDisableUnlock(vol)
	if err != nil {
		panic(err)
	}
	_ = plan.Diff(os.Stdout)
	if err := plan.Apply(grubconf.ApplyOptions{Backup: true}); err != nil {
		panic(err)
	}
	st, _ := sys.Status(vol)
	fmt.Println("disabled:", st.Disabled)
	// Output:
	// family: al1-rhel6 argument: rd_NO_LUKS
	// --- a/boot/grub/menu.lst
	// +++ b/boot/grub/menu.lst
	// @@ -2,5 +2,5 @@
	//  timeout=1
	//  title Amazon Linux 2011.09 (2.6.35.14-97.44.amzn1.x86_64)
	//  root (hd0)
	// -kernel /boot/vmlinuz-2.6.35.14-97.44.amzn1.x86_64 root=LABEL=/ console=hvc0
	// +kernel /boot/vmlinuz-2.6.35.14-97.44.amzn1.x86_64 root=LABEL=/ console=hvc0 rd_NO_LUKS
	//  initrd /boot/initramfs-2.6.35.14-97.44.amzn1.x86_64.img
	// --- a/etc/crypttab
	// +++ b/etc/crypttab
	// @@ -1 +1 @@
	// -my_enc_fs /dev/xvdf none luks
	// +#my_enc_fs /dev/xvdf none luks
	// --- a/etc/fstab
	// +++ b/etc/fstab
	// @@ -1,2 +1,2 @@
	//  LABEL=/ / ext4 defaults 1 1
	// -/dev/mapper/my_enc_fs /encrypted_vol ext4 defaults 0 2
	// +/dev/mapper/my_enc_fs /encrypted_vol ext4 defaults,noauto,nofail 0 0
	// disabled: true
}

// Undo takes out what Apply put in (here, nobody else changed the files, so every original
// byte comes back), from the record Apply left under the root (so it also works from
// another process, e.g. `noautomount --undo`).
func ExampleSystem_PlanUndo() {
	root := exampleRoot()
	defer os.RemoveAll(root)
	before, _ := os.ReadFile(filepath.Join(root, "boot/grub/menu.lst"))

	sys, _ := grubconf.Detect(root)
	plan, _ := sys.PlanDisableUnlock(grubconf.Volume{Name: "my_enc_fs"})
	_ = plan.Apply(grubconf.ApplyOptions{})

	undo, err := sys.PlanUndo("my_enc_fs")
	if err != nil {
		panic(err)
	}
	for _, c := range undo.Changes {
		fmt.Println("restore", c.Path)
	}
	_ = undo.Apply(grubconf.ApplyOptions{})
	after, _ := os.ReadFile(filepath.Join(root, "boot/grub/menu.lst"))
	fmt.Println("identical:", string(before) == string(after))
	// Output:
	// restore /etc/fstab
	// restore /etc/crypttab
	// restore /boot/grub/menu.lst
	// identical: true
}

// The operation refuses, changing nothing, when the machine needs LUKS to boot.
func ExampleSystem_PlanDisableUnlock_refused() {
	root, _ := os.MkdirTemp("", "grubconf-example-")
	defer os.RemoveAll(root)
	_ = os.MkdirAll(filepath.Join(root, "boot/loader/entries"), 0o755)
	_ = os.WriteFile(filepath.Join(root, "boot/loader/entries/a.conf"),
		[]byte("options root=/dev/mapper/luks-0c3b rd.luks.uuid=0c3b ro\n"), 0o644)

	sys, _ := grubconf.Detect(root)
	_, err := sys.PlanDisableUnlock(grubconf.Volume{Name: "my_enc_fs"})
	fmt.Println(errors.Is(err, grubconf.ErrEncryptedBoot))
	fmt.Println(err)
	// Output:
	// true
	// /boot/loader/entries/a.conf: kernel argument "root=/dev/mapper/luks-0c3b": refusing to disable boot-time unlock: a file system needed for boot is on LUKS
}
