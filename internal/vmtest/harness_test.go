package vmtest

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

func TestDiskNaming(t *testing.T) {
	disks := []Disk{
		{Path: "a", NVMeSerial: "vol0123456789abcdef0"},
		{Path: "b"},
		{Path: "c", NVMeSerial: "second"},
		{Path: "d"},
	}
	env := disksEnv(disks)
	assert.Equal(t, "nvme:vol0123456789abcdef0,virtio:vmtest-disk-1,nvme:second,virtio:vmtest-disk-3", env)

	kinds := []string{"nvme", "virtio", "nvme", "virtio"}
	assert.Equal(t, "nvme0n1", diskFallbackName(kinds, 0))
	assert.Equal(t, "vda", diskFallbackName(kinds, 1))
	assert.Equal(t, "nvme1n1", diskFallbackName(kinds, 2))
	assert.Equal(t, "vdb", diskFallbackName(kinds, 3))
	many := make([]string, 28)
	for i := range many {
		many[i] = "virtio"
	}
	assert.Equal(t, "vdz", diskFallbackName(many, 25))
	assert.Equal(t, "vdaa", diskFallbackName(many, 26))
	assert.Equal(t, "vdab", diskFallbackName(many, 27))

	// A fake /sys/block where enumeration disagrees with the order of Options.Disks: the
	// serial wins.
	sys := t.TempDir()
	write := func(p, s string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(sys, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(sys, p), []byte(s), 0o644))
	}
	write("nvme0n1/device/serial", "second              \n")
	write("nvme1n1/device/serial", "vol0123456789abcdef0\n")
	write("vda/serial", "vmtest-disk-1")
	write("loop0/size", "0")
	assert.Equal(t, "/dev/nvme1n1", guestDisk(env, sys, 0))
	assert.Equal(t, "/dev/vda", guestDisk(env, sys, 1))
	assert.Equal(t, "/dev/nvme0n1", guestDisk(env, sys, 2))
	assert.Equal(t, "/dev/vdb", guestDisk(env, sys, 3), "not visible: enumeration-order name")
	assert.Panics(t, func() { guestDisk(env, sys, 4) })
	assert.Panics(t, func() { guestDisk("", sys, 0) })
	assert.Panics(t, func() { GuestDisk(0) }, "GuestDisk outside the VM is a programming error")
}

func TestOptionsValidate(t *testing.T) {
	ok := Options{
		Disks: []Disk{{Path: "/x", NVMeSerial: "vol0123456789abcdef0"}, {Path: "/y"}},
		Env:   map[string]string{"A_1": "x/y:z"},
	}
	assert.NoError(t, ok.validate())
	assert.NoError(t, Options{Net: &Net{GuestPort: 22}}.validate())
	for name, o := range map[string]Options{
		"empty path":        {Disks: []Disk{{}}},
		"long serial":       {Disks: []Disk{{Path: "/x", NVMeSerial: "vol0123456789abcdef01"}}},
		"comma in serial":   {Disks: []Disk{{Path: "/x", NVMeSerial: "a,b"}}},
		"space in serial":   {Disks: []Disk{{Path: "/x", NVMeSerial: "a b"}}},
		"bad env name":      {Env: map[string]string{"1A": "x"}},
		"dotted env name":   {Env: map[string]string{"a.b": "x"}},
		"reserved env name": {Env: map[string]string{"CLOUDLUKS_VM_DISKS": "x"}},
		"space in value":    {Env: map[string]string{"A": "x y"}},
		"no guest port":     {Net: &Net{}},
		"guest port range":  {Net: &Net{GuestPort: 65536}},
		"host port range":   {Net: &Net{GuestPort: 22, HostPort: -1}},
	} {
		t.Run(name, func(t *testing.T) { assert.Error(t, o.validate()) })
	}
	assert.Equal(t, DefaultTimeout, Options{}.timeout())
	assert.Equal(t, DefaultMemory, Options{}.memory())
	assert.Equal(t, "1G", Options{Memory: "1G"}.memory())
}

