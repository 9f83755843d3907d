package vmtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// The initramfs is a "newc" cpio archive (Documentation/driver-api/early-userspace/
// buffer-format.rst): each member is a 110-byte ASCII header — the magic "070701" and 13
// eight-digit hex fields — followed by the NUL-terminated name, padding to a multiple of 4,
// the data, padding to a multiple of 4. The archive ends with a member named "TRAILER!!!".
// The kernel does not create missing parent directories, so the writer emits them first.

const (
	cpioMagic   = "070701"
	cpioTrailer = "TRAILER!!!"
	cpioHdrLen  = 110

	modeDir  = 0o040000
	modeFile = 0o100000
	modeLink = 0o120000
	modeChr  = 0o020000
	modeType = 0o170000
)

// cpioHeader holds the fields of one newc header that the harness uses.
type cpioHeader struct {
	Name      string
	Mode      uint32 // type bits | permission bits
	Size      int64
	Ino       uint32
	NLink     uint32
	RDevMajor uint32
	RDevMinor uint32
}

// cpioWriter writes a newc archive. Errors are sticky: after the first failure every call
// returns it, so callers may check only Close.
type cpioWriter struct {
	w    io.Writer
	ino  uint32
	dirs map[string]bool
	seen map[string]bool
	err  error
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, dirs: map[string]bool{".": true, "": true}, seen: map[string]bool{}}
}

// maxCPIONameSize bounds a member name with its NUL, as the kernel's initramfs unpacker
// does (PATH_MAX): the reader refuses larger names, so the writer must not produce them.
const maxCPIONameSize = 4096

// cleanName turns "/a/b" or "a//b/" into "a/b"; the empty name, names that leave the
// archive root and names longer than the kernel accepts are refused.
func cleanName(name string) (string, error) {
	n := path.Clean("/" + name)
	if n == "/" {
		return "", fmt.Errorf("cpio: empty member name %q", name)
	}
	n = strings.TrimPrefix(n, "/")
	if strings.ContainsRune(n, 0) {
		return "", fmt.Errorf("cpio: NUL in member name %q", name)
	}
	if len(n)+1 > maxCPIONameSize {
		return "", fmt.Errorf("cpio: member name of %d bytes is longer than the %d the kernel accepts", len(n), maxCPIONameSize-1)
	}
	return n, nil
}

func (c *cpioWriter) header(h cpioHeader) error {
	if c.err != nil {
		return c.err
	}
	if h.Size < 0 || h.Size > 0xffffffff {
		c.err = fmt.Errorf("cpio: %s: size %d does not fit the newc format", h.Name, h.Size)
		return c.err
	}
	if h.Ino == 0 && h.Name != cpioTrailer {
		c.ino++
		h.Ino = c.ino
	}
	if h.NLink == 0 {
		h.NLink = 1
	}
	var b strings.Builder
	b.WriteString(cpioMagic)
	for _, v := range []uint32{
		h.Ino, h.Mode, 0 /* uid */, 0 /* gid */, h.NLink, 0, /* mtime: reproducible archives */
		uint32(h.Size), 0, 0 /* dev */, h.RDevMajor, h.RDevMinor,
		uint32(len(h.Name) + 1), 0, /* check */
	} {
		fmt.Fprintf(&b, "%08x", v)
	}
	b.WriteString(h.Name)
	b.WriteByte(0)
	for (b.Len())%4 != 0 {
		b.WriteByte(0)
	}
	_, c.err = io.WriteString(c.w, b.String())
	return c.err
}

func (c *cpioWriter) pad(n int64) error {
	if c.err != nil {
		return c.err
	}
	if r := n % 4; r != 0 {
		_, c.err = c.w.Write(make([]byte, 4-r))
	}
	return c.err
}

// parents emits the directories leading to name that were not written yet.
func (c *cpioWriter) parents(name string) error {
	d := path.Dir(name)
	if c.dirs[d] {
		return nil
	}
	if err := c.parents(d); err != nil {
		return err
	}
	c.dirs[d] = true
	c.seen[d] = true
	return c.header(cpioHeader{Name: d, Mode: modeDir | 0o755, NLink: 2})
}

func (c *cpioWriter) begin(name string) (string, error) {
	if c.err != nil {
		return "", c.err
	}
	n, err := cleanName(name)
	if err != nil {
		c.err = err
		return "", err
	}
	if c.seen[n] {
		// A second member with the same name would silently replace the first in the guest.
		c.err = fmt.Errorf("cpio: duplicate member %q", n)
		return "", c.err
	}
	c.seen[n] = true
	return n, c.parents(n)
}

// Dir adds a directory (and its parents). Adding an existing directory is a no-op.
func (c *cpioWriter) Dir(name string, perm uint32) error {
	n, err := cleanName(name)
	if err != nil {
		c.err = err
		return err
	}
	if c.dirs[n] {
		return c.err
	}
	if _, err := c.begin(n); err != nil {
		return err
	}
	c.dirs[n] = true
	return c.header(cpioHeader{Name: n, Mode: modeDir | perm&0o7777, NLink: 2})
}

