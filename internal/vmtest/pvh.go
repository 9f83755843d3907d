package vmtest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Booting the bzImage makes SeaBIOS load it and the kernel's own decompressor unpack it, both
// under TCG: about two seconds per boot on the project's machines. The Debian cloud kernel is
// built with CONFIG_PVH, so qemu can instead start the uncompressed vmlinux ELF at its PVH
// entry point directly. The harness extracts vmlinux once (the kernel compresses it with LZ4 in
// the legacy frame format; decoded here to avoid a dependency) and falls back to the bzImage
// whenever anything about that does not fit.

// errBzImage reports a bzImage the extractor cannot handle.
var errBzImage = errors.New("bzImage")

// bzPayload returns the compressed kernel inside a bzImage (boot protocol ≥ 2.08: setup header
// fields payload_offset at 0x248 and payload_length at 0x24c, relative to the protected-mode
// code that starts after the setup sectors).
func bzPayload(bz []byte) ([]byte, error) {
	if len(bz) < 0x250 || string(bz[0x202:0x206]) != "HdrS" {
		return nil, fmt.Errorf("%w: no setup header", errBzImage)
	}
	if v := binary.LittleEndian.Uint16(bz[0x206:]); v < 0x208 {
		return nil, fmt.Errorf("%w: boot protocol %#x has no payload fields", errBzImage, v)
	}
	setupSects := int(bz[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	start := (setupSects + 1) * 512
	off := int(binary.LittleEndian.Uint32(bz[0x248:]))
	n := int(binary.LittleEndian.Uint32(bz[0x24c:]))
	if off < 0 || n < 0 || start+off < start || start+off+n > len(bz) || start+off+n < start {
		return nil, fmt.Errorf("%w: payload %d+%d outside the %d-byte image", errBzImage, off, n, len(bz))
	}
	return bz[start+off : start+off+n], nil
}

const (
	lz4LegacyMagic    = 0x184C2102
	lz4LegacyBlockMax = 8 << 20 // uncompressed bytes per legacy block
)

// lz4LegacyDecode decodes an LZ4 legacy frame (as made by `lz4 -l`, kernel payloads carry a
// 4-byte size trailer after it) into at most limit bytes.
func lz4LegacyDecode(src []byte, limit int) ([]byte, error) {
	if len(src) < 4 || binary.LittleEndian.Uint32(src) != lz4LegacyMagic {
		return nil, fmt.Errorf("%w: not an LZ4 legacy frame", errBzImage)
	}
	src = src[4:]
	var out []byte
	for len(src) >= 4 {
		n := binary.LittleEndian.Uint32(src)
		if n == lz4LegacyMagic { // concatenated frames
			src = src[4:]
			continue
		}
		if int64(n) > int64(len(src)-4) {
			break // the kernel's size trailer (or garbage) after the last block
		}
		block := src[4 : 4+n]
		src = src[4+n:]
		var err error
		if out, err = lz4Block(out, block, limit); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty LZ4 frame", errBzImage)
	}
	return out, nil
}

// lz4Block appends the decoded LZ4 block to dst; matches may reach back into earlier output.
func lz4Block(dst, src []byte, limit int) ([]byte, error) {
	bad := func(what string) error { return fmt.Errorf("%w: corrupt LZ4 block: %s", errBzImage, what) }
	blockStart := len(dst)
	i := 0
	readLen := func(n int) (int, error) {
		if n != 15 {
			return n, nil
		}
		for {
			if i >= len(src) {
				return 0, bad("length runs past the block")
			}
			b := src[i]
			i++
			n += int(b)
			if n > limit {
				return 0, bad("length beyond the limit")
			}
			if b != 255 {
				return n, nil
			}
		}
	}
	for i < len(src) {
		token := src[i]
		i++
		lit, err := readLen(int(token >> 4))
		if err != nil {
			return nil, err
		}
		if lit > len(src)-i {
			return nil, bad("literals run past the block")
		}
		if len(dst)+lit > limit || len(dst)-blockStart+lit > lz4LegacyBlockMax {
			return nil, bad("output beyond the limit")
		}
		dst = append(dst, src[i:i+lit]...)
		i += lit
		if i == len(src) {
			break // the last sequence has literals only
		}
		if i+2 > len(src) {
			return nil, bad("truncated match offset")
		}
		off := int(binary.LittleEndian.Uint16(src[i:]))
		i += 2
		if off == 0 || off > len(dst) {
			return nil, bad("match offset out of range")
		}
		ml, err := readLen(int(token & 15))
		if err != nil {
			return nil, err
		}
		ml += 4
		if len(dst)+ml > limit || len(dst)-blockStart+ml > lz4LegacyBlockMax {
			return nil, bad("output beyond the limit")
		}
		pos := len(dst) - off
		for k := 0; k < ml; k++ { // byte by byte: the match may overlap its own output
			dst = append(dst, dst[pos+k])
		}
	}
	return dst, nil
}

// maxVmlinux bounds the extracted kernel (the 6.1 cloud vmlinux is about 53 MB).
const maxVmlinux = 512 << 20

// extractVmlinux returns the uncompressed kernel ELF inside a bzImage.
func extractVmlinux(bz []byte) ([]byte, error) {
	payload, err := bzPayload(bz)
	if err != nil {
		return nil, err
	}
	v, err := lz4LegacyDecode(payload, maxVmlinux)
	if err != nil {
		return nil, err
	}
	// The kernel build appends the uncompressed size to the compressed data.
	if want := binary.LittleEndian.Uint32(payload[len(payload)-4:]); int64(want) != int64(len(v)) {
		return nil, fmt.Errorf("%w: decoded %d bytes, the image says %d", errBzImage, len(v), want)
	}
	if !bytes.HasPrefix(v, []byte(elf.ELFMAG)) {
		return nil, fmt.Errorf("%w: payload is not an ELF file", errBzImage)
	}
	return v, nil
}

// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY, the note qemu looks for to boot PVH.
const xenElfnotePhys32Entry = 18

// hasPVHEntry reports whether the ELF file at path carries a PVH entry point note.
func hasPVHEntry(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return false
		}
		for len(b) >= 12 {
			nameSz := int(binary.LittleEndian.Uint32(b))
			descSz := int(binary.LittleEndian.Uint32(b[4:]))
			typ := binary.LittleEndian.Uint32(b[8:])
			nameEnd := 12 + (nameSz+3)&^3
			end := nameEnd + (descSz+3)&^3
			if nameSz < 0 || descSz < 0 || end > len(b) || end < 12 {
				break
			}
			if typ == xenElfnotePhys32Entry && bytes.Equal(bytes.TrimRight(b[12:12+nameSz], "\x00"), []byte("Xen")) {
				return true
			}
			b = b[end:]
		}
	}
	return false
}

