package grubconf

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	storeSerial = "/dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_AWS1A2B3C4D5E6F7A8B9"
	ebsByID     = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0"
)

var (
	swapScratch = Scratch{Name: "cryptswap", Kind: ScratchSwap, Device: storeSerial}
	tmpScratch  = Scratch{Name: "crypttmp", Kind: ScratchTmp, Device: ebsByID}
)

func planApply(t *testing.T, root string, sc Scratch) *Plan {
	t.Helper()
	sys, err := Detect(root)
	require.NoError(t, err)
	p, err := sys.PlanScratch(sc)
	require.NoError(t, err)
	require.NoError(t, p.Apply(ApplyOptions{}))
	return p
}

func undoApply(t *testing.T, root, name string) {
	t.Helper()
	sys, err := Detect(root)
	require.NoError(t, err)
	u, err := sys.PlanUndo(name)
	require.NoError(t, err)
	require.Empty(t, u.Warnings)
	require.NoError(t, u.Apply(ApplyOptions{}))
}

// TestScratchEveryFamily: golden diffs of the swap and tmp lines on every family's fake
// root, apply twice = apply once, and byte-exact undo in either order.
func TestScratchEveryFamily(t *testing.T) {
	for _, rc := range rootCases {
		for _, noFinalNL := range []bool{false, true} {
			name := rc.name
			if noFinalNL {
				name += "/no-final-newline"
			}
			t.Run(name, func(t *testing.T) {
				root := rc.files(t).build(t)
				if noFinalNL {
					// crypttab and fstab written by hand often end without a newline: the
					// appended lines must not glue onto the last one, in any undo order.
					for _, f := range []string{"etc/crypttab", "etc/fstab"} {
						b, err := os.ReadFile(filepath.Join(root, f))
						if errors.Is(err, fs.ErrNotExist) {
							continue
						}
						require.NoError(t, err)
						require.NoError(t, os.WriteFile(filepath.Join(root, f), bytes.TrimRight(b, "\n"), 0o644))
					}
				}
				before := treeState(t, root, false)

				var diff bytes.Buffer
				for _, sc := range []Scratch{swapScratch, tmpScratch} {
					p := planApply(t, root, sc)
					require.NotEmpty(t, p.Changes)
					require.NoError(t, p.Diff(&diff))
					for _, c := range p.Changes {
						require.True(t, c.Path == "/etc/crypttab" || c.Path == "/etc/fstab" || isScratchFile(c.Path),
							"only crypttab, fstab and the tmp line's drop-ins are edited: %s", c.Path)
					}
					if rc.family == FamilyLegacySysV {
						require.NotEmpty(t, p.Warnings, "SysV warns about the by-id link at boot")
					}
				}
				if !noFinalNL {
					golden(t, "swaptmp/"+rc.name+".diff", diff.Bytes())
				}
				applied := treeState(t, root, false)

				// Apply again: nothing to do, nothing written.
				for _, sc := range []Scratch{swapScratch, tmpScratch} {
					sys, err := Detect(root)
					require.NoError(t, err)
					p, err := sys.PlanScratch(sc)
					require.NoError(t, err)
					require.True(t, p.Empty(), "second plan for %s: %+v", sc.Name, p.Changes)
					require.NoError(t, p.Apply(ApplyOptions{}))
				}
				require.Equal(t, applied, treeState(t, root, false))

				// Undo in the order of application: byte for byte, journal directories gone.
				undoApply(t, root, swapScratch.Name)
				undoApply(t, root, tmpScratch.Name)
				require.Equal(t, before, treeState(t, root, false))

				// And in the reverse order.
				planApply(t, root, swapScratch)
				planApply(t, root, tmpScratch)
				undoApply(t, root, tmpScratch.Name)
				undoApply(t, root, swapScratch.Name)
				require.Equal(t, before, treeState(t, root, false))

				// Apply order again, after a reapply of the first in between.
				planApply(t, root, swapScratch)
				planApply(t, root, tmpScratch)
				undoApply(t, root, swapScratch.Name)
				planApply(t, root, swapScratch)
				undoApply(t, root, tmpScratch.Name)
				undoApply(t, root, swapScratch.Name)
				require.Equal(t, before, treeState(t, root, false))
			})
		}
	}
}

