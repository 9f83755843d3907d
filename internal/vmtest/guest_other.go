//go:build !linux

package vmtest

import (
	"os"
	"testing"
)

// InVM reports whether the process runs inside the harness's VM; never outside Linux.
func InVM() bool { return false }

// Main runs the tests on the host: os.Exit(m.Run()), plus removal of scratch files.
func Main(m *testing.M) { os.Exit(hostMain(m)) }

// InitMain is the main function of a vmtest guest program; there is no guest outside Linux.
func InitMain() {
	os.Stderr.WriteString("vmtest: this program is the init of a vmtest VM; it does nothing elsewhere\n")
	os.Exit(2)
}
