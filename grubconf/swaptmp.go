package grubconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
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
	// Hash is written for explicitness (a key file, here /dev/urandom, is not hashed in
	// plain mode); DefaultScratchHash when empty.
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
	if err := (Volume{Name: sc.Name}).validate(); err != nil || sc.Name == "" {
		return fmt.Errorf("scratch mapping name %q: %w", sc.Name, ErrInvalidVolume)
	}
	if sc.Kind != ScratchSwap && sc.Kind != ScratchTmp {
		return fmt.Errorf("%s: kind %q (want swap or tmp): %w", sc.Name, sc.Kind, ErrInvalidVolume)
	}
	if err := StableDevice(sc.Device); err != nil {
		return fmt.Errorf("%s: %w", sc.Name, err)
	}
	if !validCipherSpec(sc.Cipher) || !validCipherSpec(sc.Hash) {
		return fmt.Errorf("%s: cipher %q, hash %q: %w", sc.Name, sc.Cipher, sc.Hash, ErrInvalidVolume)
	}
	if sc.KeySize <= 0 || sc.KeySize%8 != 0 || sc.KeySize > 4096 {
		return fmt.Errorf("%s: key size %d bits: %w", sc.Name, sc.KeySize, ErrInvalidVolume)
	}
	if sc.Kind == ScratchTmp && (!strings.HasPrefix(sc.MountPoint, "/") || sc.MountPoint == "/" || sc.MountPoint == "/usr" ||
		strings.ContainsAny(sc.MountPoint, "\n\x00")) {
		return fmt.Errorf("%s: mount point %q: %w", sc.Name, sc.MountPoint, ErrInvalidVolume)
	}
	return nil
}

// scratchLines are the crypttab and fstab lines (without newline) for sc on family f.
//
// systemd (systemd-cryptsetup-generator) and Debian's cryptdisks: "swap" and "tmp=ext4"
// imply plain mode with the key file /dev/urandom and run mkswap / mkfs at every boot.
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
		fst = dev + " " + fstabEscape(sc.MountPoint) + " ext2 defaults,nofail,_netdev 0 0"
	default:
		opts += ",tmp=ext4"
		fst = dev + " " + fstabEscape(sc.MountPoint) + " ext4 defaults,nofail 0 2"
	}
	return sc.Name + " " + sc.Device + " /dev/urandom " + opts + ",nofail", fst
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
// already has another line for /dev/mapper/NAME or the mount point. An empty plan means
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

	haveCrypt := false
	for _, l := range parseCrypttab(ctFile.cur).lines {
		if l.comment || len(l.fields) == 0 {
			continue
		}
		sameName := l.fields[0].text == sc.Name
		sameDev := len(l.fields) > 1 && l.fields[1].text == sc.Device
		switch {
		case sameName && sameFields(cline, l.fields):
			haveCrypt = true
		case sameName:
			return nil, fmt.Errorf("%s: %s already has another line for %s: %w", sc.Name, ctFile.res.Final, sc.Name, ErrInUse)
		case sameDev:
			return nil, fmt.Errorf("%s: %s already uses %s for %s: %w", sc.Name, ctFile.res.Final, sc.Device, l.fields[0].text, ErrInUse)
		}
	}
	haveFstab := false
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
			return nil, fmt.Errorf("%s: %s already has a line for %s: %w", sc.Name, fsFile.res.Final, l.fields[1].text, ErrInUse)
		}
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
	p.Changes = w.changes()
	if s.Family == FamilyLegacySysV && sc.Kind == ScratchTmp {
		p.Notes = append(p.Notes, "chkconfig netfs on   # SysV: netfs mounts "+sc.MountPoint+" after init_crypto has made it (rc.sysinit's mount -a runs before)")
	}
	if s.Family == FamilyLegacySysV {
		p.Warnings = append(p.Warnings, "SysV init (init_crypto) needs "+sc.Device+" to exist when rc.sysinit runs: udev must create the /dev/disk/by-id link; without it the line is skipped at boot (nothing is formatted)")
	}
	return p, nil
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
		changed := false
		for i, f := range j.Files {
			if f.Old == nil || !slices.Contains(paths, f.Path) {
				continue
			}
			f.Steps, f.Old = slices.Clone(f.steps()), nil
			j.Files[i], changed = f, true
		}
		if !changed {
			continue
		}
		b, err := json.MarshalIndent(j, "", "  ")
		if err != nil {
			return err
		}
		jf, err := journalFile(root, name)
		if err != nil {
			return err
		}
		if err := writeAtomic(root, jf, append(b, '\n'), 0o600); err != nil {
			return err
		}
	}
	return nil
}
