package keeper

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/internal/awstest"
	"github.com/cloudluks/cloudluks/keeper/internal/sshdtest"
	"github.com/cloudluks/cloudluks/keeper/wire"
	"github.com/cloudluks/cloudluks/luks"
)

const testPassphrase = "correct horse keeper staple 42"

// vault is a Secrets holding one passphrase per volume; it hands out copies.
type vault struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (v *vault) Passphrase(vol string) ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p, ok := v.m[vol]
	if !ok {
		return nil, ErrNoPassphrase
	}
	return bytes.Clone(p), nil
}

// luksImage formats a small image with testPassphrase and returns it, its UUID and its
// volume key.
func luksImage(t *testing.T) (path, uuid string, key []byte) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "volume.img")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Truncate(4<<20))
	h, vk, err := luks.Format(context.Background(), f, []byte(testPassphrase), luks.FormatOptions{ForceIterations: 1000})
	require.NoError(t, err)
	key = bytes.Clone(vk.Bytes())
	vk.Wipe()
	return path, h.UUID, key
}

// instance is one "instance": a real sshd whose forced command records what the keeper
// sends (tee) and hands it to the stand-in serve.
type instance struct {
	t      *testing.T
	srv    *sshdtest.Server
	key    sshdtest.Key
	cfg    fakeInstanceConfig
	cfgP   string
	rec    string // everything the keeper wrote to the session's stdin
	vk     []byte
	uuid   string
	instID string
	volID  string
}

func newInstance(t *testing.T, instID, volID string) *instance {
	t.Helper()
	img, uuid, vk := luksImage(t)
	dir := t.TempDir()
	in := &instance{t: t, key: sshdtest.NewKey(t), cfgP: filepath.Join(dir, "instance.json"),
		rec: filepath.Join(dir, "stdin.rec"), vk: vk, uuid: uuid, instID: instID, volID: volID}
	sum := sha256.Sum256(vk)
	in.cfg = fakeInstanceConfig{
		State: wire.State{BootID: "0b6e1f0a-1111-4222-8333-444455556666", VolumeID: volID, Device: "/dev/nvme1n1",
			Serial: ebs.NVMeSerial(volID), LUKSVersion: 1, LUKSUUID: uuid, Mapping: "data", MountPoint: "/data"},
		Image: img, MappedFile: filepath.Join(dir, "mapped"), KeySHA256: hex.EncodeToString(sum[:]),
	}
	in.write()
	exe, err := os.Executable()
	require.NoError(t, err)
	forced := `restrict,command="tee -a ` + in.rec + ` | KEEPER_TEST_INSTANCE=` + in.cfgP + ` ` + exe + `"`
	in.srv = sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{in.key.AuthorizedLine(forced)}})
	return in
}

func (in *instance) write() {
	b, err := json.Marshal(in.cfg)
	require.NoError(in.t, err)
	require.NoError(in.t, os.WriteFile(in.cfgP, b, 0o600))
}

func (in *instance) target() Target {
	return Target{Name: in.instID + "/data", InstanceID: in.instID, VolumeID: in.volID, Mapping: "data",
		MountPoint: "/data", LUKSUUID: in.uuid,
		SSH: SSHConfig{Addr: in.srv.Addr, User: in.srv.User, KeyFile: in.key.File, KnownHosts: []string{in.srv.KnownHosts(in.t)}}}
}

// sent returns what the keeper wrote to the instance so far and forgets it. It first waits
// for the recording tee of every earlier session to exit: tee writes to its stdout (the
// instance) before its file, so the instance can answer before the bytes are on disk.
func (in *instance) sent() []byte {
	waitRecorders(in.t, in.rec)
	b, err := os.ReadFile(in.rec)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(in.t, err)
	require.NoError(in.t, os.Remove(in.rec))
	return b
}

func (in *instance) unmap() { _ = os.Remove(in.cfg.MappedFile) }

// noSecrets fails t if the passphrase or the volume key appears in b in any encoding.
func noSecrets(t *testing.T, what string, b []byte, keys ...[]byte) {
	t.Helper()
	for _, s := range append([][]byte{[]byte(testPassphrase)}, keys...) {
		for _, enc := range [][]byte{s, []byte(hex.EncodeToString(s)), []byte(base64.StdEncoding.EncodeToString(s)), []byte(base64.RawURLEncoding.EncodeToString(s))} {
			require.False(t, bytes.Contains(b, enc), "%s contains a secret", what)
		}
	}
}

