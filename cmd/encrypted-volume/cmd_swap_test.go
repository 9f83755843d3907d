package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScratchFlagsRefused: bad input to swap and tmp is refused while parsing, with a
// message naming the flag, exit 1, before any EC2 call or local action.
func TestScratchFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"swap", "--device", "/dev/x", "--cipher", "rot13-ecb"}, "--cipher rot13-ecb"},
		{[]string{"swap", "--device", "/dev/x", "--cipher", "aes-xts-plain64", "--key-size", "100"}, "--key-size"},
		{[]string{"tmp", "--device", "/dev/x", "--cipher", "cipher_null-ecb"}, "does not encrypt"},
		{[]string{"swap", "--device", "/dev/x", "--instance-store"}, "one of --device, --instance-store, --volume-id"},
		{[]string{"swap", "--no-aws"}, "--no-aws needs"},
		{[]string{"tmp", "--device", "/dev/x", "--mount-point", "/"}, "--mount-point"},
		{[]string{"tmp", "--device", "/dev/x", "--mount-point", "tmp"}, "--mount-point"},
		{[]string{"swap", "--device", "/dev/x", "--name", "a/b"}, "--name"},
		{[]string{"swap", "--volume-id", "v-1"}, "--volume-id"},
		{[]string{"swap", "--device", "/dev/x", "extra"}, "unexpected argument"},
	} {
		h := newHarness(t, "")
		code := h.run(tc.args...)
		assert.Equal(t, exitUsage, code, "%v: %s", tc.args, h.stderr)
		assert.Contains(t, h.stderr.String(), tc.want, tc.args)
		assert.Empty(t, h.local.calls, "%v: nothing done", tc.args)
	}
}

// TestScratchNeedsKernel: without the real machine (the host tests' fake), swap says so
// instead of pretending.
func TestScratchNeedsKernel(t *testing.T) {
	h := newHarness(t, "")
	code := h.run("swap", "--device", h.dev("nvme1n1"))
	require.Equal(t, exitUsage, code)
	assert.Contains(t, h.stderr.String(), "need a real kernel")
	assert.Empty(t, h.local.calls)
}

func TestScratchHelp(t *testing.T) {
	for _, v := range []string{"swap", "tmp"} {
		h := newHarness(t, "")
		require.Equal(t, 0, h.run(v, "--help"))
		for _, f := range []string{"--instance-store", "--device", "--cipher", "--key-size", "--force", "--root"} {
			assert.Contains(t, h.stdout.String(), f[1:], v)
		}
	}
}
