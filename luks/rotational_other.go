//go:build !linux

package luks

// isRotational: without sysfs, treat every device as non-rotational (one random pass).
func isRotational(w any) bool { return false }
