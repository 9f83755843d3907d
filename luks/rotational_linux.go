package luks

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// isRotational reports whether w is a rotational block device, where cryptsetup wipes
// destroyed key slots with its multi-pass pattern set (lib/utils_device.c
// device_is_rotational: regular files and anything that is not a block device count as
// non-rotational and get one random pass).
func isRotational(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return false
	}
	base := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	for _, p := range []string{base + "/queue/rotational", base + "/../queue/rotational"} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b)) == "1"
		}
	}
	return false
}
