// Package grubconf makes sure a reboot never stops at a passphrase prompt for an encrypted
// data volume: it finds the boot configuration of a Linux system under a root directory
// and plans exact, minimal, reversible edits that keep the initramfs and the init system
// from unlocking the volume at boot (it is unlocked later, remotely).
//
// # Operation
//
//	sys, err := grubconf.Detect("/")                       // or a mounted image
//	plan, err := sys.PlanDisableUnlock(grubconf.Volume{Name: "my_enc_fs", MountPoint: "/encrypted_vol"})
//	plan.Diff(os.Stdout)                                   // dry run: unified diff
//	err = plan.Apply(grubconf.ApplyOptions{Backup: true})  // atomic writes, undo record
//	undo, err := sys.PlanUndo("my_enc_fs")                 // later, even from another process
//	err = undo.Apply(grubconf.ApplyOptions{})              // our edits out, others' kept
//	st, err := sys.Status(vol)                             // st.Disabled
//
// An empty plan means the work is done: applying twice changes nothing the second time.
//
// The zero Volume{} plans the kernel-argument edits alone and leaves crypttab and fstab
// untouched (a crypttab line without noauto then still unlocks at boot; the plan warns).
// Its undo record is separate from any volume's: PlanUndo("") reverts it. Unnamed, every
// LUKS line in crypttab counts as a device boot may need for the safety check below.
//
// # What is edited, per distribution family
//
// Detect reads /etc/os-release (or /etc/system-release, /etc/redhat-release,
// /etc/debian_version) and the dracut version (dracut-version.sh, the dpkg status, an
// RPM documentation directory, or the crypt module's wording), and picks the kernel
// argument: rd_NO_LUKS for dracut before 008 (RHEL 6, Amazon Linux AMI), rd.luks=0 from 008
// on (dracut-ng 104 and later no longer know rd_NO_LUKS). The plan then covers every file
// that exists:
//
//   - legacy GRUB 0.97 grub.conf/menu.lst: the argument on every entry's kernel line, or
//     on the first module line of Xen/multiboot entries, and in a Debian "# kopt=" line;
//   - a generated GRUB 2 grub.cfg (/boot/grub2, /boot/grub, /boot/efi/EFI/*): the argument
//     on every linux/linux16/linuxefi line and on the first module line of Xen entries,
//     so the next boot has it without regenerating (BLS-only grub.cfg files have none);
//   - GRUB 2 /etc/default/grub: GRUB_CMDLINE_LINUX (GRUB_CMDLINE_LINUX_DEFAULT where only
//     that one is used, as on Amazon Linux 2), in the value's own shell quoting; when a
//     /etc/default/grub.d/*.cfg drop-in overrides the variable, a 99-cloudluks.cfg drop-in
//     that extends it is added instead, because drop-ins are sourced after the main file;
//   - Boot Loader Specification entries (options lines), kernelopts in grubenv (entries
//     using $kernelopts), and /etc/kernel/cmdline (created from the newest entry on
//     RHEL 9-like systems, as grubby does, so kernels installed later keep the argument);
//   - /etc/crypttab: noauto,nofail for the volume; on SysV systems (RHEL 6, Amazon Linux
//     AMI), whose init scripts ignore noauto, the line is commented out;
//   - /etc/fstab: noauto,nofail and fsck pass 0 for /dev/mapper/NAME or the mount point.
//
// Plan.Notes lists what to run afterwards when needed: grub2-mkconfig or update-grub when
// no grub.cfg with Linux entries was found, and the initramfs rebuild for a host-only
// initramfs that embeds /etc/crypttab.
//
// # Encrypted swap and /tmp
//
// PlanScratch is the other direction: crypttab lines that must stay enabled at boot. A
// swap or /tmp device is mapped in plain mode with a key read from /dev/urandom at every
// boot and formatted again (mkswap, mkfs), so no key exists anywhere but in the kernel:
//
//	plan, err := sys.PlanScratch(grubconf.Scratch{Name: "cryptswap", Kind: grubconf.ScratchSwap,
//		Device: "/dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_AWS…"})
//
// writes "cryptswap DEVICE /dev/urandom plain,cipher=aes-xts-plain64,size=512,hash=sha256,swap,nofail"
// (tmp: ",tmp=ext4") and "/dev/mapper/cryptswap swap swap defaults,nofail 0 0" ("none swap sw"
// on Debian; /tmp: "ext4 nosuid,nodev,nofail,x-systemd.before=local-fs.target,x-systemd.device-timeout=30s 0 0"
// plus /etc/tmpfiles.d/cloudluks-NAME.conf "z /tmp 1777 root root -", which makes the fresh
// file system's root 1777 after the mount, and on systemd 219 a tmp.mount drop-in with
// Before=local-fs.target), cipher, key size and hash always explicit. The
// device must be a /dev/disk/by-id/ name (ErrUnstableDevice otherwise): a kernel name such
// as /dev/nvme1n1 can point at another volume after a reboot, which the boot would then
// format. On SysV systems (RHEL 6, Amazon Linux AMI) initscripts' init_crypto sets up
// random-keyed lines only after rc.sysinit's mount -a and runs a bare mke2fs for tmp: the
// swap line is enabled by swapon -a, the /tmp line is ext2 with _netdev and pass 0 so that
// netfs mounts it once the mapping exists. PlanDisableUnlock never edits these lines and
// does not count them as LUKS; PlanUndo(Name) takes them out again, in any order. Every
// line carries nofail: instance-store disks are new (new serials) after a stop and start,
// and a line whose disk is gone must not stop the boot at an emergency shell; /tmp then
// stays on the root file system until it is set up again.
//
// # Safety
//
// Parsers keep every byte: render(parse(x)) == x for any input, including invalid UTF-8,
// CRLF line ends and a missing final newline; an edit rewrites only the bytes it must
// (comments, blank lines, TABs, double spaces, trailing spaces and "=" separators stay).
// Files are found through their symlink chains resolved inside the root (an absolute link
// target is relative to the root; ".." never leaves it; files Apply creates are placed the
// same way, so nothing is ever written outside the root) and the final target is replaced
// atomically (temporary file beside it, fsync, rename, directory fsync) with its mode and
// owner, so symlinks stay symlinks. At Apply time every file is read and written through
// directories opened beneath the root that follow no symlink (openat2 with RESOLVE_BENEATH
// and RESOLVE_NO_SYMLINKS where Linux has it, an O_NOFOLLOW walk otherwise): the planned
// paths are the real files, so a directory swapped for a symlink since the plan (perhaps
// to one outside the root) is refused with ErrConflict instead of being followed. Apply
// first checks that no file changed since the plan was made (ErrConflict), and records the
// original bytes under var/lib/cloudluks/grubconf/NAME.json in the root for PlanUndo. A later apply for the same
// volume extends that record; when someone else changed a file in between (a kernel update
// adding an entry), the later edit is recorded as a further step. Undo takes out exactly
// what the applies added, line by line, and keeps every change made by others, before or
// after an apply; a file nobody touched gets its original bytes back. A line that holds its
// original text again counts as reverted; one that is gone (a kernel update removed its
// entry) is skipped with a warning. When a line the applies edited was changed again
// since, the undo plan says so in Warnings, its Diff shows the rest, and Check and Apply
// refuse with ErrConflict. The kernel argument is shared by every volume: while another
// volume's record exists, an undo keeps it in the boot-loader files (and says so) and
// leaves their entries to that record; the last undo takes it out, also from entries a
// kernel update added since with the argument copied in. Directories Apply had to make
// (var/lib/… in a bare image root, /etc/kernel) are recorded too, and undo removes them
// again when empty, so the tree is exactly as before.
//
// Every file read (boot loader files, /etc/default/grub and drop-ins, crypttab, fstab,
// os-release and the other detection files, the undo record) is limited to MaxFileSize
// (16 MiB; real ones are a few KiB, a grubenv block 1024 bytes), checked by its size
// before reading and again while reading; a larger file is refused with a
// *FileTooLargeError (errors.Is ErrFileTooLarge) naming it, before anything is written.
// Detection's best-effort probes (os-release, dpkg status) skip such a file instead.
//
// PlanDisableUnlock refuses with an *EncryptedBootError (errors.Is ErrEncryptedBoot) and
// changes nothing when root, /usr, swap or resume is on LUKS: a kernel argument such as
// rd_LUKS_UUID=, rd.luks.uuid=, rd.luks.name=, luks.uuid=, root=/dev/mapper/luks-…, or a
// crypttab entry backing /, /usr or swap, or one marked initramfs. Because a root on LVM
// over LUKS is often unlocked from crypttab with no kernel argument naming it (Debian and
// Ubuntu installers, dracut host-only), it also refuses when crypttab unlocks another LUKS
// device at boot (no noauto) while /, /usr, swap, root= or resume= is a device-mapper
// device (/dev/mapper/X, /dev/dm-N, /dev/VG/LV) or rd.lvm.lv= is given; mark that other
// entry noauto if it really is a data volume. Disabling unlock there would make the
// machine unbootable. A root given as UUID= on LVM over LUKS cannot be told from a plain
// partition without reading the LVM metadata, which this package does not do.
//
// # References
//
// GRUB 0.97 (stage2/cmdline.c: "#" only as the first non-blank character, command word
// ending at blank or "="), GRUB 2 grub-mkconfig and lib/envblk.c (1024-byte environment
// block, "#" padding, backslash escapes), the Boot Loader Specification, POSIX shell
// quoting (XCU 2.2), the kernel's lib/cmdline.c next_arg tokenising, dracut.cmdline(7),
// systemd crypttab(5) and fstab(5). Diffs are in the unified format of diff -u and apply
// with patch -p1 inside the root.
//
// This package imports none of the project's cryptographic packages.
package grubconf
