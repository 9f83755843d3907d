package vmtest

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Guest paths shared by the host (which builds the archive) and the guest (which reads it).
const (
	guestModuleDir   = "/modules"
	guestModuleOrder = "/modules/order"
)

// initramfsSpec says what goes into one guest initramfs.
type initramfsSpec struct {
	Init     string      // host path of the static test binary, becomes /init
	Modules  []moduleRef // in load order
	Programs []string    // absolute host paths of tools, placed at the same path in the guest
	Files    []string    // absolute host paths of extra files (config, dlopen'd libraries)
	// GuestFiles are extra files placed at another guest path: guest path → host path.
	GuestFiles map[string]string
	// Gzip compresses the archive. Off by default: under TCG the kernel's inflate of a
	// 10–20 MB image costs about two seconds of boot, while qemu loads an uncompressed
	// image with a plain copy.
	Gzip bool
}

// moduleRef is one kernel module to load in the guest.
type moduleRef struct {
	Name     string // normalised name
	Path     string // host path of the .ko
	Optional bool   // ENODEV tolerated in the guest
}

// resolveTools turns tool names into absolute host paths (exec.LookPath for bare names).
func resolveTools(tools []string) ([]string, error) {
	var out []string
	for _, tool := range tools {
		p := tool
		if !filepath.IsAbs(tool) {
			var err error
			if p, err = exec.LookPath(tool); err != nil {
				return nil, fmt.Errorf("tool %s: %w", tool, err)
			}
			if p, err = filepath.Abs(p); err != nil {
				return nil, fmt.Errorf("tool %s: %w", tool, err)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// toolExtras returns files some tools load at run time without DT_NEEDED: cryptsetup's
// OpenSSL backend loads the "legacy" provider (ripemd160, whirlpool) with dlopen, glibc
// dlopens libgcc_s for thread cancellation, mke2fs reads its configuration.
func toolExtras(programs []string) []string {
	var out []string
	add := func(p string) {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	if len(programs) > 0 {
		add("/lib/x86_64-linux-gnu/libgcc_s.so.1")
	}
	for _, p := range programs {
		switch base := filepath.Base(p); {
		case base == "cryptsetup" || base == "veritysetup" || base == "integritysetup":
			add("/usr/lib/x86_64-linux-gnu/ossl-modules/legacy.so")
		case base == "mke2fs" || strings.HasPrefix(base, "mkfs.ext"):
			add("/etc/mke2fs.conf")
		}
	}
	return out
}

// writeInitramfs writes the newc archive for spec to w.
func writeInitramfs(w io.Writer, spec initramfsSpec) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var zw *gzip.Writer
	var c *cpioWriter
	if spec.Gzip {
		zw, _ = gzip.NewWriterLevel(bw, gzip.BestSpeed) // error only for invalid levels
		c = newCPIOWriter(zw)
	} else {
		c = newCPIOWriter(bw)
	}

	for _, d := range []string{"dev", "proc", "sys", "run", "run/cryptsetup", "tmp", "mnt", "etc", "root", "var/tmp", "usr/bin", "usr/sbin"} {
		perm := uint32(0o755)
		if d == "tmp" || d == "var/tmp" {
			perm = 0o1777
		}
		_ = c.Dir(d, perm)
	}
	// The kernel opens /dev/console for init's stdio before devtmpfs is mounted.
	_ = c.CharDev("dev/console", 0o600, 5, 1)
	_ = c.CharDev("dev/null", 0o666, 1, 3)
	// Mirror a merged /usr (bin → usr/bin …) so "#!/bin/sh" and the loader's /lib64 path
	// resolve as on the host; files are stored under their canonical directory.
	for _, d := range []string{"bin", "sbin", "lib", "lib64", "lib32", "libx32"} {
		if target, err := os.Readlink("/" + d); err == nil {
			_ = c.Symlink(d, target)
		}
	}
	_ = c.Symlink("etc/mtab", "/proc/self/mounts")
	// sshd's privilege separation runs as the sshd user.
	_ = c.Bytes("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"))
	_ = c.Bytes("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))

	if err := addHostFile(c, "init", spec.Init, 0o755); err != nil {
		return err
	}

	var order strings.Builder
	for i, m := range spec.Modules {
		name := fmt.Sprintf("%02d-%s.ko", i, m.Name)
		if err := addHostFile(c, filepath.Join(guestModuleDir, name), m.Path, 0o644); err != nil {
			return err
		}
		opt := ""
		if m.Optional {
			opt = " optional"
		}
		fmt.Fprintf(&order, "%s%s\n", name, opt)
	}
	_ = c.Bytes(guestModuleOrder, 0o644, []byte(order.String()))

	libs, err := sharedLibs(spec.Programs, systemLibDirs())
	if err != nil {
		return err
	}
	extras := toolExtras(spec.Programs)
	extraLibs, err := sharedLibs(extras, systemLibDirs())
	if err != nil {
		return err
	}
	files := map[string]string{} // guest path → host path
	for _, list := range [][]string{spec.Programs, libs, extras, extraLibs, spec.Files} {
		for _, p := range list {
			if !filepath.IsAbs(p) {
				return fmt.Errorf("initramfs: %s: not an absolute path", p)
			}
			g := guestPath(p)
			if guestReserved(g) {
				return fmt.Errorf("initramfs: %s: would shadow a path the harness uses", p)
			}
			if _, ok := files[g]; !ok {
				files[g] = p
			}
		}
	}
	for g, p := range spec.GuestFiles {
		if !filepath.IsAbs(g) || !filepath.IsAbs(p) {
			return fmt.Errorf("initramfs: %s → %s: not absolute paths", p, g)
		}
		g = filepath.Clean(g)
		if guestReserved(g) {
			return fmt.Errorf("initramfs: %s: would shadow a path the harness uses", g)
		}
		if _, ok := files[g]; ok {
			return fmt.Errorf("initramfs: %s: named twice", g)
		}
		files[g] = p
	}
	names := make([]string, 0, len(files))
	for g := range files {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		if err := addHostFile(c, g, files[g], 0); err != nil {
			return err
		}
	}

	if err := c.Close(); err != nil {
		return err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// guestPath is where the host file p goes in the guest: its directory with symlinks resolved
// (so /lib/x86_64-linux-gnu/libc.so.6 lands in /usr/lib/… on a merged-/usr host) and its own
// name kept (mkfs.ext4 must stay mkfs.ext4 even though it links to mke2fs: the name selects
// the file system type).
func guestPath(p string) string {
	d, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return filepath.Clean(p)
	}
	return filepath.Join(d, filepath.Base(p))
}

// guestReserved reports whether a guest path belongs to the harness or the mounts it makes.
func guestReserved(p string) bool {
	p = filepath.Clean(p)
	for _, r := range []string{"/init", guestModuleDir, "/proc", "/sys", "/dev", "/tmp", "/run"} {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// addHostFile copies the host file src (symlinks followed) to name in the archive. perm 0 keeps
// the host file's permission bits.
func addHostFile(c *cpioWriter, name, src string, perm uint32) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("initramfs: %s: not a regular file", src)
	}
	if perm == 0 {
		perm = uint32(st.Mode().Perm())
	}
	if err := c.File(name, perm, st.Size(), f); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return nil
}
