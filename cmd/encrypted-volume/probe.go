package main

import (
	"context"
	"io"

	"github.com/cloudluks/cloudluks/internal/blkid"
)

// probeSize is how much of a device the probe looks at (see blkid.HeadSize).
const probeSize = blkid.HeadSize

var luksMagic = []byte{'L', 'U', 'K', 'S', 0xba, 0xbe}

// probe names what the start of a device holds in the words setup and status print, or ""
// when it looks unused (zeros or random data). The recognising is internal/blkid's, shared
// with gocryptsetup luksFormat.
func probe(buf []byte) string {
	return describe(blkid.ProbeBytes(buf))
}

// describe words the first signature for setup's refusal ("already holds a LUKS header").
// Blkid's ext2/ext3/ext4 are one family here: the ext4 driver mounts them all.
func describe(sigs []blkid.Signature) string {
	if len(sigs) == 0 {
		return ""
	}
	switch t := sigs[0].Type; t {
	case "crypto_LUKS":
		return "LUKS header"
	case "ext2", "ext3", "ext4", "ext4dev":
		return "ext2/3/4 filesystem"
	case "xfs", "btrfs":
		return t + " filesystem"
	case "swap":
		return "swap space"
	case "gpt":
		return "GPT partition table"
	case "dos":
		return "MBR partition table or boot sector"
	default:
		return t + " signature (blkid)"
	}
}

// probeDevice probes the device at path (r is its open handle, used when path is ""); the
// blkid program, when installed, adds the many signatures internal/blkid does not know.
func probeDevice(ctx context.Context, r io.ReaderAt, path string) (string, error) {
	if path == "" {
		sigs, err := blkid.Probe(r, -1)
		return describe(sigs), err
	}
	sigs, err := blkid.ProbeFile(ctx, path)
	return describe(sigs), err
}