// TestScratchLinesPerFamily pins what each init system is given: explicit cipher, size and
// hash everywhere; SysV gets bare "tmp" (init_crypto runs a bare mke2fs) and an ext2 /tmp
// line with _netdev and pass 0 (mounted by netfs, after init_crypto 1).
func TestScratchLinesPerFamily(t *testing.T) {
	for _, tc := range []struct {
		family           Family
		swapTab, tmpTab  string
		swapFstab, tmpFs string
	}{
		{FamilyLegacySysV,
			"cryptswap " + storeSerial + " /dev/urandom plain,cipher=aes-xts-plain64,size=512,hash=sha256,swap,nofail",
			"crypttmp " + ebsByID + " /dev/urandom plain,cipher=aes-xts-plain64,size=512,hash=sha256,tmp,nofail",
			"/dev/mapper/cryptswap swap swap defaults,nofail 0 0",
			"/dev/mapper/crypttmp /tmp ext2 defaults,nosuid,nodev,nofail,_netdev 0 0"},
		{FamilyBLS,
			"cryptswap " + storeSerial + " /dev/urandom plain,cipher=aes-xts-plain64,size=512,hash=sha256,swap,nofail",
			"crypttmp " + ebsByID + " /dev/urandom plain,cipher=aes-xts-plain64,size=512,hash=sha256,tmp=ext4,nofail",
			"/dev/mapper/cryptswap swap swap defaults,nofail 0 0",
			"/dev/mapper/crypttmp /tmp ext4 nosuid,nodev,nofail,x-systemd.before=local-fs.target,x-systemd.device-timeout=30s 0 0"},
		{FamilyDebian,
			"cryptswap " + storeSerial + " /dev/urandom plain,cipher=aes-xts-plain64,size=512,hash=sha256,swap,nofail",
			"crypttmp " + ebsByID + " /dev/urandom plain,cipher=aes-xts-plain64,size=512,hash=sha256,tmp=ext4,nofail",
			"/dev/mapper/cryptswap none swap sw,nofail 0 0",
			"/dev/mapper/crypttmp /tmp ext4 nosuid,nodev,nofail,x-systemd.before=local-fs.target,x-systemd.device-timeout=30s 0 0"},
	} {
		s := &System{Family: tc.family}
		c, f, err := s.ScratchLines(swapScratch)
		require.NoError(t, err)
		assert.Equal(t, tc.swapTab, c, tc.family)
		assert.Equal(t, tc.swapFstab, f, tc.family)
		c, f, err = s.ScratchLines(tmpScratch)
		require.NoError(t, err)
		assert.Equal(t, tc.tmpTab, c, tc.family)
		assert.Equal(t, tc.tmpFs, f, tc.family)
	}
	s := &System{Family: FamilyGRUB2}
	c, _, err := s.ScratchLines(Scratch{Name: "s", Kind: ScratchSwap, Device: storeSerial, Cipher: "aes-cbc-essiv:sha256", KeySize: 256, Hash: "ripemd160"})
	require.NoError(t, err)
	assert.Equal(t, "s "+storeSerial+" /dev/urandom plain,cipher=aes-cbc-essiv:sha256,size=256,hash=ripemd160,swap,nofail", c)
}

// TestScratchRefusesUnstableNames: a kernel name would make the boot format whatever disk
// gets that number next time; nothing is planned and nothing written.
func TestScratchRefusesUnstableNames(t *testing.T) {
	root := rootCases[0].files(t).build(t)
	before := treeState(t, root, false)
	sys, err := Detect(root)
	require.NoError(t, err)
	for _, dev := range []string{
		"/dev/nvme1n1", "/dev/nvme0n1p2", "/dev/xvdf", "/dev/xvdba", "/dev/sdb", "/dev/sdb1", "nvme1n1",
		"", "/dev/disk/by-id/", "/dev/disk/by-id/../../nvme1n1", "/dev/disk/by-id/a/b", "/dev/disk/by-id/x y",
		"/dev/disk/by-uuid/3f5ad593-4546-4a94-a374-bcfb68aa11f7", "UUID=3f5ad593-4546-4a94-a374-bcfb68aa11f7",
		"/dev/disk/by-path/pci-0000:00:1f.0-nvme-1", "/dev/mapper/x", "/dev/disk/by-id/a,b",
	} {
		for _, k := range []ScratchKind{ScratchSwap, ScratchTmp} {
			p, err := sys.PlanScratch(Scratch{Name: "cryptswap", Kind: k, Device: dev})
			require.ErrorIs(t, err, ErrUnstableDevice, dev)
			require.Nil(t, p)
			require.Contains(t, err.Error(), "by-id")
		}
		require.ErrorIs(t, StableDevice(dev), ErrUnstableDevice, dev)
	}
	require.NoError(t, StableDevice(storeSerial))
	require.NoError(t, StableDevice(ebsByID))
	require.Equal(t, before, treeState(t, root, false))
}

