package keeper

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/internal/awstest"
	"github.com/cloudluks/cloudluks/keeper/internal/sshdtest"
)

// Rescue detaches only after several TCP-level failures to the instance itself, and never
// a volume it last saw mapped: a dead jump host, an sshd that answers but fails the
// handshake, or a network fault in front of a mapped volume leave the volume alone.
func TestRescueNeedsTheInstanceItselfDown(t *testing.T) {
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
	require.NoError(t, os.WriteFile(in.cfg.MappedFile, nil, 0o600)) // mapped and mounted there
	k, err := New(Options{EC2: client, Secrets: &vault{m: map[string][]byte{}}, DialTimeout: 2 * time.Second,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}, nil)
	require.NoError(t, err)
	fast := RescueOptions{Timeout: 15 * time.Second, Probes: 3, ProbeEvery: 300 * time.Millisecond,
		Wait: ebs.WaitOptions{PollInitial: 50 * time.Millisecond, PollMax: 200 * time.Millisecond}}

	t.Run("dead jump host", func(t *testing.T) {
		tg := in.target()
		dead := sshdtest.Start(t, sshdtest.Config{})
		deadAddr := dead.Addr
		dead.Stop()
		tg.SSH.JumpHost = &SSHConfig{Addr: deadAddr, User: "root", KeyFile: in.key.File, KnownHosts: tg.SSH.KnownHosts}
		_, err := k.Rescue(ctx, tg, fast)
		require.ErrorIs(t, err, ErrJumpHost)
		require.NotErrorIs(t, err, ErrNoConnection)
		require.Zero(t, proxy.seen("DetachVolume"))
	})
	t.Run("handshake fails", func(t *testing.T) {
		// Something takes the connection and drops it, as an sshd over MaxStartups does.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		tg := in.target()
		tg.SSH.Addr = l.Addr().String()
		_, err = k.Rescue(ctx, tg, fast)
		require.ErrorIs(t, err, ErrNotStuck)
		require.ErrorIs(t, err, ErrHandshake)
		require.Zero(t, proxy.seen("DetachVolume"))
	})
	t.Run("last seen mapped, now unreachable", func(t *testing.T) {
		res, err := k.UnlockOnce(ctx, in.target())
		require.NoError(t, err)
		require.Equal(t, OutcomeAlreadyUnlocked, res.Outcome)
		in.srv.Stop() // a network fault: the instance itself may be fine
		defer in.srv.Restart()
		start := time.Now()
		_, err = k.Rescue(ctx, in.target(), fast)
		require.ErrorIs(t, err, ErrInUse)
		require.GreaterOrEqual(t, time.Since(start), 2*fast.ProbeEvery, "the instance was probed more than once")
		require.Zero(t, proxy.seen("DetachVolume"))
	})
}

// UnlockOnce against a peer that goes silent after the handshake returns when its
// request timeout ends instead of hanging on the session's pipes.
func TestUnlockOnceSilentPeer(t *testing.T) {
	in := newInstance(t, "i-0123456789abcdef0", "vol-0123456789abcdef0")
	in.cfg.DelayMS = 3000
	in.cfg.Trace = t.TempDir() + "/trace"
	in.write()
	sec := &vault{m: map[string][]byte{in.volID: []byte(testPassphrase)}}
	k, err := New(Options{NoEC2: true, Secrets: sec, RequestTimeout: 1500 * time.Millisecond, Keepalive: time.Hour}, nil)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { _, err := k.UnlockOnce(context.Background(), in.target()); done <- err }()
	require.Eventually(t, func() bool { b, _ := os.ReadFile(in.cfg.Trace); return len(b) > 0 }, 20*time.Second, 20*time.Millisecond)
	in.srv.Pause()
	defer in.srv.Resume()
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("UnlockOnce still blocked 10 s after its 1.5 s RequestTimeout")
	}
}

// One late keepalive reply (a busy link) does not drop the connection; OpenSSH's
// ServerAliveCountMax allows three.
func TestSSHKeepaliveToleratesALateReply(t *testing.T) {
	key := sshdtest.NewKey(t)
	srv := sshdtest.Start(t, sshdtest.Config{AuthorizedKeys: []string{key.AuthorizedLine(`restrict,command="cat"`)}})
	cfg := SSHConfig{User: srv.User, KeyFile: key.File, KnownHosts: []string{srv.KnownHosts(t)}}
	tr := transport{dialTimeout: 10 * time.Second, keepalive: 300 * time.Millisecond}
	c, err := tr.dial(context.Background(), &cfg, srv.Addr, "")
	require.NoError(t, err)
	defer c.Close()
	time.Sleep(400 * time.Millisecond)
	srv.Pause()
	time.Sleep(700 * time.Millisecond) // a reply more than one interval late
	srv.Resume()
	select {
	case <-c.Dead():
		t.Fatal("connection dropped after one late keepalive reply")
	case <-time.After(time.Second):
	}
}
