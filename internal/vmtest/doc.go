// Package vmtest runs a package's own tests inside a qemu VM that boots the Debian cloud
// kernel, for tests that need what the host kernel lacks or must not be touched: device-mapper,
// dm-crypt, loop devices, NVMe disks, root.
//
// # How it works
//
// The test binary of the package is built once per test process with CGO_ENABLED=0 (or the
// running binary is reused when it is already static) and becomes /init of a newc cpio
// initramfs, next to the kernel modules for loop, device-mapper, dm-crypt and the crypto the
// project's cipher specs need (loaded in dependency order computed from the modules' .modinfo:
// the guest has no modprobe), and any host tools the test asks for with their shared
// libraries. qemu (TCG, q35, -cpu max, no network unless Options.Net) boots it; the kernel command line carries
// the guest environment and -test.run selecting exactly the current test. In the guest, Main
// mounts proc, sysfs, devtmpfs and tmpfs, loads the modules, waits for the disks, runs the
// tests, prints a result line with a per-boot nonce on the serial console and powers off.
// The host streams the console into the test log and fails the test when the guest test
// fails, the guest crashes or the timeout expires.
//
// # Writing a VM test
//
// The package's TestMain must call Main. A test calls Run first: on the host Run boots the VM
// and returns false; in the guest it returns true and the rest of the test runs there as root.
//
//	func TestMain(m *testing.M) { vmtest.Main(m) }
//
//	func TestOpenClose(t *testing.T) {
//		var img string
//		if !vmtest.InVM() {
//			img = vmtest.NewDiskImage(t, 64<<20) // host side: prepare inputs
//		}
//		if !vmtest.Run(t, vmtest.Options{
//			Disks: []vmtest.Disk{{Path: img, NVMeSerial: "vol0123456789abcdef0"}},
//			Tools: []string{"cryptsetup"},
//		}) {
//			// host side, after the VM ran: inspect img here if the guest left results on it
//			return
//		}
//		dev := vmtest.GuestDisk(0) // "/dev/nvme0n1"
//		// … guest side: root, /dev/mapper/control, cryptsetup in PATH …
//	}
//
// Every Run is one boot (several seconds under TCG), so group checks as subtests of one VM
// test: the guest runs the whole test, subtests included. Run also works inside a subtest; then
// only that subtest (and its parents' code) runs in the guest.
//
// Code before Run executes twice, on the host and again in the guest, so guard host-only
// preparation with InVM as above; the same holds for TestMain code before Main. Values the
// guest needs go through Options.Env (short, no spaces) or onto a disk image. Env values end
// up on qemu's command line, visible in ps: never pass a secret that way; generate test keys
// in the guest or put them on a disk image.
//
// # Getting results out
//
// The guest's stdout and stderr (t.Log output with -test.v, which the harness passes) appear in
// the host test's log. Bulk data goes through a disk: create it with NewDiskImage, write to
// GuestDisk(i) in the guest (Sync or close it), and read the image file on the host after Run
// returns false. The disks are attached with cache=unsafe, so data is on the host once qemu
// exits.
//
// # A guest the host test drives: Start
//
// Run blocks until the guest's test ends. For a guest that serves while the host test acts
// (an "instance" that a program on the host connects to, kills and reboots), register a guest
// function and Start it:
//
//	func init() { vmtest.GuestMain("server", func() error { … listen on :22, serve forever … }) }
//
//	func TestReboot(t *testing.T) {
//		vm := vmtest.Start(t, vmtest.Options{Guest: "server", Net: &vmtest.Net{GuestPort: 22},
//			Disks: []vmtest.Disk{{Path: img, NVMeSerial: "vol0123456789abcdef0"}}})
//		_ = vm.WaitConsole(ctx, "listening") // the guest's own message
//		// … connect to vm.Addr() (127.0.0.1:PORT) …
//		vm.Kill() // no warning, like a crash
//		vm.Boot() // same disks, same port, a new boot id
//	}
//
// Start returns while qemu runs. The VM's Console has every boot's raw console output,
// BootConsole the current boot's; Wait returns when the guest function returned (nil: it
// returned nil) or the VM was killed (ErrVMKilled). The test's end kills a VM still running.
// The guest is the same test binary as for Run (TestMain must call Main), so GuestMain must
// run in the guest too: call it from init or from TestMain before Main. A package whose
// TestMain cannot call Main boots vmtest's own guest program instead (Options.Init:
// InitProgram(t)), which runs only this package's guest functions, such as the sshd-only
// guest of Options.SSH; everything else it needs comes through Options.GuestFiles.
//
// # Network
//
// Options.Net attaches a virtio NIC on qemu's user-mode network with restrict=on: the guest
// cannot send anything out of the VM, and the only way in is the one forwarded port, which
// listens on the host's 127.0.0.1 (Net.HostPort, or a free port; VM.Addr reports it). In the
// guest eth0 has GuestAddr (10.0.2.15)/24 and lo is up; connections arrive from 10.0.2.2.
// Listen on the wildcard address or on GuestAddr, not on 127.0.0.1.
//
// # OpenSSH in the guest
//
// Options.SSH runs the host's /usr/sbin/sshd (Debian's openssh-server, copied with its
// libraries, plus /bin/sh for sessions) on the guest's port 22, started by Main after the
// network is up, keys only, root only. The test makes the host key (NewSSHKey) and pins its
// public half; root's authorized_keys is Options.SSH.AuthorizedKeys (AuthorizedKey formats
// lines, options such as restrict,command="…" included). The guest prints SSHReady on the
// console once sshd listens; sshd logs to the console. With Start and no Options.Guest the
// guest does nothing else. Programs of this module for the guest are built static with
// BuildStatic and placed with Options.GuestFiles.
//
//	hostKey, hostSigner := vmtest.NewSSHKey(t)
//	_, client := vmtest.NewSSHKey(t)
//	vm := vmtest.Start(t, vmtest.Options{Net: &vmtest.Net{GuestPort: 22},
//		SSH: &vmtest.SSH{HostKey: hostKey, AuthorizedKeys: vmtest.AuthorizedKey("", client.PublicKey())}})
//	_ = vm.WaitConsole(ctx, vmtest.SSHReady)
//	c, err := ssh.Dial("tcp", vm.Addr(), &ssh.ClientConfig{User: "root",
//		Auth: []ssh.AuthMethod{ssh.PublicKeys(client)}, HostKeyCallback: ssh.FixedHostKey(hostSigner.PublicKey())})
//
// # Disks
//
// Options.Disks are attached in order; a Disk with NVMeSerial becomes an NVMe controller with
// that serial (as EBS volumes appear on Nitro instances: /sys/block/nvmeXn1/device/serial),
// otherwise a virtio-blk disk. GuestDisk(i) finds disk i by its serial in sysfs; by
// enumeration the NVMe disks are nvme0n1, nvme1n1… in their order among the NVMe disks and the
// virtio disks vda, vdb… in theirs. There is no udev: no /dev/disk/by-id, and device-mapper
// nodes are whatever devtmpfs creates (dm-N; /dev/mapper/NAME only if the code makes it).
//
// # Environment
//
// The kernel is found in $CLOUDLUKS_VM_DIR, else /var/cache/cloudluks-vm, as unpacked by
// setup-kernel.sh (the newest linux-image-*-cloud-amd64 there wins). Without qemu or the
// kernel the test is skipped, or fails under CI=true (see internal/testenv). VMTEST_KEEP=1
// keeps the built binary and initramfs (the path is printed at the end) for debugging by hand:
//
//	qemu-system-x86_64 -M q35 -cpu max -m 512M -nodefaults -display none -serial stdio \
//	    -no-reboot -kernel /var/cache/cloudluks-vm/boot/vmlinuz-* -initrd initramfs-….cpio.gz \
//	    -append "console=ttyS0 panic=-1 CLOUDLUKS_VM=1 -- -test.v -test.run=^TestX$"
//
// In the guest: PID 1 is the test binary, uid 0 with all capabilities; /proc, /sys, /dev
// (devtmpfs), /tmp, /run, /dev/shm are mounted; /run/cryptsetup exists; PATH is the standard
// one; there is no network (unless Options.Net), no udev and no modprobe (Options.Modules adds modules at build
// time). KVM is never used: it does not work on the project's machines, TCG does.
package vmtest