func TestScratchRefusesBadInput(t *testing.T) {
	root := fakeRoot{
		"etc/os-release": "ID=\"rhel\"\nVERSION_ID=\"9.4\"\n",
		"etc/crypttab":   "data " + ebsByID + " none luks\n",
		"etc/fstab":      "tmpfs /tmp tmpfs defaults 0 0\n/dev/mapper/cryptswap none swap sw,nofail 0 0\n",
	}.build(t)
	before := treeState(t, root, false)
	sys, err := Detect(root)
	require.NoError(t, err)
	for _, tc := range []struct {
		sc   Scratch
		want error
	}{
		{Scratch{Name: "data", Kind: ScratchSwap, Device: storeSerial}, ErrInUse},                         // the name is the data volume
		{Scratch{Name: "s2", Kind: ScratchSwap, Device: ebsByID}, ErrInUse},                               // the device is the data volume
		{Scratch{Name: "cryptswap", Kind: ScratchSwap, Device: storeSerial}, ErrInUse},                    // fstab already has /dev/mapper/cryptswap
		{Scratch{Name: "t", Kind: ScratchTmp, Device: storeSerial}, ErrInUse},                             // /tmp is tmpfs already
		{Scratch{Name: "", Kind: ScratchSwap, Device: storeSerial}, ErrInvalidVolume},                     // no name
		{Scratch{Name: "a/b", Kind: ScratchSwap, Device: storeSerial}, ErrInvalidVolume},                  // bad name
		{Scratch{Name: "x", Kind: "home", Device: storeSerial}, ErrInvalidVolume},                         // kind
		{Scratch{Name: "x", Kind: ScratchSwap, Device: storeSerial, Cipher: "aes xts"}, ErrInvalidVolume}, // breaks the line
		{Scratch{Name: "x", Kind: ScratchSwap, Device: storeSerial, Cipher: "aes,swap"}, ErrInvalidVolume},
		{Scratch{Name: "x", Kind: ScratchSwap, Device: storeSerial, KeySize: 7}, ErrInvalidVolume},
		{Scratch{Name: "x", Kind: ScratchTmp, Device: storeSerial, MountPoint: "/"}, ErrInvalidVolume},
		{Scratch{Name: "x", Kind: ScratchTmp, Device: storeSerial, MountPoint: "tmp"}, ErrInvalidVolume},
	} {
		p, err := sys.PlanScratch(tc.sc)
		require.ErrorIs(t, err, tc.want, "%+v", tc.sc)
		require.Nil(t, p)
	}
	require.Equal(t, before, treeState(t, root, false))
	// A line that differs from ours under our name is someone else's, even when it is a
	// swap line: PlanScratch neither rewrites nor duplicates it.
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/crypttab"), []byte("cryptswap "+storeSerial+" /dev/urandom swap\n"), 0o644))
	sys, err = Detect(root)
	require.NoError(t, err)
	_, err = sys.PlanScratch(Scratch{Name: "cryptswap", Kind: ScratchSwap, Device: storeSerial})
	require.ErrorIs(t, err, ErrInUse)
}