func TestFindKernel(t *testing.T) {
	dir := t.TempDir()
	_, err := findKernel(dir)
	assert.ErrorIs(t, err, errNoKernel)
	for _, rel := range []string{"6.1.0-9-cloud-amd64", "6.1.0-56-cloud-amd64", "6.1.0-60-cloud-amd64"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "boot"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "boot", "vmlinuz-"+rel), nil, 0o644))
		if rel != "6.1.0-60-cloud-amd64" { // unpacked without modules: not usable
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "lib", "modules", rel, "kernel"), 0o755))
		}
	}
	k, err := findKernel(dir)
	require.NoError(t, err)
	assert.Equal(t, "6.1.0-56-cloud-amd64", k.Release)
	assert.Equal(t, filepath.Join(dir, "boot", "vmlinuz-6.1.0-56-cloud-amd64"), k.Vmlinuz)
	assert.Equal(t, filepath.Join(dir, "lib", "modules", "6.1.0-56-cloud-amd64", "kernel"), k.ModDir)

	t.Setenv(EnvDir, dir)
	assert.Equal(t, dir, kernelDir())
	t.Setenv(EnvDir, "")
	assert.Equal(t, DefaultDir, kernelDir())
}

func TestVersionLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		less bool
	}{
		{"6.1.0-9-cloud-amd64", "6.1.0-56-cloud-amd64", true},
		{"6.1.0-56-cloud-amd64", "6.1.0-9-cloud-amd64", false},
		{"6.1.0-56", "6.10.0-1", true},
		{"6.1.0-56", "6.1.0-56", false},
		{"6.1", "6.1.0", true},
		{"a", "b", true},
	} {
		assert.Equal(t, tc.less, versionLess(tc.a, tc.b), "%s < %s", tc.a, tc.b)
	}
}

func TestSharedLibs(t *testing.T) {
	cs := testenv.LookPath(t, "cryptsetup", "apt-get install cryptsetup-bin")
	libs, err := sharedLibs([]string{cs}, systemLibDirs())
	require.NoError(t, err)
	names := map[string]bool{}
	for _, l := range libs {
		names[filepath.Base(l)] = true
		assert.True(t, filepath.IsAbs(l))
	}
	for _, want := range []string{"ld-linux-x86-64.so.2", "libc.so.6", "libcryptsetup.so.12", "libdevmapper.so.1.02.1", "libcrypto.so.3"} {
		assert.True(t, names[want], "%s missing from %v", want, libs)
	}
	// Transitive: libcryptsetup needs libdevmapper, which needs libselinux (Debian build).
	assert.True(t, names["libselinux.so.1"], "transitive dependencies: %v", libs)

	// ldd agrees (when present) on every library.
	if ldd, err := exec.LookPath("ldd"); err == nil {
		out, err := exec.Command(ldd, cs).Output()
		require.NoError(t, err)
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[1] == "=>" {
				assert.True(t, names[filepath.Base(f[2])], "ldd lists %s", f[2])
			}
		}
	}

	script := filepath.Join(t.TempDir(), "script")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755))
	libs, err = sharedLibs([]string{script}, systemLibDirs())
	require.NoError(t, err)
	assert.Empty(t, libs, "scripts have no ELF dependencies")

	_, err = sharedLibs([]string{cs}, []string{t.TempDir()})
	assert.ErrorContains(t, err, "not found")
}

func TestIsStatic(t *testing.T) {
	cs := testenv.LookPath(t, "cryptsetup", "apt-get install cryptsetup-bin")
	assert.False(t, isStatic(cs))
	assert.False(t, isStatic(filepath.Join(t.TempDir(), "missing")))
}