// motoFleet starts moto with two instances, each with one data volume at /dev/sdf.
func motoFleet(t *testing.T) (client *ec2.Client, inst [2]string, vol [2]string) {
	t.Helper()
	ctx := context.Background()
	client = awstest.NewEC2Client(awstest.StartMoto(t))
	for i := range inst {
		inst[i] = awstest.RunInstance(t, ctx, client, "us-east-1a", "/dev/sdf")
		out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{inst[i]}})
		require.NoError(t, err)
		for _, m := range out.Reservations[0].Instances[0].BlockDeviceMappings {
			if aws.ToString(m.DeviceName) == "/dev/sdf" {
				vol[i] = aws.ToString(m.Ebs.VolumeId)
			}
		}
		require.NotEmpty(t, vol[i])
	}
	return client, inst, vol
}

func TestUnlockOnceChecks(t *testing.T) {
	ctx := context.Background()
	client, inst, vol := motoFleet(t)
	var audit bytes.Buffer
	var errs []string
	sec := &vault{m: map[string][]byte{}}
	newKeeper := func(max int) *Keeper {
		k, err := New(Options{EC2: client, Secrets: sec, Audit: &audit, MaxAttemptsPerBoot: max}, nil)
		require.NoError(t, err)
		return k
	}
	in := newInstance(t, inst[0], vol[0])
	sec.m[vol[0]] = []byte(testPassphrase)
	sec.m[vol[1]] = []byte(testPassphrase)
	record := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	refused := func(t *testing.T, k *Keeper, tg Target, want error) Result {
		t.Helper()
		res, err := k.UnlockOnce(ctx, tg)
		record(err)
		require.ErrorIs(t, err, want)
		require.Equal(t, OutcomeRefused, res.Outcome, "%v", err)
		require.False(t, bytes.Contains(in.sent(), in.vk), "the key reached the instance")
		_, statErr := os.Stat(in.cfg.MappedFile)
		require.ErrorIs(t, statErr, os.ErrNotExist, "a refused pass mapped the volume")
		return res
	}

	t.Run("unlocks, then sees it done", func(t *testing.T) {
		k := newKeeper(0)
		res, err := k.UnlockOnce(ctx, in.target())
		record(err)
		require.NoError(t, err)
		require.Equal(t, OutcomeUnlocked, res.Outcome)
		require.Equal(t, "/data", res.MountedAt)
		require.True(t, res.HooksOK)
		require.Equal(t, in.cfg.State.BootID, res.BootID)
		sent := in.sent()
		require.True(t, bytes.Contains(sent, in.vk), "the volume key went over the session")
		noSecrets(t, "the session stream", sent) // the passphrase never leaves the keeper
		st := k.Status()
		require.Len(t, st, 1)
		require.Equal(t, StateUnlocked, st[0].State)
		require.False(t, st[0].LastUnlock.IsZero())

		res, err = k.UnlockOnce(ctx, in.target())
		require.NoError(t, err)
		require.Equal(t, OutcomeAlreadyUnlocked, res.Outcome)
		require.False(t, bytes.Contains(in.sent(), in.vk), "no key for a mapped volume")

		// Someone closed the volume on this boot: this keeper does not reopen it.
		in.unmap()
		res = refused(t, k, in.target(), ErrBootUnlocked)
		require.Equal(t, StateRefused, k.Status()[0].State)
		require.Contains(t, res.Reason, "already unlocked once")

		// A new boot id: unlocked again.
		in.cfg.State.BootID = "0b6e1f0a-9999-4222-8333-444455556666"
		in.write()
		res, err = k.UnlockOnce(ctx, in.target())
		require.NoError(t, err)
		require.Equal(t, OutcomeUnlocked, res.Outcome)
		in.sent()
		in.unmap()
	})

	t.Run("volume attached to another instance", func(t *testing.T) {
		tg := in.target()
		tg.VolumeID = vol[1] // in moto, vol[1] is attached to inst[1]
		in.cfg.State.VolumeID, in.cfg.State.Serial = vol[1], ebs.NVMeSerial(vol[1])
		in.write()
		defer func() { in.cfg.State.VolumeID, in.cfg.State.Serial = vol[0], ebs.NVMeSerial(vol[0]); in.write() }()
		res := refused(t, newKeeper(0), tg, ErrNotAttached)
		require.Contains(t, res.Reason, inst[1])
		require.Empty(t, res.BootID, "not even dialled")
	})
	t.Run("serial mismatch", func(t *testing.T) {
		in.cfg.State.Serial = ebs.NVMeSerial(vol[1])
		in.write()
		defer func() { in.cfg.State.Serial = ebs.NVMeSerial(vol[0]); in.write() }()
		refused(t, newKeeper(0), in.target(), ErrSerialMismatch)
	})
	t.Run("UUID mismatch with the vault", func(t *testing.T) {
		tg := in.target()
		tg.LUKSUUID = "00000000-0000-4000-8000-000000000000"
		refused(t, newKeeper(0), tg, ErrUUIDMismatch)
	})
	t.Run("header UUID is not the one the state reported", func(t *testing.T) {
		other, otherUUID, _ := luksImage(t)
		img := in.cfg.Image
		in.cfg.Image = other
		in.write()
		defer func() { in.cfg.Image = img; in.write() }()
		require.NotEqual(t, otherUUID, in.uuid)
		res := refused(t, newKeeper(0), in.target(), ErrUUIDMismatch)
		require.Contains(t, res.Reason, "header has")
	})
	t.Run("mapping or mount point", func(t *testing.T) {
		tg := in.target()
		tg.MountPoint = "/srv"
		refused(t, newKeeper(0), tg, ErrTargetMismatch)
	})
	t.Run("wrong passphrase, then the attempts limit", func(t *testing.T) {
		sec.m[vol[0]] = []byte("not the passphrase")
		defer func() { sec.m[vol[0]] = []byte(testPassphrase) }()
		k := newKeeper(2)
		for i := 0; i < 2; i++ {
			refused(t, k, in.target(), ErrWrongPassphrase)
		}
		refused(t, k, in.target(), ErrAttempts)
		require.Equal(t, 2, k.Status()[0].Attempts)
		// The limit is per boot: a new boot gets new attempts.
		in.cfg.State.BootID = "0b6e1f0a-7777-4222-8333-444455556666"
		in.write()
		refused(t, k, in.target(), ErrWrongPassphrase)
	})
	t.Run("no passphrase in the vault", func(t *testing.T) {
		tg := in.target()
		delete(sec.m, vol[0])
		defer func() { sec.m[vol[0]] = []byte(testPassphrase) }()
		refused(t, newKeeper(0), tg, ErrNoPassphrase)
	})
	t.Run("unknown host key", func(t *testing.T) {
		tg := in.target()
		tg.SSH.KnownHosts = []string{sshdtest.WriteFile(t, "known_hosts", "")}
		refused(t, newKeeper(0), tg, ErrHostKeyUnknown)
		require.Empty(t, in.sent(), "the forced command never ran")
	})
	t.Run("instance not running", func(t *testing.T) {
		_, err := client.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{inst[1]}})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{inst[1]}})
			return err == nil && out.Reservations[0].Instances[0].State.Name == types.InstanceStateNameStopped
		}, 30*time.Second, 100*time.Millisecond)
		tg := in.target()
		tg.InstanceID = inst[1]
		k := newKeeper(0)
		res, err := k.UnlockOnce(ctx, tg)
		record(err)
		require.ErrorIs(t, err, ErrNotRunning)
		require.Equal(t, StateUnreachable, k.Status()[0].State)
		require.Empty(t, res.BootID)
		require.Empty(t, in.sent())
	})

	// Over all of the above: the audit log and every error are free of secrets, and the
	// audit log is JSON lines with a decision on each.
	noSecrets(t, "the audit log", audit.Bytes(), in.vk)
	noSecrets(t, "the errors", []byte(strings.Join(errs, "\n")), in.vk)
	lines := strings.Split(strings.TrimSpace(audit.String()), "\n")
	require.Greater(t, len(lines), 20)
	decisions := map[string]int{}
	for _, l := range lines {
		var e auditEntry
		require.NoError(t, json.Unmarshal([]byte(l), &e), l)
		require.NotEmpty(t, e.Step)
		decisions[e.Decision]++
	}
	require.Positive(t, decisions["refused"])
	require.Positive(t, decisions["unlocked"])
	t.Logf("audit: %d lines, decisions %v", len(lines), decisions)
}