// TestScratchSurvivesDisableUnlock: noautomount's edits (PlanDisableUnlock for the data
// volume, or for the kernel arguments only) leave the swap and tmp lines enabled, do not
// take them for LUKS boot evidence, and their undos leave them too.
func TestScratchSurvivesDisableUnlock(t *testing.T) {
	for _, rc := range rootCases {
		t.Run(rc.name, func(t *testing.T) {
			root := rc.files(t).build(t)
			planApply(t, root, swapScratch)
			planApply(t, root, tmpScratch)
			read := func() (string, string) {
				c, _ := os.ReadFile(filepath.Join(root, "etc/crypttab"))
				f, _ := os.ReadFile(filepath.Join(root, "etc/fstab"))
				return string(c), string(f)
			}
			sys, err := Detect(root)
			require.NoError(t, err)
			lines := func() []string {
				var out []string
				for _, sc := range []Scratch{swapScratch, tmpScratch} {
					c, f, err := sys.ScratchLines(sc)
					require.NoError(t, err)
					out = append(out, c+"\n", f+"\n")
				}
				return out
			}()
			check := func(stage string) {
				c, f := read()
				for _, l := range lines {
					require.True(t, strings.Contains(c, "\n"+l) || strings.Contains(f, "\n"+l) || strings.HasPrefix(c, l) || strings.HasPrefix(f, l), "%s: line %q lost or changed:\n%s\n%s", stage, l, c, f)
				}
			}
			for _, v := range []Volume{{}, rc.vol} {
				sys, err := Detect(root)
				require.NoError(t, err)
				p, err := sys.PlanDisableUnlock(v)
				// The same plan without the scratch lines: whatever it refuses, this one may
				// refuse for the same reason; nothing else.
				_, err0 := detectOrFail(t, rc.files(t).build(t)).PlanDisableUnlock(v)
				if err0 != nil {
					require.Equal(t, err0.Error(), err.Error())
					continue
				}
				require.NoError(t, err, "volume %q: swap/tmp lines must not count as LUKS boot evidence", v.Name)
				for _, w := range p.Warnings {
					require.NotContains(t, w, swapScratch.Name)
					require.NotContains(t, w, tmpScratch.Name)
				}
				require.NoError(t, p.Apply(ApplyOptions{}))
				check("after disabling unlock of " + planLabel(v.Name))
				st, err := sys.Status(v)
				require.NoError(t, err)
				require.True(t, st.Disabled, planLabel(v.Name))
			}
			for _, name := range []string{rc.vol.Name, ""} {
				sys, err := Detect(root)
				require.NoError(t, err)
				u, err := sys.PlanUndo(name)
				if errors.Is(err, ErrNoUndo) {
					continue // nothing was needed
				}
				require.NoError(t, err)
				require.NoError(t, u.Apply(ApplyOptions{}))
				check("after undo of " + planLabel(name))
			}
			undoApply(t, root, swapScratch.Name)
			undoApply(t, root, tmpScratch.Name)
			c, f := read()
			require.NotContains(t, c+f, "crypt"+"swap")
			require.NotContains(t, c+f, "crypttmp")
		})
	}
}

func detectOrFail(t *testing.T, root string) *System {
	t.Helper()
	sys, err := Detect(root)
	require.NoError(t, err)
	return sys
}

// TestKernelArgsOnlyWarnsEveryPromptingLine: with no volume named, the plan says which
// crypttab lines still ask for a passphrase at boot. Every type prompts; only lines keyed
// from a random device (the scratch swap and /tmp) do not.
func TestKernelArgsOnlyWarnsEveryPromptingLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		warn bool
	}{
		{"secret /dev/xvdg none plain,cipher=aes-xts-plain64,size=512,hash=sha512\n", true},
		{"win /dev/xvdh none bitlk\n", true},
		{"vc /dev/xvdi - tcrypt\n", true},
		{"data /dev/xvdf none luks\n", true},
		{"cryptswap " + storeSerial + " /dev/urandom plain,cipher=aes-xts-plain64,size=512,hash=sha256,swap,nofail\n", false},
		{"rnd " + ebsByID + " /dev/random plain,swap\n", false},
		{"hw " + ebsByID + " /dev/hw_random plain,swap\n", false},
		{"later /dev/xvdj none luks,noauto\n", false},
	} {
		root := fakeRoot{
			"etc/default/grub": "fixture:07-amazon-linux-2-etc-default-grub",
			"etc/os-release":   "NAME=\"Amazon Linux\"\nID=\"amzn\"\nVERSION_ID=\"2\"\n",
			"etc/crypttab":     tc.line,
			"etc/fstab":        "LABEL=/ / xfs defaults 0 0\n",
		}.build(t)
		sys, err := Detect(root)
		require.NoError(t, err)
		p, err := sys.PlanDisableUnlock(Volume{})
		require.NoError(t, err)
		name := strings.Fields(tc.line)[0]
		found := false
		for _, w := range p.Warnings {
			if strings.Contains(w, "still unlocks "+name+" at boot") {
				found = true
			}
		}
		assert.Equal(t, tc.warn, found, "%q: warnings %q", tc.line, p.Warnings)
	}
}

// TestCheckScratchWithoutDevice: the checks that need no device refuse as PlanScratch
// does, with the device still unknown; a free name and mount point pass.
func TestCheckScratchWithoutDevice(t *testing.T) {
	root := fakeRoot{
		"etc/os-release": "ID=\"rhel\"\nVERSION_ID=\"9.4\"\n",
		"etc/crypttab":   "cryptswap UUID=1 none luks\n",
		"etc/fstab":      "UUID=x / xfs defaults 0 0\ntmpfs /var/tmp tmpfs defaults 0 0\n",
	}.build(t)
	sys, err := Detect(root)
	require.NoError(t, err)
	noDev := func(sc Scratch) Scratch { sc.Device = ""; return sc }
	assert.ErrorIs(t, sys.CheckScratch(noDev(swapScratch)), ErrInUse)
	tmp := noDev(tmpScratch)
	assert.NoError(t, sys.CheckScratch(tmp))
	tmp.MountPoint = "/var/tmp"
	assert.ErrorIs(t, sys.CheckScratch(tmp), ErrInUse)
	tmp.MountPoint = "/usr"
	assert.ErrorIs(t, sys.CheckScratch(tmp), ErrInvalidVolume)
	_, err = sys.PlanScratch(noDev(tmpScratch))
	assert.ErrorIs(t, err, ErrUnstableDevice, "PlanScratch still needs the device")
}

