package keeper

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/cloudluks/cloudluks/internal/awstest"
	"github.com/cloudluks/cloudluks/keeper/internal/sshdtest"
)

// forward listens on listen and relays every connection to target: the instance's old
// address, a second loopback address in front of the same sshd. close makes the address
// stop answering and cuts the connections through it, as a stop does.
type forward struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startForward(t *testing.T, listen, target string) *forward {
	t.Helper()
	l, err := net.Listen("tcp", listen)
	require.NoError(t, err)
	f := &forward{l: l}
	t.Cleanup(f.close)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, u)
			f.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return f
}

func (f *forward) close() {
	f.l.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

// dataVolume returns the volume moto attached to inst at /dev/sdf.
func dataVolume(t *testing.T, client *ec2.Client, inst string) string {
	t.Helper()
	out, err := client.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{inst}})
	require.NoError(t, err)
	for _, m := range out.Reservations[0].Instances[0].BlockDeviceMappings {
		if aws.ToString(m.DeviceName) == "/dev/sdf" {
			return aws.ToString(m.Ebs.VolumeId)
		}
	}
	t.Fatalf("no /dev/sdf on %s", inst)
	return ""
}

// A stop/start gives the instance a new address. Run, with no fixed Addr, must take the
// new one from its EC2 poll and unlock the new boot on it with nobody stepping in. The
// host key is pinned under the instance ID only, the identity that survives the move.
// moto's addresses lie in a range the test may not dial: a proxy rewrites the public IPv4
// in DescribeInstances to 127.0.0.2 before the stop (a relay there to the sshd) and to
// 127.0.0.1 (the sshd itself) after it, when the relay is gone.
func TestRunFollowsTheAddressAcrossStopStart(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	direct := awstest.NewEC2Client(moto)
	ipRe := regexp.MustCompile(`<ipAddress>[^<]*</ipAddress>`)
	var mu sync.Mutex
	pubIP := "127.0.0.2"
	client := awstest.NewEC2Client(awstest.StartProxy(t, moto, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		form, _ := url.ParseQuery(string(body))
		if form.Get("Action") != "DescribeInstances" {
			return false
		}
		// moto picks its backend by the SigV4 credential scope: forward the headers too.
		req, err := http.NewRequest(http.MethodPost, moto+r.URL.Path, bytes.NewReader(body))
		if err != nil {
			awstest.EC2Error(w, 500, "InternalError", err.Error())
			return true
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			awstest.EC2Error(w, 500, "InternalError", err.Error())
			return true
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		mu.Lock()
		b = ipRe.ReplaceAll(b, []byte("<ipAddress>"+pubIP+"</ipAddress>"))
		mu.Unlock()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(b)
		return true
	}))
	instID := awstest.RunInstance(t, ctx, direct, "us-east-1a", "/dev/sdf")
	volID := dataVolume(t, direct, instID)
	in := newInstance(t, instID, volID)
	_, port, err := net.SplitHostPort(in.srv.Addr)
	require.NoError(t, err)
	oldAddr, newAddr := net.JoinHostPort("127.0.0.2", port), in.srv.Addr
	relay := startForward(t, oldAddr, in.srv.Addr)

	tg := in.target()
	tg.SSH.Addr = ""
	tg.SSH.Port, _ = strconv.Atoi(port)
	hostKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(in.srv.HostKey)))
	tg.SSH.KnownHosts = []string{sshdtest.WriteFile(t, "known_hosts", instID+" "+hostKey)}
	k, err := New(Options{EC2: client, Secrets: &vault{m: map[string][]byte{volID: []byte(testPassphrase)}},
		DialTimeout: 2 * time.Second, Keepalive: 200 * time.Millisecond, PollEvery: 300 * time.Millisecond,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 300 * time.Millisecond}, []Target{tg})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- k.Run(rctx) }()

	first := waitStatus(t, k, tg.Name, 30*time.Second, func(s TargetStatus) bool { return s.State == StateUnlocked })
	require.Equal(t, oldAddr, first.Addr, "dialled the address EC2 reported")
	require.Equal(t, in.cfg.State.BootID, first.BootID)

	// Stop: the old address goes away with the instance, the volume closes.
	_, err = direct.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{instID}})
	require.NoError(t, err)
	relay.close()
	if c, err := net.DialTimeout("tcp", oldAddr, time.Second); err == nil {
		c.Close()
		t.Fatal("the old address still answers")
	}
	in.unmap()
	in.cfg.State.BootID = "0b6e1f0a-4444-4222-8333-444455556666"
	in.write()
	waitStatus(t, k, tg.Name, 15*time.Second, func(s TargetStatus) bool { return s.State != StateUnlocked })

	// Start: a new address.
	mu.Lock()
	pubIP = "127.0.0.1"
	mu.Unlock()
	_, err = direct.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{instID}})
	require.NoError(t, err)
	started := time.Now()
	second := waitStatus(t, k, tg.Name, 30*time.Second, func(s TargetStatus) bool {
		return s.State == StateUnlocked && s.BootID == in.cfg.State.BootID
	})
	t.Logf("start → unlocked at the new address: %v", time.Since(started).Round(time.Millisecond))
	require.Equal(t, newAddr, second.Addr)
	require.True(t, second.LastUnlock.After(first.LastUnlock))
	_, err = os.Stat(in.cfg.MappedFile)
	require.NoError(t, err, "the new boot was unlocked")

	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// forceRecorder wraps ec2Proxy.fault and keeps the Force parameter of every DetachVolume.
