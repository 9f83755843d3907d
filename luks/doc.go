// Package luks implements LUKS1, the Linux Unified Key Setup on-disk format, version 1
// (specification 1.2.3, docs/on-disk-format.pdf in the cryptsetup repository), so that
// images it writes and images cryptsetup 2.6 writes are interchangeable. It needs no
// cgo, no cryptsetup binary and no device-mapper.
package luks
