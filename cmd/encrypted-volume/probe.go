package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os/exec"
	"strings"
)

// probeSize is how much of a device probe looks at: enough for the btrfs superblock at
// 64 KiB and swap signatures for pages up to 64 KiB.
const probeSize = 0x10000 + 0x1000

var luksMagic = []byte{'L', 'U', 'K', 'S', 0xba, 0xbe}

// probe names what the start of a device holds, or returns "" when it looks unused
// (zeros or random data). It knows the signatures that matter before a format: LUKS, the
// common Linux filesystems, swap and partition tables. buf may be shorter than probeSize
// (a small device); signatures beyond its end are not looked for.
func probe(buf []byte) string {
	at := func(off int, sig []byte) bool {
		return off+len(sig) <= len(buf) && bytes.Equal(buf[off:off+len(sig)], sig)
	}
	switch {
	case at(0, luksMagic):
		return "LUKS header"
	case at(0, []byte("XFSB")):
		return "xfs filesystem"
	case at(1080, []byte{0x53, 0xef}) && ext4ish(buf):
		return "ext2/3/4 filesystem"
	case at(0x10040, []byte("_BHRfS_M")):
		return "btrfs filesystem"
	}
	for _, page := range []int{4096, 8192, 16384, 65536} {
		if at(page-10, []byte("SWAPSPACE2")) || at(page-10, []byte("SWAP-SPACE")) {
			return "swap space"
		}
	}
	switch {
	case at(512, []byte("EFI PART")):
		return "GPT partition table"
	case at(510, []byte{0x55, 0xaa}) && mbrPlausible(buf):
		return "MBR partition table or boot sector"
	}
	return ""
}

// ext4ish double-checks the ext superblock beyond its 2-byte magic, which random data
// matches once in 65536 devices: s_log_block_size (offset 24 in the superblock) is 0..6 and
// s_rev_level (76) is 0 or 1.
func ext4ish(buf []byte) bool {
	if len(buf) < 1024+80 {
		return false
	}
	sb := buf[1024:]
	return binary.LittleEndian.Uint32(sb[24:]) <= 6 && binary.LittleEndian.Uint32(sb[76:]) <= 1
}

// mbrPlausible requires the partition entries' status bytes to be 0x00 or 0x80.
func mbrPlausible(buf []byte) bool {
	for i := 0; i < 4; i++ {
		if s := buf[446+16*i]; s != 0 && s != 0x80 {
			return false
		}
	}
	return true
}

// probeDevice reads the start of the device and probes it; blkid, when installed, adds the
// many signatures this program does not know ("" when blkid finds nothing).
func probeDevice(ctx context.Context, r io.ReaderAt, path string) (string, error) {
	buf := make([]byte, probeSize)
	n, err := r.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if what := probe(buf[:n]); what != "" {
		return what, nil
	}
	if blkid, err := exec.LookPath("blkid"); err == nil && path != "" {
		cmd := exec.CommandContext(ctx, blkid, "-p", "-o", "value", "-s", "TYPE", path)
		cmd.Env = childEnv()
		out, err := cmd.Output()
		if t := strings.TrimSpace(string(out)); err == nil && t != "" {
			return t + " signature (blkid)", nil
		}
	}
	return "", nil
}
