package grubconf

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeRoot describes a root directory: files by path; a value starting with "->" makes a
// symlink; "fixture:NAME" copies a sample; "dir:" makes an empty directory.
type fakeRoot map[string]string

func (r fakeRoot) build(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, p := range keys {
		v := r[p]
		hp := filepath.Join(root, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(hp), 0o755))
		switch {
		case strings.HasPrefix(v, "->"):
			require.NoError(t, os.Symlink(strings.TrimPrefix(v, "->"), hp))
		case strings.HasPrefix(v, "dir:"):
			require.NoError(t, os.MkdirAll(hp, 0o755))
		case strings.HasPrefix(v, "fixture:"):
			require.NoError(t, os.WriteFile(hp, fixture(t, strings.TrimPrefix(v, "fixture:")), 0o644))
		default:
			require.NoError(t, os.WriteFile(hp, []byte(v), 0o644))
		}
	}
	return root
}

// treeState records every entry under root (type, mode, link target, content hash),
// skipping the undo journal directory and backups when asked.
func treeState(t testing.TB, root string, skipBookkeeping bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if skipBookkeeping && (strings.HasPrefix(rel, "var/lib") || rel == "var" || strings.HasSuffix(rel, BackupSuffix)) {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			tgt, _ := os.Readlink(p)
			out[rel] = "link " + tgt
		case fi.IsDir():
			out[rel] = fmt.Sprintf("dir %v", fi.Mode())
		default:
			b, _ := os.ReadFile(p)
			out[rel] = fmt.Sprintf("file %v %x", fi.Mode(), sha256.Sum256(b))
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

const (
	crypttabData = "# <name> <device> <password> <options>\nmy_enc_fs /dev/xvdf none luks\n"
	fstabData    = "LABEL=/     /           ext4    defaults,noatime  1   1\ntmpfs       /dev/shm    tmpfs   defaults        0   0\n/dev/mapper/my_enc_fs /encrypted_vol ext4 defaults 0 2\n"
	rhelDefaults = "GRUB_TIMEOUT=1\nGRUB_DISTRIBUTOR=\"$(sed 's, release .*$,,g' /etc/system-release)\"\nGRUB_DEFAULT=saved\nGRUB_DISABLE_SUBMENU=true\nGRUB_TERMINAL_OUTPUT=\"console\"\nGRUB_CMDLINE_LINUX=\"console=tty0 console=ttyS0,115200n8 nvme_core.io_timeout=4294967295 rd.emergency=poweroff rd.shell=0 selinux=1 security=selinux quiet\"\nGRUB_DISABLE_RECOVERY=\"true\"\nGRUB_ENABLE_BLSCFG=true\n"
)

func paddedGrubenv(t testing.TB) string {
	b := []byte(strings.TrimRight(string(fixture(t, "09-centos8-stream-grubenv.TRUNCATED-946-bytes")), "#\n"))
	b = append(b, '\n')
	for len(b) < grubenvSize {
		b = append(b, '#')
	}
	return string(b)
}

// roots are the fake systems the plan tests run on; want* are the expectations.
type rootCase struct {
	name   string
	files  func(t testing.TB) fakeRoot
	family Family
	arg    string
	edited []string // real files the plan changes
	vol    Volume
}

var myVol = Volume{Name: "my_enc_fs", MountPoint: "/encrypted_vol"}

var rootCases = []rootCase{
	{
		name: "al1-2011.09", family: FamilyLegacySysV, arg: "rd_NO_LUKS", vol: myVol,
		edited: []string{"/boot/grub/menu.lst", "/etc/crypttab", "/etc/fstab"},
		files: func(t testing.TB) fakeRoot {
			return fakeRoot{
				"boot/grub/menu.lst":              "fixture:01-amazon-linux-2011.09-pv-menu.lst",
				"etc/grub.conf":                   "->../boot/grub/menu.lst",
				"etc/system-release":              "Amazon Linux AMI release 2011.09\n",
				"etc/crypttab":                    crypttabData,
				"etc/fstab":                       fstabData,
				"usr/share/doc/dracut-004/README": "dracut\n",
			}
		},
	},
	{
		name: "al1-2018.03-absolute-links", family: FamilyLegacySysV, arg: "rd_NO_LUKS", vol: myVol,
		edited: []string{"/boot/grub/menu.lst", "/etc/fstab"},
		files: func(t testing.TB) fakeRoot {
			return fakeRoot{
				"boot/grub/menu.lst":  "fixture:02-amazon-linux-2018.03-hvm-menu.lst",
				"boot/grub/grub.conf": "->/boot/grub/menu.lst",
				"etc/grub.conf":       "->/boot/grub/grub.conf",
				"etc/os-release":      "NAME=\"Amazon Linux AMI\"\nVERSION=\"2018.03\"\nID=\"amzn\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"2018.03\"\nPRETTY_NAME=\"Amazon Linux AMI 2018.03\"\n",
				"etc/fstab":           fstabData,
			}
		},
	},
	{
		name: "centos6", family: FamilyLegacySysV, arg: "rd_NO_LUKS", vol: myVol,
		edited: []string{"/etc/crypttab", "/etc/fstab"}, // grub.conf already has rd_NO_LUKS
		files: func(t testing.TB) fakeRoot {
			return fakeRoot{
				"boot/grub/grub.conf": "fixture:04-centos6-anaconda-grub.conf",
				"boot/grub/menu.lst":  "->./grub.conf",
				"etc/grub.conf":       "->../boot/grub/grub.conf",
				"etc/redhat-release":  "CentOS release 6.6 (Final)\n",
				"etc/crypttab":        "my_enc_fs\t/dev/xvdf\tnone\n",
				"etc/fstab":           fstabData,
			}
		},
	},
	{
		name: "rhel6-xen-no-arg-yet", family: FamilyLegacySysV, arg: "rd_NO_LUKS", vol: myVol,
		edited: []string{"/boot/grub/grub.conf"},
		files: func(t testing.TB) fakeRoot {
			return fakeRoot{
				"boot/grub/grub.conf": "default=0\ntimeout=5\ntitle RHEL Xen\n\troot (hd0,0)\n\tkernel /xen.gz-2.6.32 dom0_mem=1G\n\tmodule /vmlinuz-2.6.32 ro root=/dev/sda2\n\tmodule /initramfs-2.6.32.img\ntitle RHEL\n\troot (hd0,0)\n\tkernel /vmlinuz-2.6.32 ro root=/dev/sda2\n\tinitrd /initramfs-2.6.32.img\n",
				"etc/grub.conf":       "->../boot/grub/grub.conf",
				"etc/redhat-release":  "Red Hat Enterprise Linux Server release 6.5 (Santiago)\n",
			}
		},
	},
	{
		name: "al2", family: FamilyGRUB2, arg: "rd.luks=0", vol: myVol,
		edited: []string{"/boot/grub2/grub.cfg", "/etc/default/grub", "/etc/crypttab", "/etc/fstab"},
		files: func(t testing.TB) fakeRoot {
			return fakeRoot{
				"etc/default/grub":                 "fixture:07-amazon-linux-2-etc-default-grub",
				"etc/os-release":                   "NAME=\"Amazon Linux\"\nVERSION=\"2\"\nID=\"amzn\"\nID_LIKE=\"centos rhel fedora\"\nVERSION_ID=\"2\"\nPRETTY_NAME=\"Amazon Linux 2\"\n",
				"usr/lib/dracut/dracut-version.sh": "DRACUT_VERSION=033-535.amzn2.1.2\n",
				"boot/grub2/grub.cfg":              al2GrubCfg,
				"etc/crypttab":                     crypttabData,
				"etc/fstab":                        fstabData,
			}
		},
	},
	{
		name: "rhel7-xen-pvgrub", family: FamilyGRUB2, arg: "rd.luks=0", vol: myVol,
		edited: []string{"/boot/grub/grub.conf", "/etc/default/grub"},
		files: func(t testing.TB) fakeRoot {
			return fakeRoot{
				"boot/grub/grub.conf": "fixture:06-rhel7-xen-pvgrub-grub.conf",
				"etc/default/grub":    "GRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX='console=hvc0 LANG=en_US.UTF-8'\n",
				"etc/os-release":      "ID=\"rhel\"\nVERSION_ID=\"7.8\"\n",
			}
		},
	},
	{
		name: "centos8-kernelopts", family: FamilyBLSKernelopts, arg: "rd.luks=0", vol: myVol,
		edited: []string{"/etc/default/grub", "/boot/efi/EFI/centos/grubenv", "/etc/crypttab", "/etc/fstab"},
		files: func(t testing.TB) fakeRoot {
			return fakeRoot{
				"boot/loader/entries/9af7b02ac08149d985841c07c8ff366e-5.18.0.conf": "fixture:09-centos8-stream-bls-entry-kernelopts.conf",
				"boot/efi/EFI/centos/grubenv":                                      paddedGrubenv(t),
				"boot/grub2/grubenv":                                               "->../efi/EFI/centos/grubenv",
				"etc/default/grub":                                                 strings.Replace(rhelDefaults, "console=tty0 console=ttyS0,115200n8 nvme_core.io_timeout=4294967295 rd.emergency=poweroff rd.shell=0 selinux=1 security=selinux quiet", "crashkernel=auto rhgb quiet console=ttyS1,57600n8", 1),
				"etc/os-release":                                                   "NAME=\"CentOS Stream\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"8\"\n",
				"usr/lib/dracut/modules.d/90crypt/parse-crypt.sh":                  "if ! getargbool 1 rd.luks -d -n rd_NO_LUKS; then\n",
				"etc/crypttab":                                                     crypttabData,
				"etc/fstab":                                                        fstabData,
			}
		},
	},
	{
		name: "al2023-bls", family: FamilyBLS, arg: "rd.luks=0", vol: myVol,
		edited: []string{"/etc/default/grub", "/boot/loader/entries/ec2a0b39b1e83ac01ea1c63c4fb0e6ba-6.1.170-213.321.amzn2023.x86_64.conf", "/etc/kernel/cmdline", "/etc/crypttab", "/etc/fstab"},
		files: func(t testing.TB) fakeRoot {
			return fakeRoot{
				"boot/loader/entries/ec2a0b39b1e83ac01ea1c63c4fb0e6ba-6.1.170-213.321.amzn2023.x86_64.conf": "fixture:08-al2023-bls-entry.conf",
				"etc/default/grub":                 rhelDefaults,
				"boot/grub2/grub.cfg":              blsGrubCfg,
				"boot/efi/EFI/amzn/grub.cfg":       "search --no-floppy --fs-uuid --set=dev afcd3653\nset prefix=($dev)/boot/grub2\nconfigfile $prefix/grub.cfg\n",
				"boot/efi/EFI/BOOT/BOOTX64.EFI":    "MZ",
				"etc/os-release":                   "NAME=\"Amazon Linux\"\nVERSION=\"2023\"\nID=\"amzn\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"2023\"\nPRETTY_NAME=\"Amazon Linux 2023.6.20241010\"\n",
				"usr/lib/dracut/dracut-version.sh": "DRACUT_VERSION=055\n",
				"etc/crypttab":                     crypttabData,
				"etc/fstab":                        fstabData,
			}
		},
	},
	{
		name: "rhel9-kernel-cmdline", family: FamilyBLS, arg: "rd.luks=0", vol: Volume{Name: "my_enc_fs", Device: "UUID=3f5ad593-4546-4a94-a374-bcfb68aa11f7"},
		edited: []string{"/etc/default/grub", "/boot/loader/entries/a-5.14.0-362.el9.x86_64.conf", "/boot/loader/entries/a-5.14.0-427.el9.x86_64.conf", "/etc/kernel/cmdline", "/etc/crypttab"},
		files: func(t testing.TB) fakeRoot {
			entry := "title Red Hat Enterprise Linux (%s) 9.4 (Plow)\nversion %s\nlinux /vmlinuz-%s\ninitrd /initramfs-%s.img $tuned_initrd\noptions root=UUID=0c3bdc6e-1e7d-4e2b-a3d0-8d1b2c3d4e5f console=ttyS0,115200n8 no_timer_check net.ifnames=0 $tuned_params\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class rhel\n"
			mk := func(v string) string { return fmt.Sprintf(entry, v, v, v, v) }
			return fakeRoot{
				"boot/loader/entries/a-5.14.0-362.el9.x86_64.conf": mk("5.14.0-362.el9.x86_64"),
				"boot/loader/entries/a-5.14.0-427.el9.x86_64.conf": mk("5.14.0-427.el9.x86_64"),
				"etc/kernel/cmdline": "root=UUID=0c3bdc6e-1e7d-4e2b-a3d0-8d1b2c3d4e5f console=ttyS0,115200n8 no_timer_check net.ifnames=0\n",
				"etc/default/grub":   rhelDefaults,
				"etc/os-release":     "ID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\n",
				"etc/crypttab":       "data UUID=3f5ad593-4546-4a94-a374-bcfb68aa11f7 none luks,discard\n",
			}
		},
	},
	{
		name: "ubuntu-22.04", family: FamilyDebian, arg: "rd.luks=0", vol: myVol,
		edited: []string{"/boot/grub/grub.cfg", "/etc/default/grub", "/etc/crypttab", "/etc/fstab"},
		files: func(t testing.TB) fakeRoot {
			return fakeRoot{
				"boot/grub/grub.cfg":                          ubuntuGrubCfg,
				"etc/default/grub":                            "fixture:10-ubuntu-22.04-etc-default-grub",
				"etc/default/grub.d/50-cloudimg-settings.cfg": "fixture:11-ubuntu-ec2-etc-default-grub.d-50-cloudimg-settings.cfg",
				"etc/default/grub.d/init-select.cfg":          "# Managed by init-select\n",
				"etc/os-release":                              "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\nID_LIKE=debian\n",
				"etc/crypttab":                                "my_enc_fs UUID=3f5ad593-4546-4a94-a374-bcfb68aa11f7 none luks\n",
				"etc/fstab":                                   "LABEL=cloudimg-rootfs\t/\t ext4\tdiscard,errors=remount-ro\t0 1\n/dev/mapper/my_enc_fs /encrypted_vol ext4 defaults 0 2\n",
			}
		},
	},
	{
		name: "ubuntu-dropin-overrides-cmdline", family: FamilyDebian, arg: "rd.luks=0", vol: myVol,
		edited: []string{"/etc/default/grub.d/99-cloudluks.cfg", "/etc/crypttab"},
		files: func(t testing.TB) fakeRoot {
			return fakeRoot{
				"etc/default/grub": "fixture:10-ubuntu-22.04-etc-default-grub",
				"etc/default/grub.d/50-cloudimg-settings.cfg": "fixture:11-ubuntu-ec2-etc-default-grub.d-50-cloudimg-settings.cfg",
				"etc/default/grub.d/60-serial.cfg":            "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX console=ttyS0,115200\"\n",
				"etc/default/grub.d/zz-after.cfg":             "GRUB_TIMEOUT=3\n",
				"etc/os-release":                              "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\n",
				"etc/crypttab":                                "my_enc_fs /dev/nvme1n1 none luks\n",
			}
		},
	},
	{
		name: "debian-12", family: FamilyDebian, arg: "rd.luks=0", vol: myVol,
		edited: []string{"/etc/default/grub", "/etc/crypttab"},
		files: func(t testing.TB) fakeRoot {
			return fakeRoot{
				"etc/default/grub":   "GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_DISTRIBUTOR=`( . /etc/os-release; echo ${NAME:-Debian} ) 2>/dev/null || echo Debian`\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"\"\n",
				"etc/debian_version": "12.7\n",
				"etc/crypttab":       "my_enc_fs\t/dev/xvdf\tnone\tluks,initramfs\n",
			}
		},
	},
	{
		name: "debian-legacy-ec2-kopt", family: FamilyDebian, arg: "rd.luks=0", vol: myVol,
		edited: []string{"/boot/grub/menu.lst"},
		files: func(t testing.TB) fakeRoot {
			return fakeRoot{
				"boot/grub/menu.lst": "default\t\t0\ntimeout\t\t0\n\n### BEGIN AUTOMAGIC KERNELS LIST\n## ## Start Default Options ##\n## e.g. kopt=root=/dev/hda1 ro\n# kopt=root=LABEL=cloudimg-rootfs ro console=hvc0\n## ## End Default Options ##\n\ntitle\t\tUbuntu 12.04 LTS, kernel 3.2.0-23-virtual\nroot\t\t(hd0)\nkernel\t\t/boot/vmlinuz-3.2.0-23-virtual root=LABEL=cloudimg-rootfs ro console=hvc0\ninitrd\t\t/boot/initrd.img-3.2.0-23-virtual\n\n### END DEBIAN AUTOMAGIC KERNELS LIST\n",
				"etc/os-release":     "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"12.04\"\n",
			}
		},
	},
}