func TestGuestPath(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "usr", "bin"), 0o755))
	require.NoError(t, os.Symlink("usr/bin", filepath.Join(dir, "bin")))
	assert.Equal(t, filepath.Join(dir, "usr", "bin", "mkfs.ext4"), guestPath(filepath.Join(dir, "bin", "mkfs.ext4")),
		"directory resolved, name kept")
	assert.Equal(t, "/nonexistent/x", guestPath("/nonexistent/x"))
	assert.True(t, guestReserved("/init"))
	assert.True(t, guestReserved("/modules/x.ko"))
	assert.True(t, guestReserved("/dev/null"))
	assert.False(t, guestReserved("/usr/sbin/cryptsetup"))
	assert.False(t, guestReserved("/initx"))
}

// TestWriteInitramfs builds a real image (static init, a module, a tool) and reads it back.
func TestWriteInitramfs(t *testing.T) {
	cs := testenv.LookPath(t, "cryptsetup", "apt-get install cryptsetup-bin")
	dir := t.TempDir()
	initBin := filepath.Join(dir, "init.bin")
	require.NoError(t, os.WriteFile(initBin, []byte("\x7fELF fake init"), 0o700))
	ko := filepath.Join(dir, "dm-mod.ko")
	require.NoError(t, os.WriteFile(ko, []byte("module"), 0o644))
	extra := "/etc/os-release" // any host file outside the paths the guest mounts over
	extraData, err := os.ReadFile(extra)
	if err != nil {
		t.Skipf("no %s on this host", extra)
	}
	extraStat, err := os.Stat(extra)
	require.NoError(t, err)

	spec := initramfsSpec{
		Init:     initBin,
		Modules:  []moduleRef{{Name: "dm_mod", Path: ko}, {Name: "aesni_intel", Path: ko, Optional: true}},
		Programs: []string{cs},
		Files:    []string{extra},
	}
	var plain, gz bytes.Buffer
	require.NoError(t, writeInitramfs(&plain, spec))
	spec.Gzip = true
	require.NoError(t, writeInitramfs(&gz, spec))
	zr, err := gzip.NewReader(&gz)
	require.NoError(t, err)
	unzipped, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Equal(t, plain.Bytes(), unzipped, "same archive either way, byte for byte (reproducible)")
	assert.Less(t, gz.Len(), plain.Len())

	members := map[string]cpioMember{}
	require.NoError(t, readCPIO(&plain, func(h cpioHeader, r io.Reader) error {
		b, err := io.ReadAll(r)
		members[h.Name] = cpioMember{h.Name, h.Mode, string(b), h.RDevMajor, h.RDevMinor}
		return err
	}))
	assert.Equal(t, "\x7fELF fake init", members["init"].Data)
	assert.Equal(t, uint32(modeFile|0o755), members["init"].Mode)
	assert.Equal(t, "00-dm_mod.ko\n01-aesni_intel.ko optional\n", members["modules/order"].Data)
	assert.Equal(t, "module", members["modules/00-dm_mod.ko"].Data)
	assert.Equal(t, cpioMember{Name: "dev/console", Mode: modeChr | 0o600, Major: 5, Minor: 1}, members["dev/console"])
	for _, d := range []string{"dev", "proc", "sys", "run", "run/cryptsetup", "tmp", "mnt", "etc"} {
		assert.Equal(t, uint32(modeDir), members[d].Mode&modeType, "%s is a directory", d)
	}
	assert.Equal(t, string(extraData), members[strings.TrimPrefix(guestPath(extra), "/")].Data)
	assert.Equal(t, modeFile|uint32(extraStat.Mode().Perm()), members[strings.TrimPrefix(guestPath(extra), "/")].Mode, "host permissions kept")
	csGuest := strings.TrimPrefix(guestPath(cs), "/")
	assert.NotEmpty(t, members[csGuest].Data, "the tool itself")
	var haveLoader, haveLibc bool
	for n := range members {
		haveLoader = haveLoader || strings.HasSuffix(n, "/ld-linux-x86-64.so.2")
		haveLibc = haveLibc || strings.HasSuffix(n, "/libc.so.6")
	}
	assert.True(t, haveLoader, "the ELF interpreter")
	assert.True(t, haveLibc, "the C library")
	if target, err := os.Readlink("/lib64"); err == nil {
		assert.Equal(t, target, members["lib64"].Data, "merged /usr mirrored")
	}

	err = writeInitramfs(io.Discard, initramfsSpec{Init: initBin, Files: []string{"/dev/null"}})
	assert.ErrorContains(t, err, "shadow")
	err = writeInitramfs(io.Discard, initramfsSpec{Init: initBin, Files: []string{"/tmp/vmtest-in-tmp"}})
	assert.ErrorContains(t, err, "shadow", "/tmp is a fresh tmpfs in the guest")
	// GuestFiles places a host file (here one under /tmp, like a checkout there) elsewhere.
	inTmp := filepath.Join(os.TempDir(), "vmtest-guestfile")
	require.NoError(t, os.WriteFile(inTmp, []byte("sample"), 0o644))
	defer os.Remove(inTmp)
	var gb bytes.Buffer
	require.NoError(t, writeInitramfs(&gb, initramfsSpec{Init: initBin, GuestFiles: map[string]string{"/samples/s": inTmp}}))
	got := readAll(t, gb.Bytes())
	found := false
	for _, m := range got {
		found = found || (m.Name == "samples/s" && m.Data == "sample")
	}
	assert.True(t, found, "GuestFiles member at its guest path")
	err = writeInitramfs(io.Discard, initramfsSpec{Init: initBin, GuestFiles: map[string]string{"/tmp/s": inTmp}})
	assert.ErrorContains(t, err, "shadow")
	err = writeInitramfs(io.Discard, initramfsSpec{Init: filepath.Join(dir, "missing")})
	assert.Error(t, err)
}

