package grubconf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Family groups distributions that need the same edits (boot.md §9 of the project notes).
type Family string

// Families.
const (
	// FamilyLegacySysV: Amazon Linux AMI (AL1), RHEL/CentOS 6 — GRUB 0.97, dracut 004,
	// SysV init whose crypttab handling ignores noauto.
	FamilyLegacySysV Family = "al1-rhel6"
	// FamilyGRUB2: Amazon Linux 2, RHEL/CentOS 7, Fedora < 30 — GRUB 2 without BLS.
	FamilyGRUB2 Family = "al2-rhel7"
	// FamilyBLSKernelopts: RHEL/CentOS 8, Fedora 30–33 — BLS entries with $kernelopts.
	FamilyBLSKernelopts Family = "rhel8"
	// FamilyBLS: RHEL 9+, Fedora 34+, Amazon Linux 2023 — BLS entries with literal options.
	FamilyBLS Family = "rhel9-al2023"
	// FamilyDebian: Debian, Ubuntu — GRUB 2 defaults with grub.d drop-ins, initramfs-tools.
	FamilyDebian Family = "debian"
	// FamilyUnknown: decided from the files present.
	FamilyUnknown Family = "unknown"
)

// OS is what the release files say.
type OS struct {
	ID, IDLike, VersionID, PrettyName string
	Source                            string // file the information came from
}

// Dracut is the initramfs generator generation found in the root.
type Dracut struct {
	Present bool
	Version int    // e.g. 4, 33, 59, 105; 0 = unknown
	Exact   bool   // Version read from a version file or package database
	NG      bool   // dracut-ng (104+): rd_NO_LUKS no longer understood
	Source  string // where it was found, or "family default"
}

// File is a configuration file found under the root.
type File struct {
	Name  string   // the well-known name, e.g. /etc/grub.conf
	Chain []string // symlinks followed
	Path  string   // the real file (what gets written), root-relative
}

// System is what Detect found in a root directory.
type System struct {
	Root   string
	OS     OS
	Family Family
	Dracut Dracut
	// Arg is the kernel argument that disables LUKS handling in the initramfs:
	// rd_NO_LUKS (dracut < 008) or rd.luks=0.
	Arg string

	Legacy        []File // distinct real legacy GRUB files (grub.conf, menu.lst)
	GrubCfg       []File // generated GRUB 2 grub.cfg files with Linux entries
	DefaultGrub   *File  // /etc/default/grub
	DropIns       []File // /etc/default/grub.d/*.cfg in the order the shell sources them
	BLSEntries    []File
	Grubenv       []File // grubenv files holding kernelopts
	KernelCmdline *File  // /etc/kernel/cmdline
	Crypttab      *File
	Fstab         *File
	// Dangling lists well-known names that are symlinks to nothing (often: /boot is a
	// separate file system that is not mounted under the root).
	Dangling []string
	// CommentOutCrypttab: the init system ignores noauto, so the volume's crypttab line is
	// commented out instead.
	CommentOutCrypttab bool
}

var legacyNames = []string{"/boot/grub/menu.lst", "/boot/grub/grub.conf", "/etc/grub.conf", "/grub/menu.lst", "/grub/grub.conf"}

var grubenvNames = []string{"/boot/grub2/grubenv", "/boot/grub/grubenv"}

