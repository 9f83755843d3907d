//go:build linux

package dmcrypt

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/dmcrypt/internal/dm"
	"github.com/cloudluks/cloudluks/dmcrypt/internal/loop"
	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/cloudluks/cloudluks/internal/vmtest"
	"github.com/cloudluks/cloudluks/luks"
)

const cliEnv = "DMCRYPT_GOCRYPTSETUP"

// buildCLI builds cmd/gocryptsetup statically on the host for use in the guest.
func buildCLI(t *testing.T) string {
	t.Helper()
	goTool := testenv.LookPath(t, "go", "install Go")
	// Not under /tmp: the guest mounts a fresh tmpfs there, so the harness cannot place it.
	dir, err := os.MkdirTemp("/var/tmp", "dmcrypt-cli-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "gocryptsetup")
	cmd := exec.Command(goTool, "build", "-o", bin, "../cmd/gocryptsetup")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// TestVMBehaviour boots once for everything beyond the cipher matrix: keyring keys, read-only
// mappings, table flags, every fault (missing device, not LUKS, name in use, unknown name,
// busy mapping and deferred removal, wrong passphrase, a table the kernel rejects, not root),
// each checked to leave nothing behind, and the gocryptsetup binary's open/close/status exit
// codes and status text next to cryptsetup's.
func TestVMBehaviour(t *testing.T) {
	opts := vmtest.Options{Tools: []string{"cryptsetup"}, Timeout: 6 * time.Minute}
	if !vmtest.InVM() {
		bin := buildCLI(t)
		opts.Files = []string{bin}
		opts.Env = map[string]string{cliEnv: bin}
	}
	if !vmtest.Run(t, opts) {
		return
	}
	ctx := context.Background()
	any := OpenOptions{}
	pass := []byte("behaviour pass")
	img := newImage(t, 6<<20)
	h := formatOurs(t, img, "aes-xts-plain64", pass)

	t.Run("control", func(t *testing.T) {
		c, err := dm.OpenControl()
		require.NoError(t, err)
		defer c.Close()
		v := c.Version()
		assert.Equal(t, uint32(4), v[0])
		t.Logf("device-mapper ioctl interface %d.%d.%d", v[0], v[1], v[2])
		l, err := c.List()
		require.NoError(t, err)
		assert.Empty(t, l)

		// Low-level lifecycle with a two-target table (specs padded to 8 bytes) over a loop
		// device, list parsing, suspend/resume.
		lo, err := loop.Attach(img, loop.Options{Autoclear: true})
		require.NoError(t, err)
		defer lo.Close()
		var lst unix.Stat_t
		require.NoError(t, unix.Stat(lo.Path, &lst))
		loDev := strconv.Itoa(int(unix.Major(lst.Rdev))) + ":" + strconv.Itoa(int(unix.Minor(lst.Rdev)))
		info, err := c.Create("lowlevel", "CRYPT-TEMP-lowlevel")
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Remove(ctx, "lowlevel", dm.RemoveOptions{}) })
		assert.False(t, info.ActivePresent)
		_, err = c.Create("lowlevel", "")
		require.ErrorIs(t, err, ErrExists)
		require.NoError(t, c.Load("lowlevel", []dm.Target{
			{Start: 0, Length: 7, Type: "linear", Params: []byte(loDev + " 8")},
			{Start: 7, Length: 9, Type: "error"},
		}, dm.LoadOptions{}))
		info, err = c.Info("lowlevel")
		require.NoError(t, err)
		assert.True(t, info.InactivePresent)
		_, err = c.Resume("lowlevel")
		require.NoError(t, err)
		ts, err := c.Table("lowlevel")
		require.NoError(t, err)
		require.Len(t, ts, 2)
		assert.Equal(t, dm.Target{Start: 0, Length: 7, Type: "linear", Params: []byte(loDev + " 8")}, ts[0])
		assert.Equal(t, dm.Target{Start: 7, Length: 9, Type: "error"}, dm.Target{Start: ts[1].Start, Length: ts[1].Length, Type: ts[1].Type})
		assert.Empty(t, ts[1].Params)
		require.NoError(t, c.Suspend("lowlevel"))
		info, err = c.Info("lowlevel")
		require.NoError(t, err)
		assert.True(t, info.Suspended)
		_, err = c.Resume("lowlevel")
		require.NoError(t, err)
		// Many names check record chaining, uuid parsing and buffer growth.
		for i := range 40 {
			n := "n" + strings.Repeat("x", i)
			_, err := c.Create(n, "uuid-"+strings.Repeat("y", i))
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Remove(ctx, n, dm.RemoveOptions{}) })
		}
		l, err = c.List()
		require.NoError(t, err)
		assert.Len(t, l, 41)
		small, err := c.ListWithBuffer(64) // far too small: the kernel sets DM_BUFFER_FULL_FLAG, we grow
		require.NoError(t, err)
		assert.Equal(t, l, small)
		for _, d := range l {
			if d.Name != "lowlevel" {
				assert.Equal(t, "uuid-"+strings.Repeat("y", len(d.Name)-1), d.UUID, d.Name)
			} else {
				assert.Equal(t, "CRYPT-TEMP-lowlevel", d.UUID)
			}
			require.NoError(t, c.Remove(ctx, d.Name, dm.RemoveOptions{}))
		}
		_, err = c.Info("lowlevel")
		require.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, lo.Close())
		waitLoopDetached(ctx, lo.Path)
		assertNothingLeft(t)
	})

	t.Run("keyring", func(t *testing.T) {
		m, err := Open(ctx, img, "kr", pass, OpenOptions{Keyring: true})
		require.NoError(t, err)
		assert.Empty(t, liveKeys(t), "the key is invalidated right after the load")
		c, err := dm.OpenControl()
		require.NoError(t, err)
		ts, err := c.Table("kr")
		c.Close()
		require.NoError(t, err)
		require.Len(t, ts, 1)
		assert.Contains(t, string(ts[0].Params), " :64:logon:"+dm.KeyDescription(m.UUID)+" ")
		st, err := Status("kr")
		require.NoError(t, err)
		assert.True(t, st.KeyInKeyring)
		ours := ourStatusText(t, "kr")
		assert.Contains(t, ours, "  key location: keyring\n")
		assert.Equal(t, mustRun(t, nil, "cryptsetup", "status", "kr"), ours)
		d := randBytes(t, 64<<10)
		devRW(t, m.Path, 0, d, 0)
		require.NoError(t, Close(ctx, "kr"))
		assert.Equal(t, d, userspaceRW(t, img, pass, 0, nil, len(d)), "a keyring-keyed mapping encrypts with the volume key")
		assertNothingLeft(t)

		// A name with a space (valid for the kernel): the key reference must stay one table
		// argument. (cryptsetup's libdevmapper would mangle such a name to "key\x20ring".)
		m, err = Open(ctx, img, "key ring", pass, OpenOptions{Keyring: true})
		require.NoError(t, err)
		assert.Equal(t, d, devRW(t, m.Path, 0, nil, len(d)))
		require.NoError(t, Close(ctx, "key ring"))
		assertNothingLeft(t)
	})

	t.Run("udev", func(t *testing.T) {
		// Pretend udevd runs (Open checks its control socket) and play udev's dm rules from a
		// goroutine: make /dev/mapper/ud a moment after the device appears. Open must wait for
		// that node instead of racing it with its own mknod.
		require.NoError(t, os.MkdirAll(filepath.Dir(udevControl), 0o755))
		require.NoError(t, os.WriteFile(udevControl, nil, 0o600))
		defer os.RemoveAll(filepath.Dir(udevControl)) // cryptsetup must not think udev runs
		created := make(chan error, 1)
		var udevIno uint64
		go func() {
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				ents, _ := os.ReadDir("/sys/block")
				for _, e := range ents {
					name, err := os.ReadFile("/sys/block/" + e.Name() + "/dm/name")
					if err != nil || strings.TrimSpace(string(name)) != "ud" {
						continue
					}
					time.Sleep(200 * time.Millisecond)
					dev, err := os.ReadFile("/sys/block/" + e.Name() + "/dev")
					if err != nil {
						created <- err
						return
					}
					maj, min, err := dm.ParseMajorMinor(strings.TrimSpace(string(dev)))
					if err == nil {
						err = unix.Mknod("/dev/mapper/ud", unix.S_IFBLK|0o660, int(unix.Mkdev(maj, min)))
					}
					var st unix.Stat_t
					if err == nil {
						err = unix.Stat("/dev/mapper/ud", &st)
						udevIno = st.Ino
					}
					created <- err
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
			created <- errors.New("no dm device named ud appeared")
		}()
		m, err := Open(ctx, img, "ud", pass, any)
		require.NoError(t, err)
		require.NoError(t, <-created, "the fake udev could create the node, so Open had not made one")
		var st unix.Stat_t
		require.NoError(t, unix.Stat(m.Path, &st))
		assert.Equal(t, udevIno, st.Ino, "Open kept udev's node")
		require.NoError(t, Close(ctx, "ud"))
		assertNothingLeft(t)
	})

	t.Run("detached header", func(t *testing.T) {
		hdr := filepath.Join(t.TempDir(), "header.img")
		require.NoError(t, os.WriteFile(hdr, nil, 0o600))
		data := newImage(t, 4<<20)
		hf, err := os.OpenFile(hdr, os.O_RDWR, 0)
		require.NoError(t, err)
		dh, vk, err := luks.Format(ctx, hf, pass, luks.FormatOptions{Detached: true, ForceIterations: testIterations})
		require.NoError(t, err)
		vk.Wipe()
		require.NoError(t, hf.Close())
		assert.Equal(t, uint32(0), dh.PayloadOffset)

		m, err := Open(ctx, data, "det", pass, OpenOptions{Header: hdr})
		require.NoError(t, err)
		st, err := Status("det")
		require.NoError(t, err)
		assert.Equal(t, uint64(0), st.Offset)
		assert.Equal(t, uint64(4<<20/512), st.Size)
		d := randBytes(t, 64<<10)
		devRW(t, m.Path, 0, d, 0)
		assert.Equal(t, mustRun(t, nil, "cryptsetup", "status", "--header", hdr, "det"), ourStatusText(t, "det"))
		require.NoError(t, Close(ctx, "det"))
		assertNothingLeft(t)

		mustRun(t, pass, "cryptsetup", "open", "--header", hdr, "--key-file", "-", data, "det")
		assert.Equal(t, d, devRW(t, "/dev/mapper/det", 0, nil, len(d)), "cryptsetup reads data written through our detached-header mapping")
		mustRun(t, nil, "cryptsetup", "close", "det")
		assertNothingLeft(t)
	})

	t.Run("readonly", func(t *testing.T) {
		m, err := Open(ctx, img, "ro", pass, OpenOptions{ReadOnly: true})
		require.NoError(t, err)
		assert.True(t, m.ReadOnly)
		ro, err := os.ReadFile("/sys/block/" + filepath.Base(m.Device) + "/ro")
		require.NoError(t, err)
		assert.Equal(t, "1", strings.TrimSpace(string(ro)), "the loop device is read-only too")
		f, err := os.OpenFile(m.Path, os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteAt(make([]byte, 4096), 0)
			if err == nil {
				err = f.Sync()
			}
			f.Close()
		}
		require.Error(t, err, "writes to a read-only mapping must fail")
		st, err := Status("ro")
		require.NoError(t, err)
		assert.True(t, st.ReadOnly)
		ours := ourStatusText(t, "ro")
		assert.Contains(t, ours, "  mode:    readonly\n")
		assert.Equal(t, mustRun(t, nil, "cryptsetup", "status", "ro"), ours)
		require.NoError(t, Close(ctx, "ro"))
		assertNothingLeft(t)

		// A read-only block device is mapped read-only without being asked, as cryptsetup
		// maps it (an EBS volume attached read-only looks like this).
		lo, err := loop.Attach(img, loop.Options{ReadOnly: true})
		require.NoError(t, err)
		m, err = Open(ctx, lo.Path, "robd", pass, any)
		require.NoError(t, err)
		assert.True(t, m.ReadOnly)
		assert.Contains(t, ourStatusText(t, "robd"), "  mode:    readonly\n")
		require.NoError(t, Close(ctx, "robd"))
		mustRun(t, pass, "cryptsetup", "open", "--key-file", "-", lo.Path, "robd")
		assert.Contains(t, ourStatusText(t, "robd"), "  mode:    readonly\n", "cryptsetup agrees")
		require.NoError(t, Close(ctx, "robd"))
		require.NoError(t, lo.Detach())
		assertNothingLeft(t)
	})

	t.Run("flags", func(t *testing.T) {
		m, err := Open(ctx, img, "fl", pass, OpenOptions{AllowDiscards: true, SameCPUCrypt: true,
			SubmitFromCryptCPUs: true, NoReadWorkqueue: true, NoWriteWorkqueue: true})
		require.NoError(t, err)
		c, err := dm.OpenControl()
		require.NoError(t, err)
		ts, err := c.Table("fl")
		c.Close()
		require.NoError(t, err)
		require.Len(t, ts, 1)
		assert.True(t, strings.HasSuffix(string(ts[0].Params),
			" 5 allow_discards same_cpu_crypt submit_from_crypt_cpus no_read_workqueue no_write_workqueue"), "kernel echoes the flags")
		clear(ts[0].Params)
		ours := ourStatusText(t, "fl")
		assert.Contains(t, ours, "  flags:   discards same_cpu_crypt submit_from_crypt_cpus no_read_workqueue no_write_workqueue\n")
		assert.Equal(t, mustRun(t, nil, "cryptsetup", "status", "fl"), ours)
		d := randBytes(t, 8192)
		devRW(t, m.Path, 0, d, 0)
		assert.Equal(t, d, devRW(t, m.Path, 0, nil, len(d)))
		require.NoError(t, Close(ctx, "fl"))

		// cryptsetup's flagged mapping as we see it (a subset: trailing space in its flags line).
		mustRun(t, pass, "cryptsetup", "open", "--key-file", "-", "--allow-discards", "--perf-same_cpu_crypt", img, "csfl")
		st, err := Status("csfl")
		require.NoError(t, err)
		assert.True(t, st.AllowDiscards && st.SameCPUCrypt && !st.NoReadWorkqueue)
		assert.Equal(t, mustRun(t, nil, "cryptsetup", "status", "csfl"), ourStatusText(t, "csfl"))
		require.NoError(t, Close(ctx, "csfl"))
		assertNothingLeft(t)
	})

	// The zero OpenOptions try every enabled slot, as cryptsetup does without --key-slot;
	// luks.Slot(n) restricts Open to slot n and reports it.
	t.Run("keyslot", func(t *testing.T) {
		ks := newImage(t, 6<<20)
		formatOurs(t, ks, "aes-xts-plain64", pass) // pass in slot 0
		f, err := os.OpenFile(ks, os.O_RDWR, 0)
		require.NoError(t, err)
		_, s, err := luks.AddKey(ctx, f, pass, []byte("second"), luks.AddKeyOptions{ForceIterations: testIterations})
		require.NoError(t, err)
		require.NoError(t, f.Close())
		require.Equal(t, 1, s)

		m, err := Open(ctx, ks, "ks", []byte("second"), OpenOptions{})
		require.NoError(t, err, "zero OpenOptions try every slot")
		assert.Equal(t, 1, m.Keyslot)
		require.NoError(t, Close(ctx, "ks"))
		assertNothingLeft(t)

		_, err = Open(ctx, ks, "ks", []byte("second"), OpenOptions{Keyslot: luks.Slot(0)})
		require.ErrorIs(t, err, luks.ErrWrongPassphrase, "Slot(0) tries slot 0 only")
		_, err = Open(ctx, ks, "ks", pass, OpenOptions{Keyslot: luks.Slot(8)})
		require.ErrorIs(t, err, luks.ErrInvalidParameter)
		assertNothingLeft(t)

		m, err = Open(ctx, ks, "ks", []byte("second"), OpenOptions{Keyslot: luks.Slot(1)})
		require.NoError(t, err)
		assert.Equal(t, 1, m.Keyslot)
		require.NoError(t, Close(ctx, "ks"))
		assertNothingLeft(t)
	})

	// Each open asks the kernel once whether the name is taken (DM_DEV_STATUS), before the
	// PBKDF2 work or the prompt; Open used to ask again inside OpenWithKey.
	t.Run("name checked once", func(t *testing.T) {
		statusCalls := func(f func()) uint64 {
			before := dm.StatusCalls()
			f()
			return dm.StatusCalls() - before
		}
		var m *Mapping
		var err error
		assert.Equal(t, uint64(1), statusCalls(func() { m, err = Open(ctx, img, "once", pass, any) }), "Open")
		require.NoError(t, err)
		l, err := List()
		require.NoError(t, err)
		assert.Contains(t, l, Mapping{Name: "once", Path: "/dev/mapper/once", UUID: m.UUID, Major: m.Major, Minor: m.Minor, Keyslot: -1})
		require.NoError(t, Close(ctx, "once"))

		hf, err := os.Open(img)
		require.NoError(t, err)
		uh, vk, _, err := luks.Unlock(ctx, hf, pass, luks.UnlockOptions{})
		require.NoError(t, hf.Close())
		require.NoError(t, err)
		defer vk.Wipe()
		assert.Equal(t, uint64(1), statusCalls(func() { _, err = OpenWithKey(ctx, img, "once", uh, vk, any) }), "OpenWithKey")
		require.NoError(t, err)
		require.NoError(t, Close(ctx, "once"))

		calls := 0
		unlock := func() (*luks.Header, *luks.VolumeKey, int, error) {
			calls++
			return uh, luks.NewVolumeKey(vk.Bytes()), 0, nil
		}
		assert.Equal(t, uint64(1), statusCalls(func() { m, err = OpenWith(ctx, img, "once", unlock, any) }), "OpenWith")
		require.NoError(t, err)
		assert.Equal(t, 1, calls)
		// A taken name fails before the unlock function runs.
		_, err = OpenWith(ctx, img, "once", unlock, any)
		require.ErrorIs(t, err, ErrExists)
		assert.Equal(t, 1, calls, "no unlock for a taken name")
		require.NoError(t, Close(ctx, "once"))
		assertNothingLeft(t)
	})

	t.Run("faults", func(t *testing.T) {
		_, err := Open(ctx, "/dev/nonexistent", "f1", pass, any)
		require.ErrorIs(t, err, ErrNoDevice)
		assertNothingLeft(t)

		zero := newImage(t, 4<<20)
		_, err = Open(ctx, zero, "f1", pass, any)
		require.ErrorIs(t, err, luks.ErrNotLUKS)
		assertNothingLeft(t)

		_, err = Open(ctx, img, "f1", []byte("wrong"), any)
		require.ErrorIs(t, err, luks.ErrWrongPassphrase)
		_, err = Open(ctx, img, "f1", []byte("wrong"), OpenOptions{Keyring: true})
		require.ErrorIs(t, err, luks.ErrWrongPassphrase)
		assertNothingLeft(t)

		for _, bad := range []string{"", ".", "..", "control", "a/b", strings.Repeat("n", 128)} {
			_, err = Open(ctx, img, bad, pass, any)
			require.ErrorIs(t, err, ErrInvalidName, "%q", bad)
		}
		assertNothingLeft(t)

		// A table the kernel rejects (CBC without an IV generator: "IV mechanism required")
		// must not leave a half-made device, the loop device or the keyring key behind.
		vk := luks.NewVolumeKey(make([]byte, 32))
		badHdr := &luks.Header{CipherName: "aes", CipherMode: "cbc", KeyBytes: 32, PayloadOffset: 4096, UUID: h.UUID}
		_, err = OpenWithKey(ctx, img, "f1", badHdr, vk, any)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), strings.Repeat("00", 32), "no key in errors")
		_, err = OpenWithKey(ctx, img, "f1", badHdr, vk, OpenOptions{Keyring: true})
		require.Error(t, err)
		assertNothingLeft(t)

		// Name in use, by us and by cryptsetup.
		m, err := Open(ctx, img, "inuse", pass, any)
		require.NoError(t, err)
		_, err = Open(ctx, img, "inuse", pass, any)
		require.ErrorIs(t, err, ErrExists)
		r := run(t, pass, "cryptsetup", "open", "--key-file", "-", img, "inuse")
		assert.Equal(t, 5, r.code, "cryptsetup: %s", r.stderr)

		// Busy: held open, Close retries until the deadline then reports ErrBusy; status says
		// "in use" like cryptsetup's; deferred removal completes at the last close.
		f, err := os.Open(m.Path)
		require.NoError(t, err)
		st, err := Status("inuse")
		require.NoError(t, err)
		assert.True(t, st.InUse)
		ours := ourStatusText(t, "inuse")
		assert.True(t, strings.HasPrefix(ours, "/dev/mapper/inuse is active and is in use.\n"))
		assert.Equal(t, mustRun(t, nil, "cryptsetup", "status", "inuse"), ours)
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err = Close(cctx, "inuse")
		cancel()
		require.ErrorIs(t, err, ErrBusy)
		_, err = Status("inuse")
		require.NoError(t, err, "still there after a failed close")
		require.NoError(t, CloseWithOptions(ctx, "inuse", CloseOptions{Deferred: true}))
		assert.True(t, deferredPending(t, "inuse"))
		require.NoError(t, CloseWithOptions(ctx, "inuse", CloseOptions{CancelDeferred: true}))
		assert.False(t, deferredPending(t, "inuse"), "cancelled")
		assert.True(t, nodeIs(m.Path, unix.Mkdev(m.Major, m.Minor)), "the mapping kept after a cancel has its node again")
		require.ErrorIs(t, CloseWithOptions(ctx, "nosuch", CloseOptions{CancelDeferred: true}), ErrNotFound)
		require.NoError(t, CloseWithOptions(ctx, "inuse", CloseOptions{Deferred: true}))
		assert.True(t, deferredPending(t, "inuse"))
		require.NoError(t, f.Close())
		for i := 0; i < 200; i++ {
			if _, err = Status("inuse"); errors.Is(err, ErrNotFound) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		require.ErrorIs(t, err, ErrNotFound)
		for i := 0; i < 200 && len(boundLoops(t)) > 0; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		assertNothingLeft(t)

		require.ErrorIs(t, Close(ctx, "nosuch"), ErrNotFound)
		_, err = Status("nosuch")
		require.ErrorIs(t, err, ErrNotFound)
	})

	t.Run("loop", func(t *testing.T) {
		lo, err := loop.Attach(img, loop.Options{Autoclear: false})
		require.NoError(t, err)
		assert.Equal(t, img, loop.BackingFile(lo.Path))
		p, err := loop.Find(img)
		require.NoError(t, err)
		assert.Equal(t, lo.Path, p)
		ac, err := os.ReadFile("/sys/block/" + filepath.Base(lo.Path) + "/loop/autoclear")
		require.NoError(t, err)
		assert.Equal(t, "0", strings.TrimSpace(string(ac)))
		require.NoError(t, lo.Detach())
		assert.Empty(t, loop.BackingFile(lo.Path))
		p, err = loop.Find(img)
		require.NoError(t, err)
		assert.Empty(t, p)

		// The pre-5.8 path (LOOP_SET_FD + LOOP_SET_STATUS64) sets autoclear too.
		lo, err = loop.AttachLegacy(img, loop.Options{Autoclear: true})
		require.NoError(t, err)
		assert.Equal(t, img, loop.BackingFile(lo.Path))
		ac, err = os.ReadFile("/sys/block/" + filepath.Base(lo.Path) + "/loop/autoclear")
		require.NoError(t, err)
		assert.Equal(t, "1", strings.TrimSpace(string(ac)))
		require.NoError(t, lo.Close())
		waitLoopDetached(ctx, lo.Path)
		assert.Empty(t, loop.BackingFile(lo.Path), "autoclear detached at the last close")

		// Read-only + autoclear: the handle is the only holder, so Close detaches.
		lo, err = loop.Attach(img, loop.Options{ReadOnly: true, Autoclear: true})
		require.NoError(t, err)
		assert.True(t, lo.ReadOnly)
		ro, err := os.ReadFile("/sys/block/" + filepath.Base(lo.Path) + "/ro")
		require.NoError(t, err)
		assert.Equal(t, "1", strings.TrimSpace(string(ro)))
		require.NoError(t, lo.Close())
		for i := 0; i < 200 && loop.BackingFile(lo.Path) != ""; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		assertNothingLeft(t)
	})

	t.Run("notroot", func(t *testing.T) {
		exe, err := os.Executable()
		require.NoError(t, err)
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), notRootEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		t.Logf("unprivileged child:\n%s", out)
		require.NoError(t, err)
		assertNothingLeft(t)
	})

	t.Run("cli", func(t *testing.T) {
		bin := os.Getenv(cliEnv)
		require.NotEmpty(t, bin)
		keyFile := filepath.Join(t.TempDir(), "key")
		require.NoError(t, os.WriteFile(keyFile, pass, 0o600))

		both := func(args ...string) (runResult, runResult) {
			return run(t, nil, bin, args...), run(t, nil, "cryptsetup", args...)
		}
		// Wrong passphrase: exit 2 and the same message; nothing left.
		wrong := filepath.Join(t.TempDir(), "wrong")
		require.NoError(t, os.WriteFile(wrong, []byte("nope"), 0o600))
		g, c := both("open", "--key-file", wrong, img, "cli")
		assert.Equal(t, 2, g.code, g.stderr)
		assert.Equal(t, c.code, g.code)
		assert.Equal(t, c.stderr, g.stderr)
		assertNothingLeft(t)

		// Unknown names: status exit 4 with the same stdout; close exit 4.
		g, c = both("status", "cli")
		assert.Equal(t, 4, g.code)
		assert.Equal(t, c.code, g.code)
		assert.Equal(t, c.stdout, g.stdout)
		g, c = both("close", "cli")
		assert.Equal(t, 4, g.code)
		assert.Equal(t, c.code, g.code)
		assert.Equal(t, c.stderr, g.stderr)

		// Open with flags, status identical to cryptsetup's, name in use → 5 for both.
		r := run(t, nil, bin, "luksOpen", "--key-file", keyFile, "--readonly", "--allow-discards", "--perf-no_read_workqueue", img, "cli")
		require.Equal(t, 0, r.code, r.stderr)
		g, c = both("status", "cli")
		assert.Equal(t, 0, g.code)
		assert.Equal(t, c.stdout, g.stdout)
		assert.Contains(t, g.stdout, "  mode:    readonly\n  flags:   discards no_read_workqueue \n")
		g, c = both("open", "--key-file", keyFile, img, "cli")
		assert.Equal(t, 5, g.code, g.stderr)
		assert.Equal(t, c.code, g.code)
		assert.Equal(t, c.stderr, g.stderr)

		// Busy: held open → close fails with 5 (cryptsetup too), then succeeds.
		f, err := os.Open("/dev/mapper/cli")
		require.NoError(t, err)
		g, c = both("close", "cli")
		assert.Equal(t, 5, g.code, g.stderr)
		assert.Equal(t, c.code, g.code)
		// cryptsetup also prints libdevmapper's retry diagnostics; the message is the last line.
		assert.Equal(t, "Device cli is still in use.\n", g.stderr)
		assert.True(t, strings.HasSuffix(c.stderr, g.stderr), c.stderr)
		// close --deferred / --cancel-deferred, each tool undoing the other's: exit 0, nothing
		// printed, the kernel's deferred-remove flag set and cleared.
		for _, step := range []struct {
			tool     string
			args     []string
			deferred bool
		}{
			{bin, []string{"close", "--deferred", "cli"}, true},
			{"cryptsetup", []string{"close", "--cancel-deferred", "cli"}, false},
			{"cryptsetup", []string{"close", "--deferred", "cli"}, true},
			{bin, []string{"close", "--cancel-deferred", "cli"}, false},
			{bin, []string{"close", "--cancel-deferred", "cli"}, false}, // nothing pending: fine
		} {
			r := run(t, nil, step.tool, step.args...)
			require.Equal(t, 0, r.code, "%s %v: %s", step.tool, step.args, r.stderr)
			assert.Empty(t, r.stderr, "%s %v", step.tool, step.args)
			assert.Equal(t, step.deferred, deferredPending(t, "cli"), "%s %v", step.tool, step.args)
			if step.tool == bin && !step.deferred {
				_, err := os.Stat("/dev/mapper/cli")
				assert.NoError(t, err, "node back after our cancel")
			}
		}
		g, c = both("close", "--cancel-deferred", "nosuch")
		assert.Equal(t, 4, g.code, g.stderr)
		assert.Equal(t, c.code, g.code)
		require.NoError(t, f.Close())
		r = run(t, nil, bin, "luksClose", "cli")
		require.Equal(t, 0, r.code, r.stderr)
		assertNothingLeft(t)

		// cryptsetup's mapping closed by our CLI; ours closed by cryptsetup.
		mustRun(t, pass, "cryptsetup", "open", "--key-file", "-", img, "cli")
		g = run(t, nil, bin, "status", "/dev/mapper/cli")
		c = run(t, nil, "cryptsetup", "status", "/dev/mapper/cli")
		assert.Equal(t, c.stdout, g.stdout)
		var cst unix.Stat_t
		require.NoError(t, unix.Stat("/dev/mapper/cli", &cst))
		dmPath := "/dev/dm-" + strconv.Itoa(int(unix.Minor(cst.Rdev)))
		n, err := NameFromPath(dmPath)
		require.NoError(t, err)
		assert.Equal(t, "cli", n)
		g, c = both("status", dmPath)
		assert.Equal(t, 0, g.code)
		assert.Equal(t, c.stdout, g.stdout)
		assert.True(t, strings.HasPrefix(g.stdout, dmPath+" is active.\n"), g.stdout)
		g, c = both("status", "/dev/mapper/missing")
		assert.Equal(t, 4, g.code)
		assert.Equal(t, c.stdout, g.stdout)
		r = run(t, nil, bin, "close", "cli")
		require.Equal(t, 0, r.code, r.stderr)
		r = run(t, pass, bin, "open", "--key-file", "-", img, "cli")
		require.Equal(t, 0, r.code, r.stderr)
		mustRun(t, nil, "cryptsetup", "close", "cli")
		assertNothingLeft(t)

		// Not root: both refuse with exit 1 and the same message.
		pub := filepath.Join("/tmp", "public.img") // reachable by uid 65534, unlike t.TempDir()
		data, err := os.ReadFile(img)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(pub, data, 0o644))
		defer os.Remove(pub)
		nobody := func(name string, args ...string) runResult {
			cmd := exec.Command(name, args...)
			cmd.Stdin = strings.NewReader(string(pass))
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			var o, e strings.Builder
			cmd.Stdout, cmd.Stderr = &o, &e
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			return runResult{o.String(), e.String(), code}
		}
		for _, args := range [][]string{{"status", "cli"}, {"close", "cli"}, {"open", "--key-file", keyFile, img, "cli"},
			{"open", "--key-file", "-", pub, "cli"}} {
			g, c := nobody(bin, args...), nobody("cryptsetup", args...)
			t.Logf("as nobody %v: ours %d %q, cryptsetup %d %q", args, g.code, g.stderr, c.code, c.stderr)
			assert.Equal(t, c.code, g.code, "%v", args)
			assert.Equal(t, c.stderr, g.stderr, "%v", args)
		}
		assertNothingLeft(t)
	})
}

// deferredPending reports whether name has a deferred removal scheduled.
func deferredPending(t *testing.T, name string) bool {
	t.Helper()
	c, err := dm.OpenControl()
	require.NoError(t, err)
	defer c.Close()
	info, err := c.Info(name)
	require.NoError(t, err)
	return info.DeferredRemove
}
