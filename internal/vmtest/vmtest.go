package vmtest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Environment variables the harness sets on the kernel command line for the guest.
const (
	envMarker = "CLOUDLUKS_VM"       // "1" in the guest
	envNonce  = "CLOUDLUKS_VM_NONCE" // random per boot; part of the result sentinel
	envDisks  = "CLOUDLUKS_VM_DISKS" // kind:serial,… in Options.Disks order
	envNet    = "CLOUDLUKS_VM_NET"   // "1": bring eth0 up with GuestAddr
)

// Addresses of qemu's user-mode network (slirp defaults): the guest is GuestAddr/24, the host
// side of the virtual network is 10.0.2.2.
const (
	GuestAddr = "10.0.2.15"
	guestMask = 24
)

// Host-side environment knobs.
const (
	// EnvDir names the directory holding the unpacked kernel (default DefaultDir).
	EnvDir = "CLOUDLUKS_VM_DIR"
	// EnvKeep, when "1", keeps the initramfs and the test binary after the run (path logged).
	EnvKeep = "VMTEST_KEEP"
	// DefaultDir is where setup-kernel.sh unpacks the kernel by default.
	DefaultDir = "/var/cache/cloudluks-vm"
)

// Defaults for Options.
const (
	DefaultTimeout = 3 * time.Minute
	DefaultMemory  = "512M"
	DefaultCPUs    = 2
)

// Disk is one raw disk image attached to the VM.
type Disk struct {
	Path       string // raw image file on the host (created by the test, e.g. NewDiskImage)
	NVMeSerial string // "" → virtio-blk disk; else an NVMe disk with this serial (≤20 chars)
}

// Options configure one VM run.
type Options struct {
	Disks []Disk
	// Tools are host programs copied into the guest with their shared libraries, e.g.
	// "cryptsetup", "mkfs.ext4", "blkid"; bare names are looked up in the host's PATH and
	// placed at the same (canonical) path in the guest.
	Tools []string
	// Env is passed to the guest test process. Names: [A-Za-z_][A-Za-z0-9_]*; values:
	// printable ASCII without spaces or double quotes (kernel command line rules).
	Env map[string]string
	// Timeout bounds the whole VM run (boot, test, power-off); default DefaultTimeout. The
	// guest test binary gets -test.timeout a little shorter so a hang ends with a goroutine
	// dump on the console rather than a silent kill.
	Timeout time.Duration
	// Memory is qemu's -m value; default DefaultMemory.
	Memory string
	// Files are extra host files (absolute paths) copied to the same path in the guest.
	Files []string
	// GuestFiles are extra host files copied to another path in the guest (guest path →
	// host path), for files whose host path the harness itself uses in the guest (a
	// checkout under /tmp, which is a fresh tmpfs there).
	GuestFiles map[string]string
	// Modules are extra kernel modules (by name) loaded after the default set.
	Modules []string
	// Net, when set, gives the guest a virtio NIC on qemu's user-mode network: eth0 with
	// GuestAddr/24, and one TCP port on the host's 127.0.0.1 forwarded to a guest port.
	// The network is restricted: the guest reaches nothing outside the VM, not even the host.
	Net *Net
	// Guest names the function (registered with GuestMain) a VM made by Start runs in the
	// guest. Run ignores it: its guest runs the test.
	Guest string
	// SSH runs OpenSSH's sshd in the guest (needs Net).
	SSH *SSH
	// Init is a static program (host path) to boot as /init instead of the package's test
	// binary, for Start from a package whose TestMain cannot call Main: InitProgram returns
	// vmtest's own, which runs the guest functions registered in this package (the sshd-only
	// guest). The package's test binary then is not built and Main need not be called.
	Init string
}

// Net is the guest's network: one host port on 127.0.0.1 forwarded to a guest TCP port.
type Net struct {
	// GuestPort is the guest port connections to HostPort arrive at (e.g. 22 for sshd).
	GuestPort int
	// HostPort is the port on 127.0.0.1; 0 picks a free one when the VM starts (VM.Addr
	// reports it). With Run, which blocks while the guest runs, choose it with FreePort so a
	// goroutine of the host test can connect.
	HostPort int
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

func (o Options) memory() string {
	if o.Memory != "" {
		return o.Memory
	}
	return DefaultMemory
}

// validate checks what would otherwise fail obscurely in qemu or on the kernel command line.
func (o Options) validate() error {
	for i, d := range o.Disks {
		if d.Path == "" {
			return fmt.Errorf("vmtest: disk %d: empty Path", i)
		}
		if len(d.NVMeSerial) > 20 {
			return fmt.Errorf("vmtest: disk %d: NVMe serial %q longer than 20 characters", i, d.NVMeSerial)
		}
		if !cmdlineSafe(d.NVMeSerial) || strings.ContainsAny(d.NVMeSerial, ",:") {
			return fmt.Errorf("vmtest: disk %d: NVMe serial %q: only printable ASCII without spaces, quotes, commas or colons", i, d.NVMeSerial)
		}
	}
	if n := o.Net; n != nil {
		if n.GuestPort < 1 || n.GuestPort > 65535 {
			return fmt.Errorf("vmtest: Net.GuestPort %d: want 1…65535", n.GuestPort)
		}
		if n.HostPort < 0 || n.HostPort > 65535 {
			return fmt.Errorf("vmtest: Net.HostPort %d: want 0 (any) or 1…65535", n.HostPort)
		}
	}
	if o.SSH != nil && o.Net == nil {
		return fmt.Errorf("vmtest: Options.SSH needs Options.Net (GuestPort 22)")
	}
	for k, v := range o.Env {
		if !validEnvName(k) {
			return fmt.Errorf("vmtest: Env name %q: want [A-Za-z_][A-Za-z0-9_]*", k)
		}
		if strings.HasPrefix(k, envMarker) {
			return fmt.Errorf("vmtest: Env name %q: the %s* names belong to the harness", k, envMarker)
		}
		if !cmdlineSafe(v) {
			return fmt.Errorf("vmtest: Env %s: value must be printable ASCII without spaces or double quotes", k)
		}
	}
	return nil
}

func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// cmdlineSafe reports whether s survives the kernel's command-line splitting unchanged: the
// kernel splits on its isspace(), which includes Latin-1 0xA0 (a byte inside many UTF-8
// sequences), and interprets double quotes.
func cmdlineSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '"' {
			return false
		}
	}
	return true
}