// Detect inspects the root directory (a mounted image or "/").
func Detect(root string) (*System, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("root %s: not a directory", root)
	}
	s := &System{Root: root}
	s.OS = detectOS(root)
	s.Family = familyOf(s.OS)

	seen := map[string]int{}
	for _, n := range legacyNames {
		f, ok, err := findFile(root, n)
		if err != nil {
			return nil, err
		}
		if !ok {
			if fi, err := os.Lstat(hostPath(root, n)); err == nil && fi.Mode()&os.ModeSymlink != 0 {
				s.Dangling = append(s.Dangling, n)
			}
			continue
		}
		if i, dup := seen[f.Path]; dup {
			// Another name for the same real file: remember its links.
			s.Legacy[i].Chain = appendNew(s.Legacy[i].Chain, f.Chain...)
			continue
		}
		seen[f.Path] = len(s.Legacy)
		s.Legacy = append(s.Legacy, f)
	}
	cfgs := []string{"/boot/grub2/grub.cfg", "/boot/grub/grub.cfg"}
	if efi, err := globIn(root, "/boot/efi/EFI", ""); err == nil {
		for _, d := range efi {
			cfgs = append(cfgs, d+"/grub.cfg")
		}
	}
	seenCfg := map[string]bool{}
	for _, n := range cfgs {
		f, ok, err := findFile(root, n)
		if err != nil {
			return nil, err
		}
		if !ok || seenCfg[f.Path] {
			continue
		}
		seenCfg[f.Path] = true
		_, b, _, err := readIn(root, f.Path)
		if err != nil {
			return nil, err
		}
		if len(parseGrubCfg(b).targets()) > 0 {
			s.GrubCfg = append(s.GrubCfg, f)
		}
	}
	if f, ok, err := findFile(root, "/etc/default/grub"); err != nil {
		return nil, err
	} else if ok {
		s.DefaultGrub = &f
	}
	dropins, err := globIn(root, "/etc/default/grub.d", ".cfg")
	if err != nil {
		return nil, err
	}
	for _, n := range dropins {
		if f, ok, err := findFile(root, n); err != nil {
			return nil, err
		} else if ok {
			s.DropIns = append(s.DropIns, f)
		}
	}
	entries, err := globIn(root, "/boot/loader/entries", ".conf")
	if err != nil {
		return nil, err
	}
	for _, n := range entries {
		if f, ok, err := findFile(root, n); err != nil {
			return nil, err
		} else if ok {
			s.BLSEntries = append(s.BLSEntries, f)
		}
	}
	seenEnv := map[string]bool{}
	for _, n := range grubenvNames {
		f, ok, err := findFile(root, n)
		if err != nil {
			return nil, err
		}
		if !ok || seenEnv[f.Path] {
			continue
		}
		seenEnv[f.Path] = true
		_, b, _, err := readIn(root, f.Path)
		if err != nil {
			return nil, err
		}
		if _, has := parseGrubenv(b).Get("kernelopts"); has {
			s.Grubenv = append(s.Grubenv, f)
		}
	}
	for _, p := range []struct {
		name string
		dst  **File
	}{{"/etc/kernel/cmdline", &s.KernelCmdline}, {"/etc/crypttab", &s.Crypttab}, {"/etc/fstab", &s.Fstab}} {
		if f, ok, err := findFile(root, p.name); err != nil {
			return nil, err
		} else if ok {
			f := f
			*p.dst = &f
		}
	}

	if s.Family == FamilyUnknown {
		s.Family = s.familyFromFiles()
	}
	s.Dracut = detectDracut(root, s.Family)
	s.Arg = "rd.luks=0"
	if s.Dracut.Version > 0 && s.Dracut.Version < 8 {
		s.Arg = "rd_NO_LUKS"
	}
	s.CommentOutCrypttab = s.Family == FamilyLegacySysV
	return s, nil
}

// HasBootConfig reports whether Detect found anything that can unlock a volume at boot:
// a boot loader configuration (legacy GRUB, grub.cfg, /etc/default/grub and its drop-ins,
// BLS entries, grubenv kernelopts, /etc/kernel/cmdline), /etc/crypttab or /etc/fstab.
// Without one an empty plan proves nothing: --root probably names the wrong directory.
func (s *System) HasBootConfig() bool {
	return s.hasBootLoader() || len(s.DropIns) > 0 || s.Crypttab != nil || s.Fstab != nil
}

// hasBootLoader reports whether a file that carries kernel arguments was found.
func (s *System) hasBootLoader() bool {
	return len(s.Legacy)+len(s.GrubCfg)+len(s.BLSEntries)+len(s.Grubenv) > 0 || s.DefaultGrub != nil || s.KernelCmdline != nil
}