// TestScratchRefusesDiskMountedUnderAnotherName: the by-id name of the scratch device is
// followed inside the root to its kernel name, so a line for the same disk (or one of its
// partitions) under that name, or under the /dev/xvdX link, is refused with ErrInUse;
// another disk with a similar name is not.
func TestScratchRefusesDiskMountedUnderAnotherName(t *testing.T) {
	for _, tc := range []struct {
		fstab, crypttab string
		refused         bool
	}{
		{fstab: "/dev/nvme1n1 /mnt auto defaults,nofail,x-systemd.requires=cloud-init.service,comment=cloudconfig 0 2\n", refused: true},
		{fstab: "/dev/nvme1n1p1 /data ext4 defaults 0 2\n", refused: true},
		{fstab: "/dev/xvdb /mnt auto defaults 0 2\n", refused: true},
		{fstab: storeSerial + " /mnt auto defaults 0 2\n", refused: true},
		{fstab: "/dev/nvme1n1 none swap sw 0 0\n", refused: true},
		{crypttab: "other /dev/nvme1n1 none luks\n", refused: true},
		{crypttab: "other /dev/xvdb1 none luks\n", refused: true},
		{fstab: "/dev/nvme10n1 /mnt auto defaults 0 2\n"},
		{fstab: "/dev/nvme1n10 /mnt auto defaults 0 2\n"},
		{fstab: "/dev/xvdba /mnt auto defaults 0 2\n"},
		{fstab: "UUID=0c3b /mnt ext4 defaults 0 2\n"},
	} {
		root := fakeRoot{
			"etc/os-release":                     "ID=\"rhel\"\nVERSION_ID=\"9.4\"\n",
			"etc/fstab":                          "UUID=x / xfs defaults 0 0\n" + tc.fstab,
			"etc/crypttab":                       tc.crypttab,
			"dev/nvme1n1":                        "",
			"dev/nvme1n1p1":                      "",
			"dev/nvme10n1":                       "",
			"dev/xvdb":                           "->nvme1n1",
			"dev/xvdb1":                          "->nvme1n1p1",
			strings.TrimPrefix(storeSerial, "/"): "->../../nvme1n1",
		}.build(t)
		sys, err := Detect(root)
		require.NoError(t, err)
		_, err = sys.PlanScratch(swapScratch)
		if tc.refused {
			assert.ErrorIs(t, err, ErrInUse, "%q %q", tc.fstab, tc.crypttab)
		} else {
			assert.NoError(t, err, "%q %q", tc.fstab, tc.crypttab)
		}
	}
}

// TestScratchMountPointSystemDirs: a tmp file system is emptied at every boot, so it never
// goes over the system's own directories; /tmp, /var/tmp and places of the caller's own
// choosing are planned.
func TestScratchMountPointSystemDirs(t *testing.T) {
	root := fakeRoot{"etc/os-release": "ID=\"rhel\"\nVERSION_ID=\"9.4\"\n", "etc/fstab": "UUID=x / xfs defaults 0 0\n"}.build(t)
	sys, err := Detect(root)
	require.NoError(t, err)
	for mp, ok := range map[string]bool{
		"/": false, "/usr": false, "/usr/local": false, "/etc": false, "/var": false, "/var/lib/mysql": false, "/var/log": false,
		"/boot": false, "/boot/efi": false, "/home": false, "/root": false, "/opt": false, "/srv": false, "/run/x": false, "/lib64": false,
		"/tmp": true, "/var/tmp": true, "/var/tmp/build": true, "/scratch": true, "/mnt/cache": true, "/home/alice/cache": true, "/var/tmpx": false,
	} {
		sc := tmpScratch
		sc.MountPoint = mp
		_, err := sys.PlanScratch(sc)
		if ok {
			assert.NoError(t, err, mp)
		} else {
			assert.ErrorIs(t, err, ErrInvalidVolume, mp)
		}
	}
}
