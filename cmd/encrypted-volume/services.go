package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Service gating (--service NAME): after a reboot the volume stays locked until someone runs
// unlock, and a service whose data lives on it must not start before that, or it writes
// plaintext onto the root volume's empty mount point. Under systemd a drop-in skips the unit
// while the mount is not there; under SysV init (Amazon Linux 1) the service leaves the boot sequence and
// unlock starts it. teardown --service undoes both.

// errNoService marks a --service that names nothing startable under --root.
var errNoService = errors.New("no such service")

// serviceDropIn is the drop-in file name, one per service: setup owns it, teardown removes it.
const serviceDropIn = "encrypted-volume.conf"

// sysvJournalDir holds, per SysV service, the start links setup renamed, so teardown can
// rename exactly those back (chkconfig itself would not know which runlevels were on).
const sysvJournalDir = "var/lib/encrypted-volume/services"

type initKind string

const (
	initSystemd initKind = "systemd"
	initSysV    initKind = "SysV init"
)

// service is a --service found under --root.
type service struct {
	name   string
	init   initKind
	script string // SysV: the init script, relative to root ("/etc/rc.d/init.d/mysqld")
}

// systemd unit names: ASCII letters, digits, ":-_.\", and "@" for instances (systemd.unit(5)).
var serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9:_.@\\-]+$`)

func validServiceName(name string) error {
	switch {
	case name == "", len(name) > 240:
		return errors.New("empty or longer than 240 bytes")
	case !serviceNameRE.MatchString(name), name[0] == '-', name[0] == '.':
		return errors.New(`not a service name (letters, digits and ":_.@-\" only, not starting with "-" or ".")`)
	}
	if prefix, instance, ok := strings.Cut(name, "@"); ok {
		switch {
		case prefix == "" || strings.Contains(instance, "@"):
			return errors.New(`not a service name (one "@" between a template name and an instance)`)
		case instance == "":
			return fmt.Errorf("%s is a template, not a service: name an instance (%s@INSTANCE)", name, prefix)
		}
	}
	return nil
}

// unitFiles are the unit files that define name: NAME.service, and for an instance
// (mysqld@main) also its template (mysqld@.service), which is what a package installs.
func unitFiles(name string) []string {
	files := []string{name + ".service"}
	if prefix, _, ok := strings.Cut(name, "@"); ok {
		files = append(files, prefix+"@.service")
	}
	return files
}

func exists(root, rel string) bool {
	_, err := os.Stat(filepath.Join(root, rel))
	return err == nil
}

// detectService checks name and finds how root starts it. systemd is the init when its
// binary is there; otherwise an init script makes it SysV.
func detectService(root, name string) (service, error) {
	name = strings.TrimSuffix(name, ".service")
	if err := validServiceName(name); err != nil {
		return service{}, err
	}
	var scripts []string
	for _, dir := range []string{"/etc/rc.d/init.d", "/etc/init.d"} {
		if exists(root, dir+"/"+name) {
			scripts = append(scripts, dir+"/"+name)
		}
	}
	if exists(root, "usr/lib/systemd/systemd") || exists(root, "lib/systemd/systemd") {
		for _, dir := range []string{"etc/systemd/system", "run/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"} {
			for _, f := range unitFiles(name) {
				if exists(root, dir+"/"+f) {
					return service{name: name, init: initSystemd}, nil
				}
			}
		}
		if len(scripts) > 0 { // started through systemd-sysv-generator, which honours drop-ins
			return service{name: name, init: initSystemd}, nil
		}
		return service{}, fmt.Errorf("%w: no unit %s under %s", errNoService, strings.Join(unitFiles(name), " or "), root)
	}
	if len(scripts) == 0 {
		return service{}, fmt.Errorf("%w: neither systemd nor an init script /etc/rc.d/init.d/%s or /etc/init.d/%s under %s", errNoService, name, name, root)
	}
	return service{name: name, init: initSysV, script: scripts[0]}, nil
}

func dropInPath(root, name string) string {
	return filepath.Join(root, "etc/systemd/system", name+".service.d", serviceDropIn)
}

