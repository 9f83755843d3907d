//go:build !linux

package luks

// availableMemoryKiB has no portable source; the 4 GiB ceiling alone applies there.
func availableMemoryKiB() (uint64, bool) { return 0, false }
