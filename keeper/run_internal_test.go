package keeper

import (
	"bufio"
	"context"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/keeper/internal/sshdtest"
)

func TestBackoffNeverOverflows(t *testing.T) {
	b := &backoff{min: time.Second, max: math.MaxInt64}
	prev := time.Duration(0)
	for i := 0; i < 200; i++ {
		d := b.next()
		require.Positive(t, d, "step %d", i)
		require.GreaterOrEqual(t, d, prev, "step %d", i)
		prev = d
	}
	require.Equal(t, time.Duration(math.MaxInt64), prev)
	b = &backoff{min: time.Second, max: 5 * time.Second}
	var got []time.Duration
	for i := 0; i < 5; i++ {
		got = append(got, b.next())
	}
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}, got)
	b.reset()
	require.Equal(t, time.Second, b.next())
}

// waitStatus polls k.Status() for the target until ok holds.
func waitStatus(t *testing.T, k *Keeper, name string, within time.Duration, ok func(TargetStatus) bool) TargetStatus {
	t.Helper()
	var last TargetStatus
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, s := range k.Status() {
			if s.Name == name {
				last = s
				if ok(s) {
					return s
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("status of %s never matched; last %+v", name, last)
	return last
}

func TestRunDetectsRebootAndPollsEC2(t *testing.T) {
	client, inst, vol := motoFleet(t)
	in := newInstance(t, inst[0], vol[0])
	sec := &vault{m: map[string][]byte{vol[0]: []byte(testPassphrase)}}
	tg := in.target()
	k, err := New(Options{EC2: client, Secrets: sec, Keepalive: 200 * time.Millisecond, PollEvery: 500 * time.Millisecond,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 400 * time.Millisecond}, []Target{tg})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()

	first := waitStatus(t, k, tg.Name, 30*time.Second, func(s TargetStatus) bool { return s.State == StateUnlocked })
	require.Equal(t, in.cfg.State.BootID, first.BootID)

	// A reboot: sshd and its sessions die, the volume is closed, the boot id changes.
	in.srv.Stop()
	in.unmap()
	in.cfg.State.BootID = "0b6e1f0a-2222-4222-8333-444455556666"
	in.write()
	waitStatus(t, k, tg.Name, 10*time.Second, func(s TargetStatus) bool { return s.State == StateUnreachable })
	booted := time.Now()
	in.srv.Restart()
	second := waitStatus(t, k, tg.Name, 30*time.Second, func(s TargetStatus) bool {
		return s.State == StateUnlocked && s.BootID == in.cfg.State.BootID
	})
	t.Logf("sshd up → unlocked: %v", time.Since(booted).Round(time.Millisecond))
	require.True(t, second.LastUnlock.After(first.LastUnlock))
	_, err = os.Stat(in.cfg.MappedFile)
	require.NoError(t, err, "the instance side was unlocked again")

	// The EC2 backstop: a stopped instance is seen within a poll, with the connection open.
	_, err = client.StopInstances(context.Background(), &ec2.StopInstancesInput{InstanceIds: []string{inst[0]}})
	require.NoError(t, err)
	st := waitStatus(t, k, tg.Name, 30*time.Second, func(s TargetStatus) bool { return s.State == StateUnreachable })
	require.Contains(t, st.Reason, "not running")

	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// peakOverlap reads the trace lines of the stand-in instances and returns the largest
// number of Unlock calls that were running at once.
func peakOverlap(t *testing.T, path string) (peak, total int) {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	type ev struct {
		at    int64
		delta int
	}
	var evs []ev
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		what, ns, _ := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseInt(ns, 10, 64)
		require.NoError(t, err)
		d := 1
		if what == "end" {
			d = -1
		} else {
			total++
		}
		evs = append(evs, ev{n, d})
	}
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].at != evs[j].at {
			return evs[i].at < evs[j].at
		}
		return evs[i].delta < evs[j].delta // an end before a start at the same instant
	})
	cur := 0
	for _, e := range evs {
		cur += e.delta
		peak = max(peak, cur)
	}
	return peak, total
}

func TestRunFleet(t *testing.T) {
	const n, conc = 24, 3
	trace := filepath.Join(t.TempDir(), "trace")
	sec := &vault{m: map[string][]byte{}}
	var targets []Target
	var ins []*instance
	for i := 0; i < n; i++ {
		in := newInstance(t, "i-"+strconv.Itoa(1000+i), "vol-"+strconv.Itoa(5000+i))
		in.cfg.DelayMS, in.cfg.Trace = 600, trace
		in.write()
		sec.m[in.volID] = []byte(testPassphrase)
		targets = append(targets, in.target())
		ins = append(ins, in)
	}
	k, err := New(Options{NoEC2: true, Secrets: sec, Concurrency: conc, Keepalive: time.Second, PollEvery: time.Minute}, targets)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	go func() { _ = k.Run(ctx) }()
	for _, tg := range targets {
		waitStatus(t, k, tg.Name, 2*time.Minute, func(s TargetStatus) bool { return s.State == StateUnlocked })
	}
	elapsed := time.Since(start)
	peak, total := peakOverlap(t, trace)
	t.Logf("fleet: %d sshd endpoints unlocked in %v, at most %d at once (limit %d)", n, elapsed.Round(time.Millisecond), peak, conc)
	require.Equal(t, n, total, "one unlock per instance")
	require.LessOrEqual(t, peak, conc, "the concurrency bound held")
	require.Greater(t, peak, 1, "instances were served concurrently")
	for _, in := range ins {
		_, err := os.Stat(in.cfg.MappedFile)
		require.NoError(t, err)
	}
}

func TestRunWithoutTargetsWaitsForContext(t *testing.T) {
	k, err := New(Options{NoEC2: true, Secrets: &vault{}}, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	require.ErrorIs(t, k.Run(ctx), context.DeadlineExceeded)
	require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
}

func TestUnlockOnceReportsInstanceStderr(t *testing.T) {
	key := sshdtest.NewKey(t)
	// A forced command that is not the serve program: the keeper says what it said.
	srv := sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{
		key.AuthorizedLine(`restrict,command="echo 'encrypted-volume: unknown verb serve' >&2; exit 1"`)}})
	k, err := New(Options{NoEC2: true, Secrets: &vault{}}, nil)
	require.NoError(t, err)
	res, err := k.UnlockOnce(context.Background(), Target{InstanceID: "i-1", VolumeID: "vol-1", LUKSUUID: "u",
		SSH: SSHConfig{Addr: srv.Addr, User: srv.User, KeyFile: key.File, KnownHosts: []string{srv.KnownHosts(t)}}})
	require.ErrorIs(t, err, ErrProtocol)
	require.Contains(t, err.Error(), "instance said: encrypted-volume: unknown verb serve")
	require.Equal(t, OutcomeFailed, res.Outcome)
	require.Equal(t, StateNeedsUnlock, k.Status()[0].State)
}