// File adds a regular file of size bytes read from r.
func (c *cpioWriter) File(name string, perm uint32, size int64, r io.Reader) error {
	n, err := c.begin(name)
	if err != nil {
		return err
	}
	if err := c.header(cpioHeader{Name: n, Mode: modeFile | perm&0o7777, Size: size}); err != nil {
		return err
	}
	m, err := io.CopyN(c.w, r, size)
	if err != nil {
		c.err = fmt.Errorf("cpio: %s: wrote %d of %d bytes: %w", n, m, size, err)
		return c.err
	}
	return c.pad(size)
}

// Bytes adds a regular file with the given content.
func (c *cpioWriter) Bytes(name string, perm uint32, data []byte) error {
	return c.File(name, perm, int64(len(data)), bytes.NewReader(data))
}

// Symlink adds a symbolic link name → target.
func (c *cpioWriter) Symlink(name, target string) error {
	n, err := c.begin(name)
	if err != nil {
		return err
	}
	if err := c.header(cpioHeader{Name: n, Mode: modeLink | 0o777, Size: int64(len(target))}); err != nil {
		return err
	}
	if _, err := io.WriteString(c.w, target); err != nil {
		c.err = err
		return err
	}
	return c.pad(int64(len(target)))
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(name string, perm, major, minor uint32) error {
	n, err := c.begin(name)
	if err != nil {
		return err
	}
	return c.header(cpioHeader{Name: n, Mode: modeChr | perm&0o7777, RDevMajor: major, RDevMinor: minor})
}

// Close writes the trailer. It does not close the underlying writer.
func (c *cpioWriter) Close() error {
	if c.err != nil {
		return c.err
	}
	if err := c.header(cpioHeader{Name: cpioTrailer, NLink: 1}); err != nil {
		return err
	}
	c.err = errors.New("cpio: archive closed")
	return nil
}

// errCPIOFormat reports a malformed archive to readCPIO's callers.
var errCPIOFormat = errors.New("cpio: malformed newc archive")

// readCPIO reads a newc archive and calls fn for each member before the trailer, with a
// reader for its data. It exists so the writer's output can be checked without a host cpio.
func readCPIO(r io.Reader, fn func(h cpioHeader, data io.Reader) error) error {
	var off int64
	skip := func(n int64) error {
		m, err := io.CopyN(io.Discard, r, n)
		off += m
		return err
	}
	for {
		var hdr [cpioHdrLen]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return fmt.Errorf("%w: header at %d: %v", errCPIOFormat, off, err)
		}
		off += cpioHdrLen
		if string(hdr[:6]) != cpioMagic {
			return fmt.Errorf("%w: bad magic %q at %d", errCPIOFormat, hdr[:6], off-cpioHdrLen)
		}
		var f [13]uint32
		for i := range f {
			var v uint32
			for _, ch := range hdr[6+8*i : 6+8*i+8] {
				var d byte
				switch {
				case ch >= '0' && ch <= '9':
					d = ch - '0'
				case ch >= 'a' && ch <= 'f':
					d = ch - 'a' + 10
				case ch >= 'A' && ch <= 'F':
					d = ch - 'A' + 10
				default:
					return fmt.Errorf("%w: bad hex digit %q in header at %d", errCPIOFormat, ch, off-cpioHdrLen)
				}
				v = v<<4 | uint32(d)
			}
			f[i] = v
		}
		nameSize := int64(f[11])
		if nameSize < 1 || nameSize > maxCPIONameSize {
			return fmt.Errorf("%w: name size %d at %d", errCPIOFormat, nameSize, off)
		}
		name := make([]byte, nameSize)
		if _, err := io.ReadFull(r, name); err != nil {
			return fmt.Errorf("%w: name at %d: %v", errCPIOFormat, off, err)
		}
		off += nameSize
		if name[nameSize-1] != 0 {
			return fmt.Errorf("%w: name not NUL-terminated at %d", errCPIOFormat, off)
		}
		if err := skip((4 - off%4) % 4); err != nil {
			return fmt.Errorf("%w: %v", errCPIOFormat, err)
		}
		h := cpioHeader{
			Name: string(name[:nameSize-1]), Ino: f[0], Mode: f[1], NLink: f[4],
			Size: int64(f[6]), RDevMajor: f[9], RDevMinor: f[10],
		}
		if h.Name == cpioTrailer {
			return nil
		}
		lr := &io.LimitedReader{R: r, N: h.Size}
		if err := fn(h, lr); err != nil {
			return err
		}
		if err := skip(lr.N); err != nil {
			return fmt.Errorf("%w: data of %s: %v", errCPIOFormat, h.Name, err)
		}
		off += h.Size - lr.N
		if err := skip((4 - off%4) % 4); err != nil {
			return fmt.Errorf("%w: %v", errCPIOFormat, err)
		}
	}
}