// systemdDropIn makes the unit wait for the volume's mount without ever asking for it.
// ConditionPathIsMountPoint= skips the start (at boot, or started by another unit) while the
// volume is locked; After= the mount unit orders a start that happens in the same
// transaction as the mount (unlock mounts first, then starts the service).
//
// Not RequiresMountsFor= (nor Requires=/Wants=/BindsTo= of the mount): systemd-fstab-generator
// makes /encrypted_vol.mount even for a noauto,nofail fstab line, its What=/dev/mapper/NAME
// binds it to dev-mapper-NAME.device, and systemd-cryptsetup-generator makes that device
// require systemd-cryptsetup@NAME.service even for a noauto crypttab line. Starting the
// service at boot would then pull in the passphrase prompt (TimeoutSec=0: forever) that step
// 8 exists to prevent.
func systemdDropIn(name, mountPoint string) []byte {
	mp := strings.ReplaceAll(mountPoint, "%", "%%") // systemd expands % specifiers
	unit := strings.ReplaceAll(mountUnitName(mountPoint), "%", "%%")
	return []byte("# Written by encrypted-volume setup: " + name + " starts only once the encrypted volume is\n" +
		"# unlocked and mounted (encrypted-volume unlock), never on the empty mount point, and\n" +
		"# never asks for the volume's passphrase itself (no Requires= of the mount).\n" +
		"# encrypted-volume teardown --service " + name + " removes this file.\n" +
		"[Unit]\nConditionPathIsMountPoint=" + mp + "\nAfter=" + unit + "\n")
}

// mountUnitName is the name systemd gives the mount unit of path, as
// `systemd-escape --path --suffix=mount` prints it (systemd.unit(5) "String Escaping").
func mountUnitName(path string) string {
	var parts []string
	for _, p := range strings.Split(path, "/") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "-.mount"
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('-')
		}
		for j := 0; j < len(p); j++ {
			c := p[j]
			switch {
			case c == '.' && i == 0 && j == 0, // a leading dot would hide the unit
				!(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '_' || c == '.'):
				fmt.Fprintf(&b, `\x%02x`, c)
			default:
				b.WriteByte(c)
			}
		}
	}
	return b.String() + ".mount"
}

// gateService makes name wait for the mount from the next boot on.
func gateService(root, name, mountPoint string, w io.Writer) error {
	s, err := detectService(root, name)
	if err != nil {
		return err
	}
	switch s.init {
	case initSystemd:
		p := dropInPath(root, s.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("service %s: %w", s.name, err)
		}
		if err := writeFileAtomic(p, systemdDropIn(s.name, mountPoint), 0o644); err != nil {
			return fmt.Errorf("service %s: %w", s.name, err)
		}
		fmt.Fprintf(w, "    %s.service (systemd): wrote %s: it starts only with %s mounted\n", s.name, p, mountPoint)
	case initSysV:
		renamed, err := sysvDisable(root, s, os.Rename)
		if err != nil {
			return fmt.Errorf("service %s: %w", s.name, err)
		}
		if len(renamed) == 0 {
			fmt.Fprintf(w, "    %s (SysV init): not started at boot already; unlock --service %s starts it\n", s.name, s.name)
		} else {
			fmt.Fprintf(w, "    %s (SysV init): taken out of boot start (%s); unlock --service %s starts it\n", s.name, strings.Join(renamed, ", "), s.name)
		}
	}
	return nil
}

// ungateService undoes gateService; what is not there is skipped.
func ungateService(root, name string, w io.Writer) error {
	s, err := detectService(root, name)
	if err != nil {
		return err
	}
	switch s.init {
	case initSystemd:
		p := dropInPath(root, s.name)
		if err := os.Remove(p); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(w, "    %s.service: no %s\n", s.name, p)
			return nil
		} else if err != nil {
			return fmt.Errorf("service %s: %w", s.name, err)
		}
		_ = os.Remove(filepath.Dir(p)) // only when empty: other drop-ins stay
		fmt.Fprintf(w, "    %s.service: removed %s\n", s.name, p)
	case initSysV:
		restored, err := sysvRestore(root, s)
		if err != nil {
			return fmt.Errorf("service %s: %w", s.name, err)
		}
		if len(restored) == 0 {
			fmt.Fprintf(w, "    %s: no boot start recorded by setup\n", s.name)
		} else {
			fmt.Fprintf(w, "    %s: boot start restored (%s)\n", s.name, strings.Join(restored, ", "))
		}
	}
	return nil
}

// rcDirs are the runlevel directories of a SysV root: /etc/rc.d/rcN.d on Red Hat systems
// (/etc/rcN.d are links to them there), /etc/rcN.d elsewhere.
func rcDirs(root string) []string {
	for _, pattern := range []string{"etc/rc.d/rc[0-6].d", "etc/rc[0-6].d"} {
		if m, _ := filepath.Glob(filepath.Join(root, pattern)); len(m) > 0 {
			return m
		}
	}
	return nil
}

var chkconfigRE = regexp.MustCompile(`(?m)^#\s*chkconfig:\s*\S+\s+(\d+)\s+(\d+)`)