// bootImage returns the kernel image qemu should boot for k: an extracted PVH vmlinux, cached
// beside the bzImage (boot/vmlinux-<release>) or, when that directory is read-only, in the
// scratch directory; else the bzImage itself. Callers hold host.mu.
func bootImage(k kernel) string {
	if p, ok := host.vmlinux[k.Vmlinuz]; ok {
		return p
	}
	if host.vmlinux == nil {
		host.vmlinux = map[string]string{}
	}
	choice := k.Vmlinuz
	defer func() { host.vmlinux[k.Vmlinuz] = choice }()

	beside := filepath.Join(filepath.Dir(k.Vmlinuz), "vmlinux-"+k.Release)
	if hasPVHEntry(beside) {
		choice = beside
		return choice
	}
	bz, err := os.ReadFile(k.Vmlinuz)
	if err != nil {
		return choice
	}
	v, err := extractVmlinux(bz)
	if err != nil {
		return choice
	}
	p, err := writeAtomic(filepath.Dir(k.Vmlinuz), "vmlinux-"+k.Release, v)
	if err != nil { // read-only kernel directory: one copy per test process
		d, serr := scratch()
		if serr != nil {
			return choice
		}
		if p, err = writeAtomic(d, "vmlinux-"+k.Release, v); err != nil {
			return choice
		}
	}
	if hasPVHEntry(p) {
		choice = p
	} else {
		os.Remove(p)
	}
	return choice
}

// writeAtomic writes data to dir/name through a temporary file and a rename, so concurrent
// test processes never see a partial kernel.
func writeAtomic(dir, name string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	p := filepath.Join(dir, name)
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return p, nil
}
