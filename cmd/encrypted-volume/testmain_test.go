package main

import (
	"testing"

	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/cloudluks/cloudluks/internal/vmtest"
)

// testMain boots the guest side when this test binary runs as init in the VM harness.
func testMain(m *testing.M) { vmtest.Main(m) }

func lookTool(t *testing.T, name, hint string) string {
	t.Helper()
	return testenv.LookPath(t, name, hint)
}