func TestResolveTools(t *testing.T) {
	cs := testenv.LookPath(t, "cryptsetup", "apt-get install cryptsetup-bin")
	got, err := resolveTools([]string{"cryptsetup", "/bin/true"})
	require.NoError(t, err)
	assert.Equal(t, []string{cs, "/bin/true"}, got)
	_, err = resolveTools([]string{"no-such-tool-vmtest"})
	assert.Error(t, err)
	extras := toolExtras([]string{cs})
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/ossl-modules/legacy.so"); err == nil {
		assert.Contains(t, extras, "/usr/lib/x86_64-linux-gnu/ossl-modules/legacy.so", "cryptsetup's whirlpool/ripemd160 need OpenSSL's legacy provider")
	}
	assert.Empty(t, toolExtras(nil))
}

func TestNewDiskImage(t *testing.T) {
	p := NewDiskImage(t, 64<<20)
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, int64(64<<20), st.Size())
	assert.NotEqual(t, p, NewDiskImage(t, 1<<20), "each call makes a new image")
}

func TestQemuArgs(t *testing.T) {
	args := strings.Join(qemuArgs("/k/vmlinuz", "/i.gz", "console=ttyS0", Options{Disks: []Disk{
		{Path: "/d/a,b.img", NVMeSerial: "vol1"}, {Path: "/d/c.img"},
	}}), " ")
	for _, want := range []string{
		"-M q35", "-cpu max", "-accel tcg", "-m 512M", "-nic none", "-no-reboot",
		"-kernel /k/vmlinuz", "-initrd /i.gz", "-append console=ttyS0",
		"-drive file=/d/a,,b.img,if=none,id=d0,format=raw", "-device nvme,serial=vol1,drive=d0",
		"-drive file=/d/c.img,if=none,id=d1,format=raw", "-device virtio-blk-pci,drive=d1,serial=vmtest-disk-1",
	} {
		assert.Contains(t, args, want)
	}
	assert.NotContains(t, args, "kvm")
	assert.NotContains(t, args, "-netdev")

	args = strings.Join(qemuArgs("/k/vmlinuz", "/i.gz", "console=ttyS0", Options{Net: &Net{GuestPort: 22, HostPort: 40022}}), " ")
	assert.Contains(t, args, "-netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22 -device virtio-net-pci,netdev=n0,romfile=")
	assert.NotContains(t, args, "-nic none")
}

