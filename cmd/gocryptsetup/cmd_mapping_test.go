package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Host side of the mapping verbs: on a kernel without device-mapper (the development hosts)
// status, close and open NAME must fail exactly like cryptsetup. With device-mapper present the
// dmcrypt package's VM test (TestVMBehaviour/cli) runs this binary against real mappings.
func TestMappingVerbsWithoutDeviceMapper(t *testing.T) {
	if _, err := os.Stat("/sys/class/misc/device-mapper"); err == nil {
		t.Skip("this kernel has device-mapper; dmcrypt's TestVMBehaviour/cli covers these verbs")
	}
	cs := cryptsetup(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"status", "nm"},
		{"status", "/dev/mapper/nm"},
		{"close", "nm"},
		{"luksClose", "nm"},
		{"close", "--deferred", "nm"},
		{"close", "--cancel-deferred", "nm"},
	} {
		want := runIn(t, dir, cs, "", args...)
		got := runIn(t, dir, binPath, "", args...)
		assert.Equal(t, want.code, got.code, "%v: %s", args, got.stderr)
		assert.Equal(t, want.stdout, got.stdout, "%v", args)
		assert.Equal(t, want.stderr, got.stderr, "%v", args)
	}
}