// diskSerial is the serial a disk gets in qemu: the NVMe serial, or a generated virtio one.
func diskSerial(i int, d Disk) string {
	if d.NVMeSerial != "" {
		return d.NVMeSerial
	}
	return "vmtest-disk-" + strconv.Itoa(i)
}

// disksEnv encodes the disks for the guest: "nvme:SERIAL" or "virtio:SERIAL", comma-separated.
func disksEnv(disks []Disk) string {
	parts := make([]string, len(disks))
	for i, d := range disks {
		kind := "virtio"
		if d.NVMeSerial != "" {
			kind = "nvme"
		}
		parts[i] = kind + ":" + diskSerial(i, d)
	}
	return strings.Join(parts, ",")
}

// diskFallbackName is the device name a disk gets from enumeration order alone: NVMe disks
// are nvme0n1, nvme1n1… in the order they appear among the NVMe disks (one controller each,
// probed in PCI order); virtio disks are vda, vdb… in their own order.
func diskFallbackName(kinds []string, i int) string {
	n := 0
	for j := 0; j < i; j++ {
		if kinds[j] == kinds[i] {
			n++
		}
	}
	if kinds[i] == "nvme" {
		return fmt.Sprintf("nvme%dn1", n)
	}
	name := ""
	for n++; n > 0; n = (n - 1) / 26 { // vda … vdz, vdaa … like the kernel's sd/vd naming
		name = string(rune('a'+(n-1)%26)) + name
	}
	return "vd" + name
}

// guestDisk resolves disk i from the encoded disk list by serial in sysfs, falling back to the
// enumeration-order name when the serial is not (yet) visible.
func guestDisk(env, sysBlock string, i int) string {
	entries := strings.Split(env, ",")
	if env == "" || i < 0 || i >= len(entries) {
		panic(fmt.Sprintf("vmtest: GuestDisk(%d): the VM has %d disks", i, len(strings.FieldsFunc(env, func(r rune) bool { return r == ',' }))))
	}
	kinds := make([]string, len(entries))
	serials := make([]string, len(entries))
	for j, e := range entries {
		kinds[j], serials[j], _ = strings.Cut(e, ":")
	}
	if name := findBySerial(sysBlock, serials[i]); name != "" {
		return "/dev/" + name
	}
	return "/dev/" + diskFallbackName(kinds, i)
}

// findBySerial returns the block device under sysBlock (/sys/block) whose serial is serial.
// virtio-blk exposes it as <dev>/serial, NVMe as <dev>/device/serial (space-padded).
func findBySerial(sysBlock, serial string) string {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return ""
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		for _, f := range []string{"serial", "device/serial"} {
			b, err := os.ReadFile(filepath.Join(sysBlock, n, f))
			if err == nil && strings.TrimSpace(string(b)) == serial {
				return n
			}
		}
	}
	return ""
}

// GuestDisk returns the guest device path of opts.Disks[i] ("/dev/vda", "/dev/nvme0n1", …).
// Disks are found by their serial in sysfs, so mixing NVMe and virtio disks is safe; when a
// serial is not visible the enumeration-order name is returned (NVMe: nvme0n1, nvme1n1… in
// order among the NVMe disks; virtio: vda, vdb… in order among the virtio disks). It is
// meaningful only in the guest and panics elsewhere or when i is out of range.
func GuestDisk(i int) string {
	if !InVM() {
		panic("vmtest: GuestDisk called outside the VM")
	}
	return guestDisk(os.Getenv(envDisks), "/sys/block", i)
}

// FreePort returns a TCP port that is free on 127.0.0.1 at the time of the call, for
// Net.HostPort.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// NewDiskImage creates a sparse raw disk image of size bytes in t.TempDir() and returns its
// path, for use as Disk.Path. Read it back on the host after Run returns to get results out of
// the guest.
func NewDiskImage(t testing.TB, size int64) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "disk-*.img")
	if err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	return f.Name()
}
