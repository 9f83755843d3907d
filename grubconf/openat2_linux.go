package grubconf

import "golang.org/x/sys/unix"

// openat2Dir opens the directory rel beneath dirfd in one call, refusing any symlink and
// any escape (Linux 5.6 and later). Older kernels (ENOSYS) and seccomp filters (EPERM)
// make the caller walk component by component instead.
func openat2Dir(dirfd int, rel string) (int, error) {
	return unix.Openat2(dirfd, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
}
