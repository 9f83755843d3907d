package grubconf

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Scratch space encrypted with a key that exists only in the kernel: swap and /tmp on a
// plain dm-crypt mapping keyed from /dev/urandom at every boot, then mkswap or mkfs. No
// key is stored anywhere, so these crypttab entries are the ones that must stay enabled at
// boot (PlanDisableUnlock never touches them).

// ScratchKind says what a scratch mapping holds.
type ScratchKind string

// Scratch kinds.
const (
	ScratchSwap ScratchKind = "swap"
	ScratchTmp  ScratchKind = "tmp"
)

// Defaults written into crypttab when Scratch leaves them empty. They are always written
// out: cryptsetup's plain-mode defaults changed between 2.6 (aes-cbc-essiv:sha256,
// ripemd160, 256 bits) and 2.7, and an implicit default would follow the installed version.
const (
	DefaultScratchCipher  = "aes-xts-plain64"
	DefaultScratchKeySize = 512 // bits
	DefaultScratchHash    = "sha256"
)

// Sentinel errors of the scratch plans.
var (
	// ErrUnstableDevice: the device name can change between boots (/dev/nvme1n1, /dev/xvdf,
	// /dev/sdb); a crypttab swap or tmp line on it could format another volume at boot.
	ErrUnstableDevice = errors.New("device name is not stable across boots")
	// ErrInUse: the mapping name, the device or the mount point is already configured
	// for something else in crypttab or fstab.
	ErrInUse = errors.New("already configured for something else")
)

// Scratch describes an encrypted swap or /tmp device that is re-keyed at every boot.
type Scratch struct {
	Name   string      // mapping name: crypttab first field, /dev/mapper/NAME
	Kind   ScratchKind // ScratchSwap or ScratchTmp
	Device string      // stable name of the backing device: /dev/disk/by-id/…
	Cipher string      // dm-crypt cipher spec; DefaultScratchCipher when empty
	// KeySize in bits; DefaultScratchKeySize when 0.
	KeySize int
	// Hash is written out so that no distribution default applies; DefaultScratchHash
	// when empty. Unlike the cryptsetup command (which ignores --hash with a key file),
	// systemd-cryptsetup hands the key file to libcryptsetup with hash= and the bytes read
	// from /dev/urandom are hashed, sha256 repeated with "A" prefixes up to the key size
	// (lib/crypt_plain.c): still a random key, of at least 256 bits' strength, as
	// aes-xts-plain64 with 512 bits (two AES-256 keys) needs.
	Hash string
	// MountPoint of a tmp device; /tmp when empty.
	MountPoint string
}

func (sc Scratch) withDefaults() Scratch {
	if sc.Cipher == "" {
		sc.Cipher = DefaultScratchCipher
	}
	if sc.KeySize == 0 {
		sc.KeySize = DefaultScratchKeySize
	}
	if sc.Hash == "" {
		sc.Hash = DefaultScratchHash
	}
	if sc.Kind == ScratchTmp && sc.MountPoint == "" {
		sc.MountPoint = "/tmp"
	}
	return sc
}

// StableDevice reports whether dev is a name that keeps pointing at the same disk across
// boots: a /dev/disk/by-id/ link (EBS volume id or instance-store serial on Nitro). Kernel
// names (/dev/nvmeXnY, /dev/xvdX, /dev/sdX) are numbered in probe order and are refused.
func StableDevice(dev string) error {
	rest, ok := strings.CutPrefix(dev, "/dev/disk/by-id/")
	if !ok || rest == "" || strings.ContainsAny(rest, "/ \t\n\\#,\x00") || rest == "." || rest == ".." {
		return fmt.Errorf("%q (use its /dev/disk/by-id/ name, e.g. /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol…): %w", dev, ErrUnstableDevice)
	}
	return nil
}

func validCipherSpec(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_:()", r)) {
			return false
		}
	}
	return true
}