// Two keepers (two sites) serving the same instance at once: one unlocks, the other is
// told it is done, and neither sees an error.
func TestTwoKeepersOneUnlock(t *testing.T) {
	in := newInstance(t, "i-0123456789abcdef0", "vol-0123456789abcdef0")
	in.cfg.DelayMS = 500 // both get past their State check before either has mapped
	in.write()
	sec := &vault{m: map[string][]byte{in.volID: []byte(testPassphrase)}}
	var results [2]Result
	var errs [2]error
	var wg sync.WaitGroup
	for i := range results {
		k, err := New(Options{NoEC2: true, Secrets: sec}, nil)
		require.NoError(t, err)
		wg.Go(func() { results[i], errs[i] = k.UnlockOnce(context.Background(), in.target()) })
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	got := []Outcome{results[0].Outcome, results[1].Outcome}
	require.ElementsMatch(t, []Outcome{OutcomeUnlocked, OutcomeAlreadyUnlocked}, got)
}

// waitRecorders waits (up to 10 s) until no "tee -a rec" process is left.
func waitRecorders(t *testing.T, rec string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		busy := false
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, err := os.ReadFile(p)
			if err == nil && bytes.HasPrefix(b, []byte("tee\x00")) && bytes.Contains(b, []byte(rec)) {
				busy = true
				break
			}
		}
		if !busy || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
