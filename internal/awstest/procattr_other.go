//go:build !linux

package awstest

import "syscall"

// procAttr puts the emulator in its own process group so the cleanup can kill it and what
// it started together. (Only Linux can also tie its life to the test binary's.)
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