func (sc Scratch) validate() error {
	if err := StableDevice(sc.Device); err != nil {
		return fmt.Errorf("%s: %w", sc.Name, err)
	}
	return sc.validateNoDevice()
}

// validateNoDevice is validate without the device (see CheckScratch).
func (sc Scratch) validateNoDevice() error {
	if err := (Volume{Name: sc.Name}).validate(); err != nil || sc.Name == "" {
		return fmt.Errorf("scratch mapping name %q: %w", sc.Name, ErrInvalidVolume)
	}
	if sc.Kind != ScratchSwap && sc.Kind != ScratchTmp {
		return fmt.Errorf("%s: kind %q (want swap or tmp): %w", sc.Name, sc.Kind, ErrInvalidVolume)
	}
	if !validCipherSpec(sc.Cipher) || !validCipherSpec(sc.Hash) {
		return fmt.Errorf("%s: cipher %q, hash %q: %w", sc.Name, sc.Cipher, sc.Hash, ErrInvalidVolume)
	}
	if sc.KeySize <= 0 || sc.KeySize%8 != 0 || sc.KeySize > 4096 {
		return fmt.Errorf("%s: key size %d bits: %w", sc.Name, sc.KeySize, ErrInvalidVolume)
	}
	if sc.Kind == ScratchTmp && (!strings.HasPrefix(sc.MountPoint, "/") || systemMountPoint(sc.MountPoint) ||
		strings.ContainsAny(sc.MountPoint, "\n\x00")) {
		return fmt.Errorf("%s: mount point %q: %w", sc.Name, sc.MountPoint, ErrInvalidVolume)
	}
	return nil
}

// systemMountPoint reports whether a scratch file system, emptied at every boot, would be
// mounted over the system's own files: the top-level directories of the hierarchy
// (/, /usr, /etc, /var, /boot, /home, /root, /opt, /srv, the binaries and libraries, the
// API file systems) and anything below /usr, /etc, /boot, /dev, /proc, /sys, /run or /var
// (/var/lib/mysql would lose its databases at the next boot), except /var/tmp, which
// like /tmp is made for this.
func systemMountPoint(mp string) bool {
	mp = path.Clean(mp)
	switch mp {
	case "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
		"/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var":
		return true
	}
	if mp == "/var/tmp" || strings.HasPrefix(mp, "/var/tmp/") {
		return false
	}
	for _, d := range []string{"/usr/", "/etc/", "/boot/", "/dev/", "/proc/", "/sys/", "/run/", "/var/"} {
		if strings.HasPrefix(mp, d) {
			return true
		}
	}
	return false
}

