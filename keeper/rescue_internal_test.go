package keeper

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/internal/awstest"
)

// stuckConsole is what an instance waiting at systemd-cryptsetup's prompt prints.
const stuckConsole = "Linux version 6.1.0-28-cloud-amd64 (debian-kernel@lists.debian.org)\n" +
	"[  OK  ] Reached target cryptsetup-pre.target.\n" +
	"Please enter passphrase for disk data (data) on /data: "

// ec2Proxy sits in front of moto: it records the Actions and, while prompt is set, answers
// GetConsoleOutput with a passphrase prompt (moto's console output is a fixed boot log
// without one; that is the one thing it cannot produce). onReboot runs (in a goroutine)
// when RebootInstances goes through.
type ec2Proxy struct {
	mu       sync.Mutex
	actions  []string
	prompt   bool
	onReboot func()
}

func (p *ec2Proxy) fault(w http.ResponseWriter, r *http.Request, body []byte) bool {
	form, _ := url.ParseQuery(string(body))
	action := form.Get("Action")
	p.mu.Lock()
	p.actions = append(p.actions, action)
	prompt, onReboot := p.prompt, p.onReboot
	p.mu.Unlock()
	switch {
	case action == "GetConsoleOutput" && prompt:
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<GetConsoleOutputResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>awstest-proxy</requestId><instanceId>%s</instanceId><timestamp>2026-12-04T19:00:00.000Z</timestamp><output>%s</output></GetConsoleOutputResponse>`,
			form.Get("InstanceId"), base64.StdEncoding.EncodeToString([]byte(stuckConsole)))
		return true
	case action == "RebootInstances" && onReboot != nil:
		go onReboot()
	}
	return false
}

func (p *ec2Proxy) seen(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, a := range p.actions {
		if a == action {
			n++
		}
	}
	return n
}

func (p *ec2Proxy) order(actions ...string) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var idx []int
	for _, want := range actions {
		for i, a := range p.actions {
			if a == want {
				idx = append(idx, i)
				break
			}
		}
	}
	return idx
}

func TestRescue(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	direct := awstest.NewEC2Client(moto)
	proxy := &ec2Proxy{}
	client := awstest.NewEC2Client(awstest.StartProxy(t, moto, proxy.fault))
	instID := awstest.RunInstance(t, ctx, direct, "us-east-1a", "/dev/sdf")
	out, err := direct.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instID}})
	require.NoError(t, err)
	var volID string
	for _, m := range out.Reservations[0].Instances[0].BlockDeviceMappings {
		if aws.ToString(m.DeviceName) == "/dev/sdf" {
			volID = aws.ToString(m.Ebs.VolumeId)
		}
	}
	in := newInstance(t, instID, volID)
	sec := &vault{m: map[string][]byte{volID: []byte(testPassphrase)}}
	k, err := New(Options{EC2: client, Secrets: sec, DialTimeout: 2 * time.Second,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond}, nil)
	require.NoError(t, err)
	fast := RescueOptions{Timeout: time.Minute, ProbeEvery: 100 * time.Millisecond, Wait: ebs.WaitOptions{PollInitial: 50 * time.Millisecond, PollMax: 200 * time.Millisecond}}

	t.Run("reachable and mapped: never detached", func(t *testing.T) {
		require.NoError(t, os.WriteFile(in.cfg.MappedFile, nil, 0o600))
		defer in.unmap()
		res, err := k.Rescue(ctx, in.target(), fast)
		require.ErrorIs(t, err, ErrInUse)
		require.Equal(t, OutcomeRefused, res.Outcome)
		require.Zero(t, proxy.seen("DetachVolume"))
	})
	t.Run("reachable, locked: not stuck", func(t *testing.T) {
		_, err := k.Rescue(ctx, in.target(), RescueOptions{Force: true, Timeout: time.Minute, ProbeEvery: 100 * time.Millisecond})
		require.ErrorIs(t, err, ErrNotStuck)
		require.Zero(t, proxy.seen("DetachVolume"))
		require.False(t, bytes.Contains(in.sent(), in.vk), "rescue sends no key to a reachable instance")
	})
	in.srv.Stop()
	t.Run("unreachable, console without prompt", func(t *testing.T) {
		_, err := k.Rescue(ctx, in.target(), fast)
		require.ErrorIs(t, err, ErrNotStuck)
		require.Positive(t, proxy.seen("GetConsoleOutput"), "moto's own console output was read")
		require.Zero(t, proxy.seen("DetachVolume"))
	})
	t.Run("stuck: detach, reboot, attach, unlock", func(t *testing.T) {
		proxy.mu.Lock()
		proxy.prompt = true
		proxy.onReboot = func() {
			// The instance boots again, without its data volume, so without the prompt.
			proxy.mu.Lock()
			proxy.prompt = false
			proxy.mu.Unlock()
			in.cfg.State.BootID = "0b6e1f0a-3333-4222-8333-444455556666"
			in.write()
			time.Sleep(300 * time.Millisecond)
			in.srv.Restart()
		}
		proxy.mu.Unlock()
		start := time.Now()
		res, err := k.Rescue(ctx, in.target(), fast)
		require.NoError(t, err)
		require.Equal(t, OutcomeUnlocked, res.Outcome)
		require.Equal(t, "0b6e1f0a-3333-4222-8333-444455556666", res.BootID)
		t.Logf("rescue took %v", time.Since(start).Round(time.Millisecond))
		idx := proxy.order("DetachVolume", "RebootInstances", "AttachVolume")
		require.Len(t, idx, 3)
		require.Less(t, idx[0], idx[1], "detach before reboot")
		require.Less(t, idx[1], idx[2], "attach after reboot")
		vout, err := direct.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volID}})
		require.NoError(t, err)
		require.Len(t, vout.Volumes[0].Attachments, 1)
		a := vout.Volumes[0].Attachments[0]
		require.Equal(t, instID, aws.ToString(a.InstanceId))
		require.Equal(t, "/dev/sdf", aws.ToString(a.Device), "same device name as before")
		require.Equal(t, types.VolumeAttachmentStateAttached, a.State)
		_, err = os.Stat(in.cfg.MappedFile)
		require.NoError(t, err, "unlocked on the instance")
	})
}

func TestRunMarksStuck(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	direct := awstest.NewEC2Client(moto)
	proxy := &ec2Proxy{prompt: true}
	client := awstest.NewEC2Client(awstest.StartProxy(t, moto, proxy.fault))
	instID := awstest.RunInstance(t, ctx, direct, "us-east-1a", "/dev/sdf")
	out, err := direct.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instID}})
	require.NoError(t, err)
	var volID string
	for _, m := range out.Reservations[0].Instances[0].BlockDeviceMappings {
		if aws.ToString(m.DeviceName) == "/dev/sdf" {
			volID = aws.ToString(m.Ebs.VolumeId)
		}
	}
	in := newInstance(t, instID, volID)
	in.srv.Stop()
	k, err := New(Options{EC2: client, Secrets: &vault{m: map[string][]byte{}}, DialTimeout: time.Second, PollEvery: 200 * time.Millisecond,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}, []Target{in.target()})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = k.Run(rctx) }()
	st := waitStatus(t, k, in.target().Name, 30*time.Second, func(s TargetStatus) bool { return s.State == StateStuck })
	require.Contains(t, st.Reason, "passphrase prompt")
	// Stuck stays stuck across further failed dials, and no rescue runs without AutoRescue.
	time.Sleep(time.Second)
	require.Equal(t, StateStuck, k.Status()[0].State)
	require.Zero(t, proxy.seen("DetachVolume"))
}
