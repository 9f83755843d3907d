package ebs

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// nvmeIoctlAdminCmd is NVME_IOCTL_ADMIN_CMD: _IOWR('N', 0x41, struct nvme_passthru_cmd).
const nvmeIoctlAdminCmd = 0xC0484E41

// nvmePassthruCmd mirrors struct nvme_passthru_cmd from <linux/nvme_ioctl.h> (72 bytes).
type nvmePassthruCmd struct {
	Opcode      uint8
	Flags       uint8
	Rsvd1       uint16
	NSID        uint32
	Cdw2        uint32
	Cdw3        uint32
	Metadata    uint64
	Addr        uint64
	MetadataLen uint32
	DataLen     uint32
	Cdw10       uint32
	Cdw11       uint32
	Cdw12       uint32
	Cdw13       uint32
	Cdw14       uint32
	Cdw15       uint32
	TimeoutMS   uint32
	Result      uint32
}

var _ [72 - unsafe.Sizeof(nvmePassthruCmd{})]struct{}
var _ [unsafe.Sizeof(nvmePassthruCmd{}) - 72]struct{}

// IdentifyController sends the NVMe admin command Identify (opcode 0x06, CNS 1 = controller)
// to the device node and returns the 4096-byte answer. Needs read access to the node
// (root, normally).
func IdentifyController(devPath string) ([]byte, error) {
	f, err := os.Open(devPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, IdentifySize)
	cmd := nvmePassthruCmd{
		Opcode:  0x06,
		Addr:    uint64(uintptr(unsafe.Pointer(&buf[0]))),
		DataLen: IdentifySize,
		Cdw10:   1,
	}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), nvmeIoctlAdminCmd, uintptr(unsafe.Pointer(&cmd)))
	runtime.KeepAlive(buf)
	if errno != 0 {
		return nil, fmt.Errorf("%s: NVMe identify controller: %w", devPath, errno)
	}
	return buf, nil
}