// scratchLines are the crypttab and fstab lines (without newline) for sc on family f.
//
// systemd (systemd-cryptsetup-generator) and Debian's cryptdisks: "swap" and "tmp=ext4"
// imply plain mode with the key file /dev/urandom and run mkswap / mkfs at every boot.
// systemd 219 (Amazon Linux 2, RHEL 7) knows no "tmp=FSTYPE" (a later addition): it
// matches the option as plain "tmp" and runs mke2fs, so /tmp there is ext2, which the
// fstab line's ext4 mounts (the ext4 driver serves ext2); the fstab type stays ext4 for
// the newer systemd versions, where tmp=ext4 makes ext4.
//
// SysV (RHEL 6, Amazon Linux AMI: initscripts' init_crypto in /etc/init.d/functions,
// rhel6-branch): lines keyed from /dev/urandom are set up in the second pass
// ("init_crypto 1", after the random seed), which runs after rc.sysinit's "mount -a" and
// before "swapon -a -e". Only cipher=, size=, hash=, verify, swap and tmp are understood
// ("tmp=…" counts as tmp; other options are ignored); swap gets mkswap, tmp gets a bare
// mke2fs (ext2) whose root is made mode 1777. So a swap line in fstab is enabled by
// rc.sysinit's swapon; a /tmp line must be skipped by rc.sysinit's mount -a (its mapping
// does not exist yet) and by fsck -A: it carries _netdev and pass 0, and netfs (S25, which
// runs init_crypto 1 again and then mount -a) mounts it, before the usual services start.
//
// Every line carries nofail: a disk that is gone at boot (instance-store disks are new
// after a stop and start, with new serials, so the by-id name no longer exists) must not
// stop the boot at an emergency shell, which on an instance nobody can reach is the hang
// this project exists to prevent. /tmp then stays on the root file system until
// encrypted-volume tmp is run again.
func (sc Scratch) scratchLines(f Family) (crypt, fst string) {
	sysv := f == FamilyLegacySysV
	opts := "plain,cipher=" + sc.Cipher + ",size=" + strconv.Itoa(sc.KeySize) + ",hash=" + sc.Hash
	dev := "/dev/mapper/" + sc.Name
	switch {
	case sc.Kind == ScratchSwap && f == FamilyDebian:
		opts += ",swap"
		fst = dev + " none swap sw,nofail 0 0"
	case sc.Kind == ScratchSwap:
		opts += ",swap"
		fst = dev + " swap swap defaults,nofail 0 0"
	case sysv:
		opts += ",tmp"
		fst = dev + " " + fstabEscape(sc.MountPoint) + " ext2 defaults,nosuid,nodev,nofail,_netdev 0 0"
	default:
		opts += ",tmp=ext4"
		fst = dev + " " + fstabEscape(sc.MountPoint) + " ext4 " + systemdTmpOptions + " 0 0"
	}
	return sc.Name + " " + sc.Device + " /dev/urandom " + opts + ",nofail", fst
}

// randomKey reports whether a crypttab key field is a random device: the mapping gets a
// new key at every boot without asking anyone (systemd-cryptsetup and cryptdisks read it as
// a key file).
func randomKey(key string) bool {
	switch key {
	case "/dev/urandom", "/dev/random", "/dev/hw_random":
		return true
	}
	return false
}

// systemdTmpOptions are the fstab options of a tmp line under systemd. nofail alone would
// leave the mount unordered against local-fs.target (systemd.mount(5)), so
// systemd-tmpfiles-setup.service (After=local-fs.target) could set 1777 on the root file
// system's directory and never see the fresh file system, whose root mkfs and
// systemd-makefs leave at 0755: x-systemd.before= puts the ordering back while keeping the
// mount merely wanted, and the short device timeout bounds how long local-fs.target waits
// for a disk that is gone (instance store after a stop and start). nosuid,nodev as the
// live mount has them. Pass 0: systemd-fsck@ is ordered after the mapper device, not
// after the systemd-makefs that formats it, so a pass of 2 could check random bytes and
// fail the mount; a file system made at every boot has nothing to check. x-systemd.before= needs systemd 233; older ones (219: Amazon Linux
// 2, RHEL 7) ignore it and get the same ordering from a unit drop-in (scratchFiles).
const systemdTmpOptions = "nosuid,nodev,nofail,x-systemd.before=local-fs.target,x-systemd.device-timeout=30s"

// scratchFile is a whole file a scratch plan writes besides its crypttab and fstab lines.
type scratchFile struct {
	path, content, reason string
}

