package vmtest_test

import (
	"testing"

	"github.com/cloudluks/cloudluks/internal/vmtest"
)

// TestMain hands the binary to the harness: on the host it runs the tests, as the VM's init it
// sets the guest up first.
func TestMain(m *testing.M) { vmtest.Main(m) }