// findFile resolves name; ok=false when it (or its symlink target) does not exist.
func findFile(root, name string) (File, bool, error) {
	r, b, _, err := readIn(root, name)
	var big *FileTooLargeError
	if errors.As(err, &big) {
		return File{}, false, err // it names the file already
	}
	if err != nil {
		return File{}, false, fmt.Errorf("%s: %w", name, err)
	}
	if b == nil {
		return File{}, false, nil
	}
	return File{Name: r.Name, Chain: r.Chain, Path: r.Final}, true, nil
}

// globIn lists dir/*suffix under root in byte order (the order of a shell glob in the C
// locale), following a symlinked directory within the root.
func globIn(root, dir, suffix string) ([]string, error) {
	r, err := resolveIn(root, dir)
	if err != nil {
		return nil, nil
	}
	ents, err := os.ReadDir(hostPath(root, r.Final))
	if err != nil {
		return nil, nil
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, path.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *System) familyFromFiles() Family {
	switch {
	case len(s.BLSEntries) > 0 && len(s.Grubenv) > 0:
		return FamilyBLSKernelopts
	case len(s.BLSEntries) > 0:
		return FamilyBLS
	case s.DefaultGrub != nil && len(s.DropIns) > 0:
		return FamilyDebian
	case s.DefaultGrub != nil:
		return FamilyGRUB2
	case len(s.Legacy) > 0:
		return FamilyLegacySysV
	}
	return FamilyUnknown
}

func parseOSRelease(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		out[k] = strings.Trim(v, `"'`)
	}
	return out
}

var releaseRE = regexp.MustCompile(`release\s+([0-9][0-9.]*)`)

func detectOS(root string) OS {
	for _, n := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if _, b, _, _ := readIn(root, n); b != nil {
			m := parseOSRelease(b)
			if m["ID"] != "" {
				return OS{ID: m["ID"], IDLike: m["ID_LIKE"], VersionID: m["VERSION_ID"], PrettyName: m["PRETTY_NAME"], Source: n}
			}
		}
	}
	for _, n := range []string{"/etc/system-release", "/etc/redhat-release", "/etc/centos-release"} {
		_, b, _, _ := readIn(root, n)
		if b == nil {
			continue
		}
		text := strings.TrimSpace(string(b))
		o := OS{PrettyName: text, Source: n}
		if m := releaseRE.FindStringSubmatch(text); m != nil {
			o.VersionID = m[1]
		}
		low := strings.ToLower(text)
		switch {
		case strings.Contains(low, "amazon linux"):
			o.ID = "amzn"
		case strings.Contains(low, "centos"):
			o.ID = "centos"
		case strings.Contains(low, "fedora"):
			o.ID = "fedora"
		case strings.Contains(low, "red hat"):
			o.ID = "rhel"
		default:
			o.ID = "rhel"
			o.IDLike = "rhel"
		}
		return o
	}
	if _, b, _, _ := readIn(root, "/etc/debian_version"); b != nil {
		return OS{ID: "debian", VersionID: strings.TrimSpace(string(b)), Source: "/etc/debian_version"}
	}
	return OS{}
}

func major(v string) int {
	end := 0
	for end < len(v) && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(v[:end])
	return n
}

func familyOf(o OS) Family {
	m := major(o.VersionID)
	like := " " + o.IDLike + " "
	switch {
	case o.ID == "amzn":
		switch {
		case m >= 2022:
			return FamilyBLS
		case m >= 2011: // Amazon Linux AMI 2011.09 … 2018.03
			return FamilyLegacySysV
		case m == 2:
			return FamilyGRUB2
		}
		return FamilyUnknown
	case o.ID == "fedora":
		switch {
		case m >= 34:
			return FamilyBLS
		case m >= 30:
			return FamilyBLSKernelopts
		case m >= 16:
			return FamilyGRUB2
		}
		return FamilyUnknown
	case o.ID == "debian" || o.ID == "ubuntu" || strings.Contains(like, " debian ") || strings.Contains(like, " ubuntu "):
		return FamilyDebian
	case o.ID == "rhel" || o.ID == "centos" || o.ID == "rocky" || o.ID == "almalinux" || o.ID == "ol" ||
		strings.Contains(like, " rhel ") || strings.Contains(like, " centos "):
		switch {
		case m >= 9:
			return FamilyBLS
		case m == 8:
			return FamilyBLSKernelopts
		case m == 7:
			return FamilyGRUB2
		case m == 6:
			return FamilyLegacySysV
		}
	}
	return FamilyUnknown
}

