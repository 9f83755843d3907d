package grubconf

import (
	"fmt"
	"strings"
)

// luksBootArgs lists kernel arguments that tell an initramfs to unlock a LUKS device at boot,
// which only makes sense when boot needs it (root, /usr, swap, resume).
var luksBootArgs = map[string]bool{
	"rd_LUKS_UUID":           true, // dracut 004
	"rd.luks.uuid":           true,
	"rd.luks.name":           true,
	"rd.luks.partuuid":       true,
	"rd.luks.serial":         true,
	"luks.uuid":              true, // systemd-cryptsetup-generator
	"luks.name":              true,
	"rd.luks.data":           true,
	"cryptdevice":            true, // Arch encrypt hook
	"cryptopts":              true, // Debian initramfs-tools cryptroot
	"rd.luks.key":            false,
	"rd.luks.crypttab":       false,
	"rd.luks.options":        false,
	"rd.luks.timeout":        false,
	"rd.luks.allow-discards": false,
}

// cmdlineSource is a kernel command line and the file it came from.
type cmdlineSource struct {
	path, cmdline string
}

func isMapperLUKS(dev string, crypt map[string]bool) bool {
	name, ok := strings.CutPrefix(dev, "/dev/mapper/")
	if !ok {
		return false
	}
	return strings.HasPrefix(name, "luks-") || crypt[name]
}

// checkEncryptedBoot returns an *EncryptedBootError when any evidence says that root,
// /usr, swap or resume lives on LUKS.
func checkEncryptedBoot(v Volume, cmdlines []cmdlineSource, crypttab *crypttab, crypttabPath string, fstab *fstab, fstabPath string) error {
	crypt := map[string]bool{}
	// Swap and /tmp keyed from /dev/urandom at every boot (PlanScratch): a device-mapper
	// device, but no LUKS and no prompt, so neither evidence nor a layered root.
	random := map[string]bool{}
	if crypttab != nil {
		for _, e := range crypttab.Entries() {
			if e.IsLUKS() {
				crypt[e.Name] = true
			} else if randomKey(e.Key) {
				random["/dev/mapper/"+e.Name] = true
			}
			if e.Name != v.Name && e.IsLUKS() {
				for _, o := range strings.Split(e.Options, ",") {
					if o == "initramfs" {
						return &EncryptedBootError{Path: crypttabPath, Reason: fmt.Sprintf("line %d: %q is unlocked in the initramfs (root or resume)", e.Line, e.Name)}
					}
				}
			}
		}
	}
	// LUKS devices crypttab unlocks at boot besides the volume: the initramfs may need one
	// of them for a root on LVM (or another device-mapper layer) over LUKS, which no
	// kernel argument names when the initramfs takes crypttab (dracut host-only, Debian).
	var autoLUKS []string
	if crypttab != nil {
		for _, e := range crypttab.Entries() {
			if e.IsLUKS() && e.Name != v.Name && (v.Device == "" || e.Device != v.Device) && !hasOption(e.Options, "noauto") {
				autoLUKS = append(autoLUKS, e.Name)
			}
		}
	}
	layered := func(path, what string) error {
		return &EncryptedBootError{Path: path, Reason: fmt.Sprintf("%s is on a device-mapper device and crypttab unlocks %s at boot (LVM over LUKS?)", what, strings.Join(autoLUKS, ", "))}
	}
	for _, c := range cmdlines {
		for _, a := range splitArgs(c.cmdline) {
			if len(autoLUKS) > 0 {
				if (a.Name == "root" || a.Name == "resume" || a.Name == "mount.usr") && isLayeredDevice(a.Value) {
					return layered(c.path, fmt.Sprintf("kernel argument %q", a.Raw))
				}
				if a.Name == "rd.lvm.lv" || a.Name == "rd_LVM_LV" {
					return layered(c.path, fmt.Sprintf("kernel argument %q", a.Raw))
				}
			}
			if luksBootArgs[a.Name] {
				return &EncryptedBootError{Path: c.path, Reason: fmt.Sprintf("kernel argument %q", a.Raw)}
			}
			if (a.Name == "root" || a.Name == "resume" || a.Name == "mount.usr") && isMapperLUKS(a.Value, crypt) {
				return &EncryptedBootError{Path: c.path, Reason: fmt.Sprintf("kernel argument %q", a.Raw)}
			}
		}
	}
	if fstab != nil {
		for _, e := range fstab.Entries() {
			critical := e.File == "/" || e.File == "/usr" || e.Type == "swap"
			if !critical || (e.Type == "swap" && random[e.Spec]) {
				continue
			}
			if v.Name != "" && e.Spec == "/dev/mapper/"+v.Name {
				return &EncryptedBootError{Path: fstabPath, Reason: fmt.Sprintf("line %d: the volume %q itself holds %s", e.Line, v.Name, e.File)}
			}
			if isMapperLUKS(e.Spec, crypt) {
				return &EncryptedBootError{Path: fstabPath, Reason: fmt.Sprintf("line %d: %s (%s) is on LUKS", e.Line, e.File, e.Spec)}
			}
			if len(autoLUKS) > 0 && isLayeredDevice(e.Spec) {
				return layered(fstabPath, fmt.Sprintf("line %d: %s (%s)", e.Line, e.File, e.Spec))
			}
		}
	}
	switch v.MountPoint {
	case "/", "/usr", "swap", "none":
		return &EncryptedBootError{Path: fstabPath, Reason: fmt.Sprintf("the volume's mount point %q is needed for boot", v.MountPoint)}
	}
	return nil
}

func hasOption(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// isLayeredDevice reports a device path that names a device-mapper (LVM, RAID) device
// rather than a disk partition: /dev/mapper/X, /dev/dm-N or /dev/VG/LV.
func isLayeredDevice(dev string) bool {
	if strings.HasPrefix(dev, "/dev/mapper/") || strings.HasPrefix(dev, "/dev/dm-") {
		return true
	}
	rest, ok := strings.CutPrefix(dev, "/dev/")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	return len(parts) == 2 && parts[0] != "disk" && parts[0] != "" && parts[1] != ""
}
