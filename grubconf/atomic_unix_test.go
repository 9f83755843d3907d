//go:build unix

package grubconf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestWalkDirRefusesSymlink covers the O_NOFOLLOW walk used where openat2 is missing
// (kernels before 5.6, non-Linux systems, seccomp filters), whatever this kernel has.
func TestWalkDirRefusesSymlink(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var/lib"), 0o755))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "var/lib/cloudluks")))
	open := func() int {
		fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		require.NoError(t, err)
		return fd
	}
	_, err := walkDir(open(), "var/lib/cloudluks/grubconf", 0o700)
	require.ErrorIs(t, err, ErrConflict)
	ents, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing made outside")

	fd, err := walkDir(open(), "var/new/dir", 0o700)
	require.NoError(t, err)
	require.NoError(t, unix.Close(fd))
	fi, err := os.Stat(filepath.Join(root, "var/new/dir"))
	require.NoError(t, err)
	assert.True(t, fi.IsDir())
}
