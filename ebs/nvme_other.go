//go:build !linux

package ebs

// IdentifyController needs the Linux NVMe admin ioctl.
func IdentifyController(devPath string) ([]byte, error) {
	return nil, ErrUnsupported
}