// TestBootWithFakeQemu drives boot() with shell scripts standing in for qemu, to cover the
// outcomes a real VM produces rarely: a hang (killed at the timeout), a crashed init, a VM that
// stops without a result, and a qemu that cannot start.
func TestBootWithFakeQemu(t *testing.T) {
	sh := testenv.LookPath(t, "sh", "a POSIX shell")
	const nonce = "abc123"
	tests := []struct {
		name    string
		script  string
		timeout time.Duration
		found   bool
		rc      int
		why     string
	}{
		{"pass", "echo '=== RUN   TestX'; echo; echo 'VMTEST-RESULT abc123 rc=0'", time.Minute, true, 0, ""},
		{"fail", "printf 'VMTEST-RESULT abc123 rc=1\\r\\n'", time.Minute, true, 1, ""},
		{"hang", "echo booting; exec sleep 60", 500 * time.Millisecond, false, 0, "timed out"},
		{"init exited", "echo 'panic: x'; echo '[ 1.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100'", time.Minute, false, 0, "status 0x100"},
		{"no result", "echo nothing", time.Minute, false, 0, "without printing the result line"},
		{"qemu error", "echo 'qemu: could not open disk' >&2; exit 1", time.Minute, false, 0, "exit status 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := boot(t, sh, []string{"-c", tc.script}, nonce, tc.timeout)
			assert.Equal(t, tc.found, res.found)
			assert.Equal(t, tc.rc, res.rc)
			if tc.why != "" {
				assert.Contains(t, res.why, tc.why)
			}
		})
	}
	res := boot(t, filepath.Join(t.TempDir(), "no-qemu"), nil, nonce, time.Minute)
	assert.False(t, res.found)
	assert.Contains(t, res.why, "starting qemu")
}

func TestRebuildTarget(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	assert.Equal(t, "github.com/cloudluks/cloudluks/internal/vmtest", rebuildTarget(self))
	assert.Equal(t, ".", rebuildTarget(filepath.Join(t.TempDir(), "missing")))
	assert.Nil(t, rebuildFlags(filepath.Join(t.TempDir(), "missing")))
}

func TestWithSSH(t *testing.T) {
	hostKey, _ := NewSSHKey(t)
	_, client := NewSSHKey(t)
	line := AuthorizedKey(`restrict,command="/usr/local/sbin/x serve"`, client.PublicKey())
	assert.True(t, strings.HasPrefix(line, `restrict,command="/usr/local/sbin/x serve" ssh-ed25519 `), line)
	o, err := withSSH(Options{Net: &Net{GuestPort: 22}, SSH: &SSH{HostKey: hostKey, AuthorizedKeys: line}, Tools: []string{"cat"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"cat", SSHD, "sh"}, o.Tools)
	st, err := os.Stat(o.GuestFiles["/etc/ssh/ssh_host_ed25519_key"])
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "sshd refuses a readable host key")
	b, err := os.ReadFile(o.GuestFiles["/root/.ssh/authorized_keys"])
	require.NoError(t, err)
	assert.Equal(t, line, string(b))
	assert.Contains(t, o.GuestFiles, "/etc/ssh/sshd_config")

	_, err = withSSH(Options{SSH: &SSH{HostKey: []byte("nope")}})
	assert.ErrorContains(t, err, "HostKey")
	_, err = withSSH(Options{SSH: &SSH{HostKey: hostKey, AuthorizedKeys: "ssh-ed25519 garbage\n"}})
	assert.ErrorContains(t, err, "AuthorizedKeys line 1")
	_, err = withSSH(Options{SSH: &SSH{HostKey: hostKey}, GuestFiles: map[string]string{"/etc/ssh/sshd_config": "/x"}})
	assert.ErrorContains(t, err, "provides it")
	assert.ErrorContains(t, Options{SSH: &SSH{HostKey: hostKey}}.validate(), "needs Options.Net")
}
