//go:build linux

package vmtest

import (
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// netWait bounds how long the guest waits for its NIC (virtio-net probes when the module loads,
// but under TCG on a busy host that can lag behind).
const netWait = 30 * time.Second

// guestIface is the NIC's name: the kernel's own (no udev renames it).
const guestIface = "eth0"

// guestNetUp brings lo and eth0 up and gives eth0 GuestAddr/24 with plain ioctls: the guest
// has no ip(8) and no DHCP client, and slirp's address plan is fixed.
func guestNetUp(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if _, err := os.Stat("/sys/class/net/" + guestIface); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %s", guestIface, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	// Bringing lo up makes the kernel add 127.0.0.1/8 itself.
	if err := ifUp(fd, "lo"); err != nil {
		return err
	}
	for _, step := range []struct {
		req  uint
		ip   net.IP
		what string
	}{
		{unix.SIOCSIFADDR, net.ParseIP(GuestAddr).To4(), "address"},
		{unix.SIOCSIFNETMASK, net.IP(net.CIDRMask(guestMask, 32)), "netmask"},
	} {
		ifr, err := unix.NewIfreq(guestIface)
		if err != nil {
			return err
		}
		if err := ifr.SetInet4Addr(step.ip); err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, step.req, ifr); err != nil {
			return fmt.Errorf("%s: setting the %s %s: %w", guestIface, step.what, step.ip, err)
		}
	}
	return ifUp(fd, guestIface)
}

// ifUp sets IFF_UP on the interface name.
func ifUp(fd int, name string) error {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: reading flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: up: %w", name, err)
	}
	return nil
}
