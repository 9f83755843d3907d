package awstest

import "syscall"

// procAttr puts the emulator in its own process group (so the cleanup can kill a wrapper and
// what it started together) and has the kernel kill it when the test binary dies without
// running its cleanups (a -timeout panic, os.Exit, SIGKILL): otherwise the emulator would
// outlive the test and keep its port. pyenv shims exec the real program, so the signal
// reaches moto itself.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
