package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cloudluks/cloudluks/dmcrypt"
	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/keeper/wire"
	"github.com/cloudluks/cloudluks/luks"
)

const (
	// defaultServeLockDir holds the per-mapping lock of serve (tmpfs: gone at reboot, as
	// the mapping is).
	defaultServeLockDir = "/run/cloudluks"
	// serveLockWait bounds the wait for another serve process (a second keeper) that holds
	// the lock: its unlock (open, mount, hooks) is the longest it should take.
	serveLockWait = 2 * time.Minute
	serveLockPoll = 50 * time.Millisecond
	// serveUnlockTimeout bounds an unlock once the key checked out: open, mount, hooks
	// run to the end even if the keeper has gone away meanwhile.
	serveUnlockTimeout = 10 * time.Minute
)

func registerServeFlags(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.mountPoint, "mount", "/encrypted_vol", "same as --mount-point")
	fs.StringVar(&c.lockDir, "lock-dir", defaultServeLockDir, "directory of the lock that lets one serve at a time unlock NAME")
}

func (c *config) validateServe() error {
	if c.volumeID == "" && c.device == "" {
		return errors.New("serve needs --volume-id or --device")
	}
	if !filepath.IsAbs(c.lockDir) {
		return fmt.Errorf("--lock-dir %q must be an absolute path", c.lockDir)
	}
	// serve finds the device by NVMe serial and never asks EC2: the keeper checked the
	// attachment, and the instance needs no AWS credentials for this.
	c.noAWS = true
	return nil
}

// serve is the instance end of the keeper: sshd runs it as the forced command of the
// keeper's key, stdin and stdout carry the keeper/wire protocol, stderr gets what a
// person reading the logs needs. Its flags, not the keeper, decide what volume it maps
// where, and which hooks run.
func (a *app) serve(ctx context.Context, c *config) error {
	hooks, err := a.unlockHooks(ctx, c)
	if err != nil {
		return err
	}
	// stderr is the SSH channel too: when the keeper goes away mid-unlock, a write there
	// must neither kill serve (SIGPIPE) nor block it (a full channel window). SIGHUP is
	// ignored for the same reason: nothing about the keeper may stop an unlock half done.
	ignoreHangup()
	diagOut := newLossyWriter(a.stderr)
	defer diagOut.flush(time.Second)
	// Everything the shared unlock code and the hooks print goes there: stdout is the
	// protocol.
	diag := *a
	diag.stdout, diag.stderr = diagOut, diagOut
	h := &serveHandler{a: &diag, c: c, hooks: hooks}
	// A keeper gone silent must not leave serve blocked in a read of stdin after ctx ended.
	stop := context.AfterFunc(ctx, func() {
		if cl, ok := a.stdin.(io.Closer); ok {
			cl.Close()
		}
	})
	defer stop()
	err = wire.Serve(ctx, stdio{a.stdin, a.stdout}, h)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// lossyWriter hands writes to a goroutine that copies them to w, and drops them when it
// falls behind: diagnostics are best effort, the unlock is not.
type lossyWriter struct {
	ch   chan []byte
	done chan struct{}
	once sync.Once
}

func newLossyWriter(w io.Writer) *lossyWriter {
	l := &lossyWriter{ch: make(chan []byte, 256), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		broken := false
		for p := range l.ch {
			if !broken {
				_, err := w.Write(p)
				broken = err != nil
			}
		}
	}()
	return l
}

func (l *lossyWriter) Write(p []byte) (int, error) {
	select {
	case l.ch <- bytes.Clone(p):
	default:
	}
	return len(p), nil
}

// flush stops the writer and waits up to d for what is queued to be written.
func (l *lossyWriter) flush(d time.Duration) {
	l.once.Do(func() { close(l.ch) })
	select {
	case <-l.done:
	case <-time.After(d):
	}
}

// stdio is the protocol's transport; on a pipe that the runtime polls, reads honour the
// context through SetReadDeadline.
type stdio struct {
	in  io.Reader
	out io.Writer
}

func (s stdio) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s stdio) Write(p []byte) (int, error) { return s.out.Write(p) }
func (s stdio) SetReadDeadline(t time.Time) error {
	if f, ok := s.in.(*os.File); ok {
		return f.SetReadDeadline(t)
	}
	return os.ErrNoDeadline
}