// scratchFiles are the files a tmp line needs under systemd:
//
//   - /etc/tmpfiles.d/cloudluks-NAME.conf with "z MOUNTPOINT 1777 root root -": the mode
//     is set at every boot after the mount (systemd-tmpfiles-setup runs after
//     local-fs.target). X-mount.mode=1777 in fstab would do it in the mount itself, but it
//     needs util-linux 2.38 (Debian 12 has 2.38.1; Ubuntu 22.04 2.37, RHEL 9 and Amazon
//     Linux 2023 2.37, RHEL 8 2.32, Amazon Linux 2 2.30 do not); older mount(8) passes it
//     to the kernel, which refuses it. "z" only adjusts an existing path and takes no
//     ownership of it, so it adds to the distribution's "d /tmp 1777 root root 10d" (or
//     "D …") without overriding its clean-up age or triggering "Duplicate line".
//   - on systemd 219 (FamilyGRUB2: Amazon Linux 2, RHEL 7), which ignores x-systemd.before=,
//     a drop-in for the generated mount unit with Before=local-fs.target.
//
// SysV init needs neither: init_crypto makes the fresh root mode 1777 itself.
func (sc Scratch) scratchFiles(f Family) []scratchFile {
	if sc.Kind != ScratchTmp || f == FamilyLegacySysV {
		return nil
	}
	head := scratchComment(sc) + "\n"
	out := []scratchFile{{
		path:    "/etc/tmpfiles.d/cloudluks-" + sc.Name + ".conf",
		content: head + "z " + tmpfilesQuote(sc.MountPoint) + " 1777 root root -\n",
		reason:  "mode 1777 on " + sc.MountPoint + " at every boot, after the mount",
	}}
	if f == FamilyGRUB2 {
		out = append(out, scratchFile{
			path:    "/etc/systemd/system/" + mountUnitName(sc.MountPoint) + ".d/cloudluks-" + sc.Name + ".conf",
			content: head + "[Unit]\nBefore=local-fs.target\n",
			reason:  "mount " + sc.MountPoint + " before local-fs.target (systemd 219 ignores x-systemd.before=)",
		})
	}
	return out
}

// isScratchFile reports whether the root-relative p is one of scratchFiles' paths.
func isScratchFile(p string) bool {
	base := path.Base(p)
	if !strings.HasPrefix(base, "cloudluks-") || !strings.HasSuffix(base, ".conf") {
		return false
	}
	dir := path.Dir(p)
	return dir == "/etc/tmpfiles.d" || path.Dir(dir) == "/etc/systemd/system" && strings.HasSuffix(dir, ".mount.d")
}

// tmpfilesQuote writes a path for tmpfiles.d(5): C-style quoted when it holds white
// space, a quote or a backslash, and with every % doubled (specifiers).
func tmpfilesQuote(p string) string {
	p = strings.ReplaceAll(p, "%", "%%")
	if !strings.ContainsAny(p, " \t\"'\\") {
		return p
	}
	return strconv.Quote(p)
}