type forceRecorder struct {
	p      *ec2Proxy
	mu     sync.Mutex
	forces []string
}

func (f *forceRecorder) fault(w http.ResponseWriter, r *http.Request, body []byte) bool {
	form, _ := url.ParseQuery(string(body))
	if form.Get("Action") == "DetachVolume" {
		f.mu.Lock()
		f.forces = append(f.forces, form.Get("Force"))
		f.mu.Unlock()
	}
	return f.p.fault(w, r, body)
}

// An AutoRescue target whose sshd refuses TCP and whose console waits at a passphrase
// prompt is rescued by Run on its own: detach (not forced), reboot, attach, unlock. The
// unreachability probe is Options.RescueProbes dials RescueProbeEvery apart: 2 dials 300 ms
// apart here, not the default 3 dials 10 s apart. The target is renamed (SetTargets, as a
// retag does) while the rescue waits for the reboot: the rescue is not cut short by it,
// and finishes under the new name.
func TestRunAutoRescues(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	direct := awstest.NewEC2Client(moto)
	proxy := &ec2Proxy{prompt: true}
	rec := &forceRecorder{p: proxy}
	client := awstest.NewEC2Client(awstest.StartProxy(t, moto, rec.fault))
	instID := awstest.RunInstance(t, ctx, direct, "us-east-1a", "/dev/sdf")
	volID := dataVolume(t, direct, instID)
	in := newInstance(t, instID, volID)
	in.srv.Stop() // nothing listens on its port: the boot waits at the prompt
	const newBoot = "0b6e1f0a-5555-4222-8333-444455556666"
	tg := in.target()
	tg.AutoRescue = true
	renamed := tg
	renamed.Name = "db/" + instID
	var k *Keeper
	onReboot := func() {
		assert.NoError(t, k.SetTargets([]Target{renamed}), "retagged during the rescue")
		// It boots again without its data volume, so without the prompt.
		proxy.mu.Lock()
		proxy.prompt = false
		proxy.mu.Unlock()
		in.cfg.State.BootID = newBoot
		in.write()
		time.Sleep(300 * time.Millisecond)
		in.srv.Restart()
	}
	var audit bytes.Buffer // read only after Run returned
	k, err := New(Options{EC2: client, Secrets: &vault{m: map[string][]byte{volID: []byte(testPassphrase)}}, Audit: &audit,
		DialTimeout: time.Second, PollEvery: 200 * time.Millisecond, RescueProbes: 2, RescueProbeEvery: 300 * time.Millisecond,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}, []Target{tg})
	require.NoError(t, err)
	proxy.mu.Lock()
	proxy.onReboot = onReboot // after k is set: the proxy reads it under its lock
	proxy.mu.Unlock()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- k.Run(rctx) }()

	start := time.Now()
	// The row as the rescue's own unlock left it (the new watcher starts only once the old
	// one, which ran the rescue, has returned): under the new name already.
	var st TargetStatus
	for found := false; !found; {
		require.Less(t, time.Since(start), 30*time.Second, "not rescued: %+v", k.Status())
		for _, s := range k.Status() {
			if s.InstanceID == instID && s.State == StateUnlocked && s.BootID == newBoot {
				st, found = s, true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.Equal(t, renamed.Name, st.Name, "the rescue's pass renamed the row back")
	took := time.Since(start)
	t.Logf("stuck → rescued and unlocked: %v", took.Round(time.Millisecond))
	require.Less(t, took, 2*DefaultRescueProbeEvery, "the default probes (3, 10 s apart) were used")
	require.Equal(t, in.srv.Addr, st.Addr)
	_, err = os.Stat(in.cfg.MappedFile)
	require.NoError(t, err, "unlocked on the instance")

	idx := proxy.order("GetConsoleOutput", "DetachVolume", "RebootInstances", "AttachVolume")
	require.Len(t, idx, 4)
	require.Less(t, idx[0], idx[1], "console read before the detach")
	require.Less(t, idx[1], idx[2], "detach before reboot")
	require.Less(t, idx[2], idx[3], "attach after reboot")
	require.Equal(t, 1, proxy.seen("DetachVolume"))
	require.Equal(t, 1, proxy.seen("RebootInstances"))
	require.Equal(t, 1, proxy.seen("AttachVolume"))
	rec.mu.Lock()
	require.Len(t, rec.forces, 1)
	require.NotEqual(t, "true", rec.forces[0], "the detach was forced")
	rec.mu.Unlock()

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	log := audit.String()
	require.Contains(t, log, `"step":"rescue-console","decision":"ok","detail":"unreachable, prompt on console: true, forced: false"`)
	require.Contains(t, log, `"step":"rescue-reboot","decision":"ok"`)
	require.Contains(t, log, `"step":"rescue-probe","decision":"ok","detail":"1 of 2: `)
	require.Contains(t, log, `"step":"rescue-probe","decision":"ok","detail":"2 of 2: `)
	require.NotContains(t, log, `of 3: `)
	noSecrets(t, "the audit log", audit.Bytes(), in.vk)

	vout, err := direct.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volID}})
	require.NoError(t, err)
	require.Len(t, vout.Volumes[0].Attachments, 1)
	a := vout.Volumes[0].Attachments[0]
	require.Equal(t, instID, aws.ToString(a.InstanceId))
	require.Equal(t, "/dev/sdf", aws.ToString(a.Device))
	require.Equal(t, types.VolumeAttachmentStateAttached, a.State)
}