var leadingDigits = regexp.MustCompile(`^0*([0-9]+)`)

// detectDracut finds the dracut generation: a dracut-version.sh, the dpkg status, a
// versioned documentation directory (old RPMs), or the wording of the crypt module's
// command-line parser; otherwise the family's default.
func detectDracut(root string, fam Family) Dracut {
	set := func(v int, src string) Dracut {
		return Dracut{Present: true, Version: v, Exact: true, NG: v >= 100, Source: src}
	}
	for _, n := range []string{"/usr/lib/dracut/dracut-version.sh", "/usr/share/dracut/dracut-version.sh"} {
		if _, b, _, _ := readIn(root, n); b != nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "DRACUT_VERSION="); ok {
					if m := leadingDigits.FindStringSubmatch(strings.Trim(v, `"'`)); m != nil {
						n2, _ := strconv.Atoi(m[1])
						return set(n2, n)
					}
				}
			}
		}
	}
	if _, b, _, _ := readIn(root, "/var/lib/dpkg/status"); b != nil {
		for _, para := range strings.Split(string(b), "\n\n") {
			m := parseDebControl(para)
			if (m["Package"] == "dracut" || m["Package"] == "dracut-core") && strings.Contains(m["Status"], "installed") && !strings.Contains(m["Status"], "not-installed") {
				ver := m["Version"]
				if i := strings.IndexByte(ver, ':'); i >= 0 {
					ver = ver[i+1:]
				}
				if mm := leadingDigits.FindStringSubmatch(ver); mm != nil {
					n2, _ := strconv.Atoi(mm[1])
					return set(n2, "/var/lib/dpkg/status")
				}
			}
		}
	}
	for _, docs := range []string{"/usr/share/doc"} {
		if names, _ := globDirs(root, docs, "dracut-"); len(names) > 0 {
			best := 0
			for _, n := range names {
				if m := leadingDigits.FindStringSubmatch(strings.TrimPrefix(path.Base(n), "dracut-")); m != nil {
					v, _ := strconv.Atoi(m[1])
					best = max(best, v)
				}
			}
			if best > 0 {
				return set(best, docs+"/dracut-"+fmt.Sprintf("%03d", best))
			}
		}
	}
	for _, n := range []string{"/usr/lib/dracut/modules.d/90crypt/parse-crypt.sh", "/usr/share/dracut/modules.d/90crypt/parse-crypt.sh"} {
		if _, b, _, _ := readIn(root, n); b != nil {
			d := Dracut{Present: true, Source: n}
			switch {
			case bytes.Contains(b, []byte("rd.luks")) && !bytes.Contains(b, []byte("rd_NO_LUKS")):
				d.Version, d.NG = 104, true // dracut-ng dropped the old names
			case bytes.Contains(b, []byte("rd.luks")):
				d.Version = 8
			default:
				d.Version = 4
			}
			return d
		}
	}
	d := Dracut{Source: "family default"}
	switch fam {
	case FamilyLegacySysV:
		d.Version = 4
	case FamilyGRUB2:
		d.Version = 33
	case FamilyBLSKernelopts:
		d.Version = 49
	case FamilyBLS:
		d.Version = 55
	}
	d.Present = d.Version > 0
	return d
}

func parseDebControl(para string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(para, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

func globDirs(root, dir, prefix string) ([]string, error) {
	r, err := resolveIn(root, dir)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(hostPath(root, r.Final))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, path.Join(dir, e.Name()))
		}
	}
	return out, nil
}

func appendNew(list []string, add ...string) []string {
	for _, a := range add {
		dup := false
		for _, l := range list {
			dup = dup || l == a
		}
		if !dup {
			list = append(list, a)
		}
	}
	return list
}