// stopPriority is the K priority chkconfig gives the script: the third field of its
// "# chkconfig: 2345 64 36" line, else 100 minus the start priority.
func stopPriority(root string, s service, start int) int {
	if b, err := os.ReadFile(filepath.Join(root, s.script)); err == nil {
		if m := chkconfigRE.FindSubmatch(b); m != nil {
			if k, err := strconv.Atoi(string(m[2])); err == nil {
				return k
			}
		}
	}
	return max(0, min(99, 100-start))
}

// sysvRename is one start link taken out of boot start, relative to root.
type sysvRename struct{ from, to string }

// errLinkClash marks a K link that is already where setup would rename an S link to.
var errLinkClash = errors.New("stop link already there")

// sysvPlan finds the start links of s and the stop-link names they get, without changing
// anything. An existing link at a target name is refused (renaming over it would destroy
// it); a second start link in one runlevel (S64mysqld beside S80mysqld) gets the next free
// stop priority, so neither is lost.
func sysvPlan(root string, s service) ([]sysvRename, error) {
	var plan []sysvRename
	for _, dir := range rcDirs(root) {
		links, _ := filepath.Glob(filepath.Join(dir, "S[0-9][0-9]"+s.name))
		taken := map[string]bool{}
		for _, l := range links {
			start, _ := strconv.Atoi(filepath.Base(l)[1:3])
			prio := stopPriority(root, s, start)
			kname := func(prio int) string { return filepath.Join(dir, fmt.Sprintf("K%02d%s", prio, s.name)) }
			lexists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
			k := kname(prio)
			if lexists(k) {
				return nil, fmt.Errorf("%s: cannot take %s out of boot start: %w (fix the runlevel links by hand, e.g. chkconfig %s off)",
					k, filepath.Base(l), errLinkClash, s.name)
			}
			for taken[k] || lexists(k) { // only a second start link of this runlevel gets here
				if prio++; prio > 99 {
					return nil, fmt.Errorf("%s: no free stop priority for %s: %w", dir, filepath.Base(l), errLinkClash)
				}
				k = kname(prio)
			}
			taken[k] = true
			rel := func(p string) string { r, _ := filepath.Rel(root, p); return r }
			plan = append(plan, sysvRename{rel(l), rel(k)})
		}
	}
	return plan, nil
}

// sysvDisable does what `chkconfig NAME off` does to the links (S64mysqld → K36mysqld, the
// link target kept), without running chkconfig on a root that may not be the live system.
// Every rename is in the journal before it is made, so teardown restores exactly these
// runlevels even after a failure or a crash halfway (sysvRestore skips what was not done).
// rename is os.Rename outside tests.
func sysvDisable(root string, s service, rename func(from, to string) error) ([]string, error) {
	plan, err := sysvPlan(root, s)
	if err != nil || len(plan) == 0 {
		return nil, err
	}
	var journal []string
	p := filepath.Join(root, sysvJournalDir, s.name)
	if old, err := os.ReadFile(p); err == nil { // a second setup keeps the first record
		journal = strings.Split(strings.TrimSpace(string(old)), "\n")
	}
	for _, r := range plan {
		journal = append(journal, r.from+" "+r.to)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(p, []byte(strings.Join(journal, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	var renamed []string
	for _, r := range plan {
		if err := rename(filepath.Join(root, r.from), filepath.Join(root, r.to)); err != nil {
			return renamed, err
		}
		renamed = append(renamed, filepath.Base(filepath.Dir(r.from))+"/"+filepath.Base(r.from))
	}
	return renamed, nil
}

// sysvRestore renames back the links sysvDisable recorded, newest first, and removes the
// record. A link someone changed since (chkconfig on, package update) is left alone.
func sysvRestore(root string, s service) ([]string, error) {
	p := filepath.Join(root, sysvJournalDir, s.name)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	slices.Reverse(lines)
	var restored []string
	for _, line := range lines {
		orig, now, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(orig, "..") || strings.Contains(now, "..") {
			continue
		}
		o, n := filepath.Join(root, orig), filepath.Join(root, now)
		if _, err := os.Lstat(n); err != nil {
			continue
		}
		if _, err := os.Lstat(o); err == nil {
			continue
		}
		if err := os.Rename(n, o); err != nil {
			return restored, err
		}
		restored = append(restored, filepath.Base(filepath.Dir(o))+"/"+filepath.Base(o))
	}
	return restored, os.Remove(p)
}

// startCommand is how unlock starts the service once the volume is mounted.
func startCommand(root string, s service) []string {
	if s.init == initSysV {
		return []string{filepath.Join(root, s.script), "start"}
	}
	return []string{"systemctl", "start", s.name + ".service"}
}

// serviceFlags repeats --service for the unlock command setup prints.
func serviceFlags(names []string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(" --service " + n)
	}
	return b.String()
}

// writeFileAtomic replaces path with data so a reader (or a crash) sees the old file or
// the new one, never half of it.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
