package awstest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// listensOn reports whether process pid holds the socket listening on 127.0.0.1:port. A
// free port can be taken by another program (another test package's emulator, started at
// the same moment) between FreePort and the emulator's bind; that program would then answer
// the start-up probe, and the tests would run against a stranger while our emulator has
// exited. The listening socket's inode (/proc/net/tcp) must be among pid's descriptors.
func listensOn(pid, port int) (bool, error) {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false, err
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	inode := ""
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 10 && f[1] == want && f[3] == "0A" { // 0A = TCP_LISTEN
			inode = f[9]
			break
		}
	}
	if inode == "" {
		return false, nil
	}
	fds, err := os.ReadDir(filepath.Join("/proc", fmt.Sprint(pid), "fd"))
	if err != nil {
		return false, err
	}
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc", fmt.Sprint(pid), "fd", fd.Name())); err == nil && l == "socket:["+inode+"]" {
			return true, nil
		}
	}
	return false, nil
}