type serveHandler struct {
	a     *app // stdout is the real stderr
	c     *config
	hooks [][]string
}

func (s *serveHandler) logf(format string, args ...any) {
	fmt.Fprintf(s.a.stderr, "serve: "+format+"\n", args...)
}

func (s *serveHandler) Hello(ctx context.Context, peer wire.Hello) (string, error) {
	s.logf("keeper %q connected (protocol %d)", peer.Program, peer.Protocol)
	return cli.Version("encrypted-volume", ""), nil
}

func (s *serveHandler) bootID() (string, error) {
	b, err := os.ReadFile(s.a.bootID)
	if err != nil {
		return "", fmt.Errorf("boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// device finds the served block device the way unlock --no-aws does.
func (s *serveHandler) device(ctx context.Context) (string, error) {
	if s.c.device != "" {
		_, err := statBlock(s.c.device)
		return s.c.device, err
	}
	return s.a.waitDevice(ctx, s.c, s.c.volumeID, "")
}

func (s *serveHandler) State(ctx context.Context) (wire.State, error) {
	st := wire.State{VolumeID: s.c.volumeID, Mapping: s.c.name, MountPoint: s.c.mountPoint}
	var err error
	if st.BootID, err = s.bootID(); err != nil {
		return st, err
	}
	var problems []string
	if dev, err := s.device(ctx); err != nil {
		problems = append(problems, err.Error())
	} else {
		st.Device = dev
		st.Serial = nvmeSerialOf("/sys", dev)
		v, uuid, err := luksIdentity(dev)
		if err != nil {
			problems = append(problems, err.Error())
		}
		st.LUKSVersion, st.LUKSUUID = v, uuid
	}
	if _, ok, err := s.a.local.MappingDevice(s.c.name); err != nil {
		problems = append(problems, err.Error())
	} else {
		st.Mapped = ok
	}
	if mounts, err := s.a.local.Mounts(); err != nil {
		problems = append(problems, err.Error())
	} else if mp, ok := findOurMount(mounts, s.c.mountPoint, s.c.name); ok && mp == s.c.mountPoint {
		st.Mounted = true
	}
	disabled, detail, err := s.a.boot.Status(s.c.root, bootVolume{Name: s.c.name, LUKSUUID: st.LUKSUUID, MountPoint: s.c.mountPoint})
	if err != nil {
		problems = append(problems, "boot configuration: "+err.Error())
	} else {
		st.BootUnlockDisabled = disabled
		if !disabled {
			s.logf("boot-time unlock is not disabled (%s)", detail)
		}
	}
	st.Problem = strings.Join(problems, "; ")
	return st, nil
}

func (s *serveHandler) Header(ctx context.Context) ([]byte, error) {
	dev, err := s.device(ctx)
	if err != nil {
		return nil, err
	}
	b, _, err := readHeaderBytes(dev)
	if err != nil {
		return nil, err
	}
	s.logf("sent the LUKS header of %s (%d bytes)", dev, len(b))
	return b, nil
}

func refused(format string, args ...any) wire.Result {
	return wire.Result{Status: wire.StatusRefused, Reason: fmt.Sprintf(format, args...)}
}

func (s *serveHandler) Unlock(ctx context.Context, req wire.UnlockRequest, key []byte) (wire.Result, error) {
	r, err := s.unlock(ctx, req, key)
	if err == nil {
		s.logf("unlock: %s%s", r.Status, func() string {
			if r.Reason != "" {
				return ": " + r.Reason
			}
			return ""
		}())
	}
	return r, err
}

func (s *serveHandler) unlock(ctx context.Context, req wire.UnlockRequest, key []byte) (wire.Result, error) {
	// Two keepers may arrive at once: the lock makes the second see the first one's
	// mapping instead of racing it into device-mapper.
	unlockLock, err := lockFile(ctx, filepath.Join(s.c.lockDir, "serve-"+s.c.name+".lock"), serveLockWait, func() {
		s.logf("waiting for another serve of %s to finish", s.c.name)
	})
	if err != nil {
		return refused("lock: %v", err), nil
	}
	defer unlockLock()

	boot, err := s.bootID()
	if err != nil {
		return wire.Result{}, err
	}
	if boot != req.BootID {
		return refused("boot id is %s, the keeper expected %s (the instance rebooted since)", boot, req.BootID), nil
	}
	dev, err := s.device(ctx)
	if err != nil {
		return refused("%v", err), nil
	}
	_, hdr, err := readHeaderBytes(dev)
	if err != nil {
		return refused("%v", err), nil
	}
	seg, err := hdr.DataSegment()
	if err != nil {
		return refused("%s: %v", dev, err), nil
	}
	if seg.UUID != req.LUKSUUID {
		return refused("LUKS UUID of %s is %s, the keeper expected %s", dev, seg.UUID, req.LUKSUUID), nil
	}
	vk := luks.NewVolumeKey(key)
	defer vk.Wipe()
	if err := luks.CheckVolumeKey(hdr, vk); err != nil {
		return refused("%s: %v", dev, err), nil
	}
	// From here on the work finishes whatever happens to the keeper's connection.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), serveUnlockTimeout)
	defer cancel()
	if mdev, ok, err := s.a.local.MappingDevice(s.c.name); err != nil {
		return refused("mapping %s: %v", s.c.name, err), nil
	} else if ok {
		mounts, err := s.a.local.Mounts()
		if err != nil {
			return wire.Result{}, err
		}
		if mp, ok := findOurMount(mounts, s.c.mountPoint, s.c.name); ok && mp == s.c.mountPoint {
			return wire.Result{Status: wire.StatusAlreadyUnlocked, Mounted: mp, HooksOK: true, Reason: "mapped and mounted before this request"}, nil
		}
		if !sameDevice(mdev, dev) {
			return refused("mapping %s exists on %s, not on %s: for a person to look at", s.c.name, mdev, dev), nil
		}
		// Mapped by an unlock that did not get to the mount (serve killed, a reboot of
		// the mount point's filesystem): the key checked out, so finish it.
		return s.mountExisting(ctx)
	}
	open := func(ctx context.Context) (string, error) {
		ko, ok := s.a.local.(keyringOpener)
		if !ok {
			return "", errors.New("this build cannot load a key through the kernel keyring")
		}
		return ko.OpenWithKeyring(ctx, dev, s.c.name, hdr, vk)
	}
	mapper, err := s.a.openMountHooks(ctx, s.c, s.hooks, nil,
		func() string { return fmt.Sprintf("luksOpen %s %s (volume key from the keeper)", dev, s.c.name) }, open)
	vk.Wipe()
	var se *stepError
	switch {
	case err == nil:
		return wire.Result{Status: wire.StatusUnlocked, Mounted: s.c.mountPoint, HooksOK: true}, nil
	case errors.As(err, &se) && se.N == 3:
		// Mounted; a service or hook failed. The volume stays mounted, as with unlock.
		return wire.Result{Status: wire.StatusUnlocked, Mounted: s.c.mountPoint, Reason: se.Error()}, nil
	case mapper != "" && errors.As(err, &se) && se.N == 2:
		// openMountHooks closed the mapping again.
		return refused("%v (mapping closed again)", err), nil
	}
	return refused("%v", err), nil
}

// mountExisting mounts the existing mapping and runs the hooks, as the second and
// third steps of an unlock.
func (s *serveHandler) mountExisting(ctx context.Context) (wire.Result, error) {
	mapper := mapperPath(s.c.name)
	err := runSteps(ctx, s.a.stdout, []step{
		{func() string { return fmt.Sprintf("mount %s %s (mapped before this request)", mapper, s.c.mountPoint) }, func(ctx context.Context) error {
			return s.a.mountChecked(mapper, s.c.mountPoint)
		}},
		{fixed(fmt.Sprintf("post-mount hooks (%d)", len(s.hooks))), func(ctx context.Context) error {
			if len(s.hooks) == 0 {
				return skip("none configured")
			}
			return runHooks(ctx, s.hooks, childEnv(
				"ENCRYPTED_VOLUME_NAME="+s.c.name,
				"ENCRYPTED_VOLUME_MOUNT="+s.c.mountPoint,
				"ENCRYPTED_VOLUME_DEVICE="+mapper,
			), s.a.stdout, s.a.stderr)
		}},
	})
	var se *stepError
	switch {
	case err == nil:
		return wire.Result{Status: wire.StatusUnlocked, Mounted: s.c.mountPoint, HooksOK: true, Reason: "mounted the existing mapping"}, nil
	case errors.As(err, &se) && se.N == 2:
		return wire.Result{Status: wire.StatusUnlocked, Mounted: s.c.mountPoint, Reason: "mounted the existing mapping; " + se.Error()}, nil
	}
	return refused("mapping %s exists but mounting it failed: %v", s.c.name, err), nil
}

// keyringOpener maps a LUKS1 volume with its key in the kernel keyring (a logon key)
// instead of in the table.
type keyringOpener interface {
	OpenWithKeyring(ctx context.Context, device, name string, hdr luks.Metadata, vk *luks.VolumeKey) (string, error)
}

func (sysLocal) OpenWithKeyring(ctx context.Context, device, name string, hdr luks.Metadata, vk *luks.VolumeKey) (string, error) {
	m, err := dmcrypt.OpenWithKey(ctx, device, name, hdr, vk, dmcrypt.OpenOptions{Keyring: true})
	if err != nil {
		return "", mapDMErr(err)
	}
	return m.Path, nil
}

// readHeaderBytes returns what luks.UnlockAny reads of the device: for LUKS1 the header and
// the key material up to the end of the last key slot's; for LUKS2 both metadata copies
// and the keyslots area (2 × metadata size + keyslots size).
func readHeaderBytes(dev string) ([]byte, luks.Metadata, error) {
	f, err := os.Open(dev)
	if err != nil {
		return nil, nil, deviceErr(dev, err)
	}
	defer f.Close()
	m, err := luks.Load(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dev, err)
	}
	var n uint64
	switch h := m.(type) {
	case *luks.Header:
		n = h.MetadataSectors() * luks.SectorSize
	case *luks.Header2:
		n = 2*h.HeaderSize + h.Config.KeyslotsSize
	default:
		return nil, nil, fmt.Errorf("%s: LUKS version %d: %w", dev, m.LUKSVersion(), luks.ErrUnsupportedVersion)
	}
	if n > wire.MaxHeaderSize {
		return nil, nil, fmt.Errorf("%s: header and key material of %d bytes exceed %d", dev, n, wire.MaxHeaderSize)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, nil, fmt.Errorf("%s: reading %d header bytes: %w", dev, n, err)
	}
	return b, m, nil
}

// luksIdentity reads the LUKS version and UUID from the binary header, which LUKS1 and
// LUKS2 lay out alike (magic, version at 6, uuid[40] at 168). 0, "" when there is none.
func luksIdentity(dev string) (int, string, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, "", deviceErr(dev, err)
	}
	defer f.Close()
	var b [208]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return 0, "", fmt.Errorf("%s: %w", dev, err)
	}
	if !bytes.Equal(b[:6], luksMagic) {
		return 0, "", nil
	}
	uuid, _, _ := bytes.Cut(b[168:208], []byte{0})
	return int(binary.BigEndian.Uint16(b[6:8])), strings.ToValidUTF8(string(uuid), "?"), nil
}

// nvmeSerialOf is the controller serial sysfs shows for an NVMe namespace device ("" for
// anything else): the volume ID without its dash on EBS.
func nvmeSerialOf(sysRoot, dev string) string {
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(sysRoot, "block", filepath.Base(real), "device", "serial"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
