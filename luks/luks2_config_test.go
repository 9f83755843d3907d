package luks

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLUKS2ConfigLikeCryptsetup: SetLabelLUKS2 and SetKeyslotPriorityLUKS2 leave the same
// bytes as cryptsetup 2.6.1's config on the same image (both copies, sequence ID one up per
// call); bad input and inactive slots fail with typed errors before anything is written.
func TestLUKS2ConfigLikeCryptsetup(t *testing.T) {
	dir := t.TempDir()
	steps := []struct {
		cs  []string
		run func(d *memDev) error
	}{
		{[]string{"--label", "data", "--subsystem", "sys"}, func(d *memDev) error { return SetLabelLUKS2(d, "data", "sys") }},
		{[]string{"--priority", "prefer", "-S", "1"}, func(d *memDev) error { return SetKeyslotPriorityLUKS2(d, 1, PriorityPrefer) }},
		{[]string{"--priority", "ignore", "-S", "0"}, func(d *memDev) error { return SetKeyslotPriorityLUKS2(d, 0, PriorityIgnore) }},
		{[]string{"--priority", "normal", "-S", "1"}, func(d *memDev) error { return SetKeyslotPriorityLUKS2(d, 1, PriorityNormal) }},
		{[]string{"--subsystem", "only"}, func(d *memDev) error { return SetLabelLUKS2(d, "", "only") }},
	}
	ours := &memDev{b: baseImage2(t)}
	p := filepath.Join(dir, "c.img")
	require.NoError(t, os.WriteFile(p, ours.b, 0o600))
	for _, st := range steps {
		mustCS(t, nil, append([]string{"config", p}, st.cs...)...)
		require.NoError(t, st.run(ours), "%v", st.cs)
		want, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, ours.b), "%v: image differs from cryptsetup's", st.cs)
	}

	before := bytes.Clone(ours.b)
	for _, c := range []struct {
		err  error
		call func() error
	}{
		{ErrKeyslotInactive, func() error { return SetKeyslotPriorityLUKS2(ours, 5, PriorityPrefer) }},
		{ErrKeyslotInactive, func() error { return SetKeyslotPriorityLUKS2(ours, -1, PriorityPrefer) }},
		{ErrInvalidParameter, func() error { return SetKeyslotPriorityLUKS2(ours, 0, 3) }},
		{ErrInvalidParameter, func() error { return SetKeyslotPriorityLUKS2(ours, 0, -1) }},
	} {
		err := c.call()
		assert.True(t, errors.Is(err, c.err), "got %v, want %v", err, c.err)
	}
	assert.True(t, bytes.Equal(before, ours.b), "a refused call wrote")

	blank := &memDev{b: make([]byte, 1<<20)}
	assert.Error(t, SetLabelLUKS2(blank, "x", ""))
	assert.Error(t, SetKeyslotPriorityLUKS2(blank, 0, PriorityPrefer))
	assert.True(t, bytes.Equal(make([]byte, 1<<20), blank.b))
}