// mountUnitName is systemd's name for the mount unit of path (systemd-escape --path
// --suffix=mount).
func mountUnitName(p string) string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "-.mount"
	}
	var b strings.Builder
	for i, s := range parts {
		if i > 0 {
			b.WriteByte('-')
		}
		for j := 0; j < len(s); j++ {
			c := s[j]
			if c == '.' && i == 0 && j == 0 || !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '_' || c == '.') {
				fmt.Fprintf(&b, `\x%02x`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	return b.String() + ".mount"
}

// scratchComment heads the lines a scratch plan adds, so that a reader knows where they
// come from and why the key is /dev/urandom.
func scratchComment(sc Scratch) string {
	return "# cloudluks " + string(sc.Kind) + " " + sc.Name + ": plain dm-crypt, new random key at every boot (no key stored)"
}

// ScratchLines returns the crypttab and fstab lines PlanScratch writes for sc on the
// detected system (defaults filled in), without planning anything.
func (s *System) ScratchLines(sc Scratch) (crypttabLine, fstabLine string, err error) {
	sc = sc.withDefaults()
	if err := sc.validate(); err != nil {
		return "", "", err
	}
	c, f := sc.scratchLines(s.Family)
	return c, f, nil
}

// appendLines adds lines (each newline-terminated) to b, first ending an unterminated last
// line.
func appendLines(b []byte, lines ...string) []byte {
	out := append([]byte(nil), b...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	for _, l := range lines {
		out = append(out, l...)
		out = append(out, '\n')
	}
	return out
}

func sameFields(a string, b []field) bool {
	w := strings.Fields(a)
	if len(w) != len(b) {
		return false
	}
	for i := range w {
		if w[i] != b[i].text {
			return false
		}
	}
	return true
}

// PlanScratch plans the crypttab and fstab lines that set up sc at every boot with a fresh
// random key: "NAME DEVICE /dev/urandom plain,cipher=…,size=…,hash=…,swap" (or tmp) and
// the swap or /tmp line for /dev/mapper/NAME, in each family's form (see the package
// documentation). The device must have a stable name (ErrUnstableDevice). It refuses with
// ErrInUse when crypttab already uses the name or the device for another line, or fstab
// already has another line for /dev/mapper/NAME or the mount point, or mounts the device
// itself or one of its partitions under another name (its kernel name or /dev/xvdX, which
// the by-id link leads to inside the root). An empty plan means
// the lines are there. Apply records them under the name, so PlanUndo(sc.Name) takes them
// out again byte for byte.
func (s *System) PlanScratch(sc Scratch) (*Plan, error) {
	sc = sc.withDefaults()
	if err := sc.validate(); err != nil {
		return nil, err
	}
	w := newWorkset(s.Root)
	p := &Plan{Root: s.Root, Volume: Volume{Name: sc.Name, Device: sc.Device, MountPoint: sc.MountPoint}, Family: s.Family}
	ctName, fsName := "/etc/crypttab", "/etc/fstab"
	if s.Crypttab != nil {
		ctName = s.Crypttab.Name
	}
	if s.Fstab != nil {
		fsName = s.Fstab.Name
	}
	ctFile, err := w.get(ctName)
	if err != nil {
		return nil, err
	}
	fsFile, err := w.get(fsName)
	if err != nil {
		return nil, err
	}
	cline, fline := sc.scratchLines(s.Family)
	dev := "/dev/mapper/" + sc.Name
	haveCrypt, haveFstab, err := sc.conflicts(s.Root, ctFile, fsFile, cline, fline)
	if err != nil {
		return nil, err
	}
	if !haveCrypt {
		if ctFile.old == nil {
			ctFile.mode = 0o600 // as cryptsetup packages create it: key file paths are no one else's business
		}
		ctFile.set(appendLines(ctFile.cur, scratchComment(sc), cline), "add "+string(sc.Kind)+" "+sc.Name+" keyed from /dev/urandom at every boot")
	}
	if !haveFstab {
		fsFile.set(appendLines(fsFile.cur, scratchComment(sc), fline), "add "+string(sc.Kind)+" for "+dev)
	}
	for _, sf := range sc.scratchFiles(s.Family) {
		f, err := w.get(sf.path)
		if err != nil {
			return nil, err
		}
		if f.cur != nil && string(f.cur) != sf.content {
			return nil, fmt.Errorf("%s: %s exists with other content: %w", sc.Name, f.res.Final, ErrInUse)
		}
		f.set([]byte(sf.content), sf.reason)
	}
	p.Changes = w.changes()
	if s.Family == FamilyLegacySysV && sc.Kind == ScratchTmp {
		p.Notes = append(p.Notes, "chkconfig netfs on   # SysV: netfs mounts "+sc.MountPoint+" after init_crypto has made it (rc.sysinit's mount -a runs before)")
	}
	if s.Family == FamilyLegacySysV {
		p.Warnings = append(p.Warnings, "SysV init (init_crypto) needs "+sc.Device+" to exist when rc.sysinit runs: udev must create the /dev/disk/by-id link; without it the line is skipped at boot (nothing is formatted)")
	}
	return p, nil
}

// conflicts is PlanScratch's check of crypttab and fstab: whether the lines are there
// already, or ErrInUse when another line has the name, the device (unless sc.Device is
// empty) or the mount point.
func (sc Scratch) conflicts(root string, ctFile, fsFile *wsFile, cline, fline string) (haveCrypt, haveFstab bool, err error) {
	dev := "/dev/mapper/" + sc.Name
	disk := ""
	if sc.Device != "" {
		disk = diskKey(root, sc.Device)
	}
	for _, l := range parseCrypttab(ctFile.cur).lines {
		if l.comment || len(l.fields) == 0 {
			continue
		}
		sameName := l.fields[0].text == sc.Name
		sameDev := disk != "" && len(l.fields) > 1 && sameDisk(disk, diskKey(root, l.fields[1].text))
		switch {
		case sameName && sameFields(cline, l.fields):
			haveCrypt = true
		case sameName:
			return false, false, fmt.Errorf("%s: %s already has another line for %s: %w", sc.Name, ctFile.res.Final, sc.Name, ErrInUse)
		case sameDev:
			return false, false, fmt.Errorf("%s: %s already uses %s for %s: %w", sc.Name, ctFile.res.Final, sc.Device, l.fields[0].text, ErrInUse)
		}
	}
	for _, l := range parseFstab(fsFile.cur).lines {
		if l.comment || len(l.fields) < 2 {
			continue
		}
		sameDev := l.fields[0].text == dev
		sameMount := sc.Kind == ScratchTmp && l.fields[1].text == fstabEscape(sc.MountPoint)
		switch {
		case sameDev && sameFields(fline, l.fields):
			haveFstab = true
		case sameDev || sameMount:
			return false, false, fmt.Errorf("%s: %s already has a line for %s: %w", sc.Name, fsFile.res.Final, l.fields[1].text, ErrInUse)
		case disk != "" && sameDisk(disk, diskKey(root, l.fields[0].text)):
			// cloud-init's "/dev/nvme1n1 /mnt auto …" for the instance store, say: the
			// boot would mount the disk there and then format it for this line, or the reverse.
			return false, false, fmt.Errorf("%s: %s mounts %s (the disk %s names) on %s: %w", sc.Name, fsFile.res.Final, l.fields[0].text, sc.Device, l.fields[1].text, ErrInUse)
		}
	}
	return haveCrypt, haveFstab, nil
}

// diskKey is the name a device spec of crypttab or fstab has inside root: a /dev path with
// its links followed inside the root (udev's /dev/disk/by-id links, the /dev/xvdX and
// /dev/sdX links to NVMe names on Nitro), the path itself when it does not resolve (an
// image root without /dev). UUID=, LABEL= and the like name file systems, not disks, and
// need a probe: "".
func diskKey(root, spec string) string {
	if !strings.HasPrefix(spec, "/dev/") {
		return ""
	}
	if r, err := resolveIn(root, spec); err == nil {
		return r.Final
	}
	return path.Clean(spec)
}

// sameDisk reports whether the resolved names a and b are one disk, or one a partition of
// the other (/dev/nvme1n1 and /dev/nvme1n1p2, /dev/xvdf and /dev/xvdf1).
func sameDisk(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if len(b) < len(a) {
		a, b = b, a
	}
	rest, ok := strings.CutPrefix(b, a)
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	if last := a[len(a)-1]; last >= '0' && last <= '9' {
		if rest, ok = strings.CutPrefix(rest, "p"); !ok {
			return false
		}
	}
	return rest != "" && strings.Trim(rest, "0123456789") == ""
}

// CheckScratch makes the checks of PlanScratch that need no device, for a caller that
// learns the device only later (a volume it has yet to create and attach) and must refuse
// before that: sc.Device may be empty. It fails as PlanScratch would with ErrInvalidVolume
// (name, kind, cipher, mount point) or ErrInUse (the name or the mount point taken in
// crypttab or fstab).
func (s *System) CheckScratch(sc Scratch) error {
	sc = sc.withDefaults()
	if sc.Device != "" {
		_, err := s.PlanScratch(sc)
		return err
	}
	if err := sc.validateNoDevice(); err != nil {
		return err
	}
	w := newWorkset(s.Root)
	ctName, fsName := "/etc/crypttab", "/etc/fstab"
	if s.Crypttab != nil {
		ctName = s.Crypttab.Name
	}
	if s.Fstab != nil {
		fsName = s.Fstab.Name
	}
	ctFile, err := w.get(ctName)
	if err != nil {
		return err
	}
	fsFile, err := w.get(fsName)
	if err != nil {
		return err
	}
	cline, fline := sc.scratchLines(s.Family)
	_, _, err = sc.conflicts(s.Root, ctFile, fsFile, cline, fline)
	return err
}

// passCreated hands the fact "no file was here before cloudluks" from the record being
// undone (volume) to every other record that added lines to the same files since: when a
// swap plan created /etc/crypttab and a tmp plan appended to it, undoing swap first keeps
// the file for tmp's lines, and tmp's undo then removes it instead of leaving it empty, so
// either undo order restores the tree byte for byte.
func passCreated(root, volume string, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	return editOtherJournals(root, volume, func(j *journal) bool {
		changed := false
		for i, f := range j.Files {
			if f.Old == nil || !slices.Contains(paths, f.Path) {
				continue
			}
			f.Steps, f.Old = slices.Clone(f.steps()), nil
			j.Files[i], changed = f, true
		}
		return changed
	})
}

// editOtherJournals applies edit to the undo record of every volume but volume ("" = the
// kernel-argument record), writing back each record edit reports changed.
func editOtherJournals(root, volume string, edit func(*journal) bool) error {
	dir, err := resolveCreate(root, JournalDir)
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(hostPath(root, dir))
	if err != nil {
		return err
	}
	self := volume
	if self == "" {
		self = kernelArgsJournal
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || name == self || !e.Type().IsRegular() {
			continue
		}
		j, err := readJournal(root, name)
		if err != nil {
			return err
		}
		if !edit(j) {
			continue
		}
		if err := writeJournal(root, name, j); err != nil {
			return err
		}
	}
	return nil
}

// terminatedStep is an undone edit whose newline stayed in Path (see revertTerminated).
type terminatedStep struct {
	Path string
	Step journalStep
}

// handTerminated rewrites the other records' edits of the files in steps as if the undone
// record had never been applied: its lines taken out of their contents, and the newline
// it added after the file's unterminated last line charged to the record whose edit now
// directly follows that line. Undoing that record later removes the newline with its own
// lines (S, T, undo S, undo T on a crypttab without a final newline ends at the original
// bytes, not with the line glued to the next one).
func handTerminated(root, volume string, steps []terminatedStep) error {
	if len(steps) == 0 {
		return nil
	}
	rebase := func(b []byte, st journalStep, old bool) []byte {
		if b == nil {
			return nil
		}
		if sameContent(b, st.New) {
			return slices.Clone(st.Old)
		}
		out, _, _ := revertStepNL(b, st, true)
		if l := append(slices.Clone(terminatedLine(st)), '\n'); old && lastLineIs(out, l) {
			out = out[:len(out)-1]
		}
		return out
	}
	return editOtherJournals(root, volume, func(j *journal) bool {
		changed := false
		for i, f := range j.Files {
			for _, ts := range steps {
				if f.Path != ts.Path || f.Old == nil {
					continue
				}
				sts := slices.Clone(f.steps())
				moved := false
				for k, st := range sts {
					o := rebase(st.Old, ts.Step, true)
					if sameContent(o, st.Old) {
						continue // an edit made before the undone one
					}
					sts[k] = journalStep{Old: o, New: rebase(st.New, ts.Step, false)}
					moved = true
				}
				if !moved {
					continue
				}
				f.Old, f.New, f.Steps = sts[0].Old, sts[len(sts)-1].New, nil
				if len(sts) > 1 {
					f.Steps = sts
				}
				j.Files[i], changed = f, true
			}
		}
		return changed
	})
}
