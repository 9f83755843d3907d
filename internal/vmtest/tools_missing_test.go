package vmtest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cloudluks/cloudluks/internal/vmtest"
)

// A VM test whose guest tool (e.g. cryptsetup) is not installed on the host skips locally
// with the install hint, like a missing qemu or kernel, instead of failing; under CI=true
// (testenv.Missing) it fails.
func TestMissingToolSkipsLocally(t *testing.T) {
	if vmtest.InVM() {
		t.Skip("host-side check")
	}
	t.Setenv("CI", "")
	var inner *testing.T
	t.Run("inner", func(t *testing.T) {
		inner = t
		vmtest.Run(t, vmtest.Options{Tools: []string{"no-such-tool-vmtest"}})
		t.Error("Run returned on the host although a tool is missing")
	})
	assert.True(t, inner.Skipped(), "a missing guest tool must skip locally")
}
