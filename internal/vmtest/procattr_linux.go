//go:build linux

package vmtest

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes qemu die with the test process: a `go test -timeout` panic or a ^C must
// not leave a VM running.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
