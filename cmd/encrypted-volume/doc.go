// Command encrypted-volume automates the classic "encrypt an EBS volume with LUKS"
// walkthrough end to end, composed only from the cloudluks packages: ebs for the volume's
// life cycle, luks for the on-disk format, dmcrypt for the kernel mapping and grubconf for
// the boot configuration.
//
// # Verbs
//
//	encrypted-volume setup    [flags]  create/attach → luksFormat → dump → open → mkfs → mount → disable boot unlock → status
//	encrypted-volume teardown [flags]  unmount → close → (--detach) → (--delete)
//	encrypted-volume unlock   [flags]  resolve → open → mount → start --service, post-mount hooks (after a reboot)
//	encrypted-volume status   [flags]  attached? opened? mounted? boot-time unlock disabled?
//	encrypted-volume swap     [flags]  (create/attach) → check → open with an ephemeral key → mkswap → swapon → crypttab/fstab
//	encrypted-volume tmp      [flags]  (create/attach) → check → open with an ephemeral key → mkfs.ext4 → mount (1777) → crypttab/fstab
//
// Every verb prints one line per step ("Step 3/9: luksFormat /dev/nvme1n1 (LUKS2,
// aes-xts-plain64, 512-bit, argon2id)..."). A failed step names itself, undoes the local state it created (an
// open mapping, a mount) and says how to remove what remains in EC2, so teardown can always
// clean up. teardown skips what is already gone (nothing mounted, no mapping, a volume EC2
// no longer knows), so running it twice is harmless, and does not detach a volume whose
// NVMe disk something on the instance still uses (a mapping or mount under another --name
// or --mount-point). Only a volume setup created itself is ever suggested for --delete.
//
// The volume setup creates is named by the run's parameters (instance, --name,
// --mount-point, --size, --volume-type, zone): that name becomes its EC2 ClientToken and a tag,
// so a setup killed while creating it — even before EC2's answer arrived — leaves no
// orphan: running the same command again finds that volume and continues with it.
//
// # LUKS1 or LUKS2
//
// setup formats LUKS2 with argon2id key slots by default, as cryptsetup 2.6's luksFormat
// does on every current distribution (--pbkdf, --pbkdf-memory, --pbkdf-parallel,
// --pbkdf-force-iterations and --iter-time set the slot's cost as in cryptsetup);
// --type luks1 makes the walkthrough's LUKS1 with PBKDF2 instead. unlock, status and
// teardown take a volume of either version, made here or by cryptsetup.
//
// # Preflight
//
// setup checks everything it can before its first side effect, so a bad input never leaves
// a volume behind: the cipher, hash and key size (as luksFormat would), the mapping name, the
// mkfs program on PATH, the mount point, the kernel's device-mapper, a boot configuration
// under --root (step 8, without which the next boot waits for the passphrase), every
// --service, a mapping name not in use, a mount point with nothing mounted on it, and a
// --device that exists, is not in use and is blank (unless --force). Only then does it ask
// for the passphrase and create, attach or format anything.
//
// # Encrypted swap and /tmp
//
// swap and tmp keep swapped-out pages and temporary files, which hold pieces of the data
// the LUKS volume protects, off the disks in plaintext, with no stored key at all: the
// device (--device, the first unused --instance-store disk, an attached --volume-id, or a
// new EBS volume of --size GiB) is mapped in plain mode with a key from getrandom(2) that
// only the kernel ever holds (dmcrypt.OpenEphemeral), then made swap (mkswap, swapon) or
// an ext4 /tmp (mode 1777). /etc/crypttab under --root gets the line that does the same at
// every boot with a key from /dev/urandom ("NAME /dev/disk/by-id/… /dev/urandom
// plain,cipher=…,size=…,hash=…,swap", or tmp=ext4) and /etc/fstab the swap or /tmp line
// (grubconf.PlanScratch: SysV systems get their own form). The line names the disk by
// its /dev/disk/by-id/ name, derived from the NVMe model and serial; a disk without one
// (/dev/xvdf, virtio) is refused, because a kernel name can point at another volume after
// a reboot, which the boot would then format. Before the first change, the device must be
// unused (not mounted, mapped or swap), at least 8 MiB, hold no LUKS header (never
// overwritten, even with --force) and no other signature (unless --force); the cipher and
// key size are checked as the mapping would check them. tmp mounts on /tmp or /var/tmp;
// anywhere else needs --force, and a system directory (/etc, /var, /home, /boot, /usr…
// and what lies below most of them) is refused even with it: the file system is emptied
// at every boot. status lists these mappings
// ("ephemeral key", "ephemeralKey": true in --json) with their use and crypttab line;
// teardown --name NAME switches the swap off or unmounts, closes the mapping (the key,
// and with it every byte written, is gone) and takes the crypttab and fstab lines out.
//
// # Waiting for the device
//
// After an attach the volume's block device can take a minute or more to appear. setup and
// unlock wait up to --wait (a duration, as in ec2volume device --wait; default 2m whenever EC2
// reports the attachment, made by this run or earlier, 3s with --no-aws, where the node should
// already be there) and print on standard error every ten
// seconds what they wait for (the NVMe serial, the Xen name).
//
// # Services that live on the volume
//
// --service NAME (repeatable) keeps an application from starting on the empty mount point
// after a reboot, before anyone unlocked the volume. Where systemd is the init (detected
// under --root), setup writes /etc/systemd/system/NAME.service.d/encrypted-volume.conf with
// ConditionPathIsMountPoint= and After= for the mount point: the service is skipped while the
// volume is locked, and never pulls in the mount (which would pull in the passphrase prompt
// through systemd-cryptsetup@NAME.service, noauto or not). Under SysV init
// (Amazon Linux 1), setup renames the service's start links as chkconfig off would
// (rc3.d/S64mysqld → rc3.d/K36mysqld, without running chkconfig) and records them under
// /var/lib/encrypted-volume/services. unlock --service NAME starts the service once the
// volume is mounted (systemctl start, or the init script), before the hooks, and only on
// the live system (--service with a --root other than / is refused: that tree's services
// are not this machine's to start); teardown
// --service NAME removes the drop-in or renames back exactly the recorded links.
//
// # The passphrase
//
// It comes from --key-file (a file, or "-" for all of standard input), else from a terminal
// prompt without echo (asked twice by setup), else from the first line of standard input. It
// lives in a []byte that is zeroed after use; it is never written to disk, logged, sent to
// AWS (no EC2 request carries it), put on a child's command line or in a child's environment.
// Children (mkfs, hooks) get a clean environment and /dev/null as standard input, so a
// passphrase piped into this program cannot leak into them either.
//
// # AWS
//
// Region, instance ID and availability zone come from the instance metadata service unless
// given as flags. The standard SDK environment applies: AWS_ENDPOINT_URL_EC2,
// AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_REGION and the credential chain. --no-aws skips EC2
// and IMDS entirely: the device is then --device, or the NVMe disk whose serial is the
// --volume-id (how Nitro instances expose EBS volumes).
//
// # Post-mount hooks
//
// unlock runs hooks after mounting: each --hook flag is one command, and --hooks-file names
// a file with one command per line ('#' starts a comment line; words split at blanks; single
// and double quotes group words; a backslash escapes the next character; no variables, globs
// or pipes, because no shell is involved). Hooks run in order (the file's lines, then the
// --hook flags) with the environment
//
//	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
//	ENCRYPTED_VOLUME_NAME=<mapping name>  ENCRYPTED_VOLUME_MOUNT=<mount point>  ENCRYPTED_VOLUME_DEVICE=<mapper path>
//
// standard input from /dev/null and / as working directory, and stop at the first failure.
// A command named without a slash is looked up in that PATH, then in the absolute
// directories of this program's own PATH (relative entries such as "." are ignored).
// A failing hook leaves the volume mounted: the data is available, only the application
// start failed.
//
// # Exit codes
//
// Like cryptsetup: 0 success, 1 wrong parameters or a failed step, 2 wrong passphrase or no
// permission (device-mapper as a non-root user), 4 device missing or unusable, 5 device or
// mount point busy, already formatted or in use.
package main
