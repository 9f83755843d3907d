//go:build linux

package vmtest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// InVM reports whether the process is the test binary running as init in the harness's VM.
func InVM() bool { return os.Getpid() == 1 && os.Getenv(envMarker) == "1" }

// Main is called from a package's TestMain. In the guest it mounts proc, sysfs, devtmpfs and
// tmpfs, loads the kernel modules, runs m.Run(), prints the result line on the console, syncs
// and powers the VM off (it never returns: init must not exit). On the host it is
// os.Exit(m.Run()), plus removal of the harness's scratch files.
func Main(m *testing.M) {
	if !InVM() {
		os.Exit(hostMain(m))
	}
	guestMain(m)
}

// diskWait bounds how long the guest waits for its disks (NVMe namespaces are scanned
// asynchronously after the controller probe).
const diskWait = 30 * time.Second

func guestMain(m *testing.M) {
	guestBoot(func() int {
		if name := os.Getenv(envGuest); name != "" {
			return runGuestFunc(name)
		}
		return m.Run()
	})
}

// InitMain is the main function of a guest program that is not a test binary (Options.Init,
// InitProgram): in the VM it sets the guest up as Main does and runs the guest function
// Options.Guest names, then powers off. Outside the VM it says so and exits with status 2.
func InitMain() {
	if !InVM() {
		fmt.Fprintln(os.Stderr, "vmtest: this program is the init of a vmtest VM; it does nothing elsewhere")
		os.Exit(2)
	}
	guestBoot(func() int { return runGuestFunc(os.Getenv(envGuest)) })
}

// guestBoot sets the guest up, runs body and powers off with body's exit code in the result
// line.
func guestBoot(body func() int) {
	start := time.Now()
	guestSetup()
	loadGuestModules(guestModuleOrder)
	waitGuestDisks(os.Getenv(envDisks), diskWait)
	if os.Getenv(envNet) == "1" {
		if err := guestNetUp(netWait); err != nil {
			fmt.Printf("vmtest: network: %v\n", err)
		}
	}
	if os.Getenv(envSSH) == "1" {
		if err := startSSHD(); err != nil {
			fmt.Printf("vmtest: sshd: %v\n", err)
		}
	}
	up, _ := os.ReadFile("/proc/uptime")
	fmt.Printf("vmtest: guest ready in %s after init started (uptime %s s)\n",
		time.Since(start).Round(time.Millisecond), strings.Fields(string(up) + " ?")[0])
	rc := body()
	// Own line, even if the last test output did not end with a newline.
	fmt.Printf("\n%s\n", sentinelLine(os.Getenv(envNonce), rc))
	powerOff()
}

// runGuestFunc runs the registered guest function name (Start) and returns its exit code.
func runGuestFunc(name string) (rc int) {
	fn, ok := guestFunc(name)
	if !ok {
		fmt.Printf("vmtest: no guest function %q registered in this binary (GuestMain)\n", name)
		return 2
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Printf("vmtest: guest function %q panicked: %v\n", name, r)
			rc = 2
		}
	}()
	if err := fn(); err != nil {
		fmt.Printf("vmtest: guest function %q: %v\n", name, err)
		return 1
	}
	return 0
}

// guestSetup mounts the pseudo file systems and sets a usable environment. Failures are
// printed, not fatal: the tests that need the missing piece will say what broke.
func guestSetup() {
	mounts := []struct {
		fstype, target, data string
		flags                uintptr
	}{
		{"proc", "/proc", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"sysfs", "/sys", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"devtmpfs", "/dev", "mode=0755", unix.MS_NOSUID},
		{"tmpfs", "/tmp", "mode=1777", unix.MS_NOSUID | unix.MS_NODEV},
		{"tmpfs", "/run", "mode=0755", unix.MS_NOSUID | unix.MS_NODEV},
	}
	for _, mt := range mounts {
		if err := os.MkdirAll(mt.target, 0o755); err != nil {
			fmt.Printf("vmtest: mkdir %s: %v\n", mt.target, err)
		}
		if err := unix.Mount(mt.fstype, mt.target, mt.fstype, mt.flags, mt.data); err != nil {
			fmt.Printf("vmtest: mount %s on %s: %v\n", mt.fstype, mt.target, err)
		}
	}
	// udev would normally provide these.
	for _, d := range []string{"/run/cryptsetup", "/run/lock", "/dev/shm", "/dev/pts", "/dev/mapper"} {
		_ = os.MkdirAll(d, 0o755)
	}
	_ = unix.Mount("tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777")
	_ = unix.Mount("devpts", "/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0620,ptmxmode=0666")
	for link, target := range map[string]string{
		"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
	} {
		_ = os.Symlink(target, link)
	}
	for k, v := range map[string]string{
		"PATH":   "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME":   "/root",
		"TMPDIR": "/tmp",
		"LANG":   "C",
	} {
		os.Setenv(k, v)
	}
	_ = os.Chdir("/")
}

// loadGuestModules loads the modules listed in the order file with finit_module(2).
// Already loaded (EEXIST) is success; "optional" modules may fail with ENODEV (CPU feature
// missing). Anything else is printed.
func loadGuestModules(orderFile string) {
	f, err := os.Open(orderFile)
	if err != nil {
		fmt.Printf("vmtest: %v\n", err)
		return
	}
	defer f.Close()
	start, n := time.Now(), 0
	defer func() { fmt.Printf("vmtest: loaded %d modules in %s\n", n, time.Since(start).Round(time.Millisecond)) }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		optional := len(fields) > 1 && fields[1] == "optional"
		n++
		if err := finitModule(filepath.Join(filepath.Dir(orderFile), fields[0])); err != nil {
			switch {
			case errors.Is(err, unix.EEXIST):
			case optional && errors.Is(err, unix.ENODEV):
				fmt.Printf("vmtest: module %s not loaded: CPU feature missing\n", fields[0])
			default:
				fmt.Printf("vmtest: loading module %s: %v\n", fields[0], err)
			}
		}
	}
}

func finitModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.FinitModule(int(f.Fd()), "", 0)
}

// waitGuestDisks waits until every disk's serial shows up in sysfs.
func waitGuestDisks(env string, limit time.Duration) {
	if env == "" {
		return
	}
	deadline := time.Now().Add(limit)
	for _, e := range strings.Split(env, ",") {
		_, serial, _ := strings.Cut(e, ":")
		for findBySerial("/sys/block", serial) == "" {
			if time.Now().After(deadline) {
				fmt.Printf("vmtest: disk with serial %s did not appear within %s\n", serial, limit)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// powerOff flushes the console and the disks and turns the VM off. PID 1 must never exit:
// the kernel would panic ("Attempted to kill init!").
func powerOff() {
	os.Stdout.Sync()
	// tcdrain: the result line must leave the UART before the machine disappears.
	_ = unix.IoctlSetInt(int(os.Stdout.Fd()), unix.TCSBRK, 1)
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Printf("vmtest: power off: %v\n", err)
	}
	select {}
}
