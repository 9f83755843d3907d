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
