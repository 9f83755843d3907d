package grubconf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

const maxSymlinks = 40

// resolved is a file found under the root: the name asked for, the symlinks followed and
// the final (non-symlink) path, all root-relative and absolute-looking ("/etc/grub.conf").
type resolved struct {
	Name  string
	Chain []string // symlinks followed, in order (Name first when it is a link)
	Final string
}

// resolveIn resolves name inside root the way a chroot would: absolute link targets are
// relative to root, ".." never climbs above it. It returns fs.ErrNotExist (wrapped) when
// the final file does not exist, and ErrEscapesRoot only when root itself is unusable.
func resolveIn(root, name string) (resolved, error) {
	return resolveMode(root, name, false)
}

// resolveCreate maps name, which may not exist yet, to the root-relative path a chroot'ed
// "mkdir -p; create" would produce: symlinks in the existing part are followed inside the
// root, the missing rest is taken literally. Writing the result through hostPath never
// follows a link out of the root.
func resolveCreate(root, name string) (string, error) {
	r, err := resolveMode(root, name, true)
	if err != nil {
		return "", err
	}
	return r.Final, nil
}

func resolveMode(root, name string, create bool) (resolved, error) {
	r := resolved{Name: path.Clean("/" + name)}
	todo := splitPath(r.Name)
	cur := "/"
	links := 0
	for len(todo) > 0 {
		comp := todo[0]
		todo = todo[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, comp)
		fi, err := os.Lstat(hostPath(root, next))
		if create && (errors.Is(err, fs.ErrNotExist) || isNotDir(err)) {
			cur = path.Join(append([]string{next}, todo...)...)
			break
		}
		if err != nil {
			return r, fmt.Errorf("%s: %w", next, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		links++
		if links > maxSymlinks {
			return r, fmt.Errorf("%s: too many levels of symbolic links: %w", r.Name, fs.ErrInvalid)
		}
		target, err := os.Readlink(hostPath(root, next))
		if err != nil {
			return r, fmt.Errorf("%s: %w", next, err)
		}
		r.Chain = append(r.Chain, next)
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		todo = append(splitPath(target), todo...)
	}
	r.Final = cur
	return r, nil
}

func splitPath(p string) []string { return strings.Split(p, "/") }

// hostPath maps a clean root-relative absolute path to the host file system.
func hostPath(root, p string) string {
	return filepath.Join(root, filepath.FromSlash(path.Clean("/"+p)))
}

// readIn resolves and reads name under root. A missing file yields (zero, nil, nil).
func readIn(root, name string) (resolved, []byte, fs.FileMode, error) {
	r, err := resolveIn(root, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || isNotDir(err) {
			return r, nil, 0, nil
		}
		return r, nil, 0, err
	}
	fi, err := os.Stat(hostPath(root, r.Final))
	if err != nil {
		return r, nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return r, nil, 0, nil
	}
	b, err := readLimited(root, r.Final)
	if err != nil {
		return r, nil, 0, err
	}
	return r, b, fi.Mode().Perm(), nil
}

// MaxFileSize is the largest file grubconf reads: boot loader configurations (grub.cfg,
// menu.lst, grub.conf, BLS entries, grubenv), /etc/default/grub and its drop-ins,
// /etc/kernel/cmdline, crypttab, fstab, os-release and the other files detection looks at,
// and the undo record. Real ones are a few KiB (a grubenv block is exactly 1024 bytes); a
// larger file, e.g. a sparse or corrupt one in a mounted image, is refused with a
// *FileTooLargeError (ErrFileTooLarge) instead of being read into memory.
const MaxFileSize = 16 << 20

// readLimited reads the regular file at root-relative p, refusing files over
// MaxFileSize: first by its size, then while reading, for a file that grows meanwhile.
// An empty file gives a non-nil empty slice (nil means "no file" to the callers).
func readLimited(root, p string) ([]byte, error) {
	f, err := openBeneath(root, p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > MaxFileSize {
		return nil, &FileTooLargeError{Path: p, Size: fi.Size()}
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize {
		return nil, &FileTooLargeError{Path: p, Size: -1}
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}
