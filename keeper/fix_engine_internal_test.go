package keeper

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/awstest"
)

// An instance alternating boot ids gets no key for a boot already unlocked, and the
// per-target rate limit holds whatever boot ids it reports.
func TestBootIDsRememberedAndRateLimited(t *testing.T) {
	in := newInstance(t, "i-0123456789abcdef0", "vol-0123456789abcdef0")
	sec := &vault{m: map[string][]byte{in.volID: []byte(testPassphrase)}}
	k, err := New(Options{NoEC2: true, Secrets: sec, MaxAttemptsPerBoot: 1}, nil)
	require.NoError(t, err)
	a, b := "0b6e1f0a-aaaa-4222-8333-444455556666", "0b6e1f0a-bbbb-4222-8333-444455556666"
	pass := func(boot string) (bool, error) {
		in.unmap()
		in.cfg.State.BootID = boot
		in.write()
		_, err := k.UnlockOnce(context.Background(), in.target())
		return bytes.Contains(in.sent(), in.vk), err
	}
	for i, boot := range []string{a, b, a, b, a} {
		sent, err := pass(boot)
		if i < 2 {
			require.NoError(t, err)
			require.True(t, sent)
			continue
		}
		require.ErrorIs(t, err, ErrBootUnlocked, "pass %d", i)
		require.False(t, sent, "pass %d: key sent again for a boot already unlocked", i)
	}

	k, err = New(Options{NoEC2: true, Secrets: sec, MaxAttemptsPerWindow: 2}, nil)
	require.NoError(t, err)
	for i := range 3 {
		sent, err := pass(fmt.Sprintf("0b6e1f0a-%04d-4222-8333-444455556666", i))
		if i < 2 {
			require.NoError(t, err)
			require.True(t, sent)
			continue
		}
		require.ErrorIs(t, err, ErrAttempts)
		require.Contains(t, err.Error(), "whatever the boot id")
		require.False(t, sent)
	}
}

// A keeper that only saw the volume mapped (another keeper won) does not reopen it after
// someone closed it on the same boot; its already-unlocked answer reads as such.
func TestSecondKeeperDoesNotReopen(t *testing.T) {
	in := newInstance(t, "i-0123456789abcdef0", "vol-0123456789abcdef0")
	sec := &vault{m: map[string][]byte{in.volID: []byte(testPassphrase)}}
	k, err := New(Options{NoEC2: true, Secrets: sec}, nil)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(in.cfg.MappedFile, nil, 0o600)) // the other keeper won
	res, err := k.UnlockOnce(context.Background(), in.target())
	require.NoError(t, err)
	require.Equal(t, OutcomeAlreadyUnlocked, res.Outcome)
	in.sent()
	in.unmap() // closed on purpose, same boot
	_, err = k.UnlockOnce(context.Background(), in.target())
	require.ErrorIs(t, err, ErrBootUnlocked)
	require.False(t, bytes.Contains(in.sent(), in.vk))

	// Two keepers at once: the one told it is done gets the instance's words, not a hook
	// failure.
	in2 := newInstance(t, "i-0123456789abcdef1", "vol-0123456789abcdef1")
	in2.cfg.DelayMS = 500
	in2.write()
	sec2 := &vault{m: map[string][]byte{in2.volID: []byte(testPassphrase)}}
	var wg sync.WaitGroup
	var results [2]Result
	for i := range results {
		k, err := New(Options{NoEC2: true, Secrets: sec2}, nil)
		require.NoError(t, err)
		wg.Go(func() { results[i], _ = k.UnlockOnce(context.Background(), in2.target()) })
	}
	wg.Wait()
	for _, r := range results {
		if r.Outcome == OutcomeAlreadyUnlocked {
			require.NotContains(t, r.Reason, "hooks or services failed")
			require.Contains(t, r.Reason, "mapped and mounted before this request")
		}
	}
}

// Mapped but not mounted is a state of its own, with the reason, not "unlocked".
func TestMappedNotMounted(t *testing.T) {
	in := newInstance(t, "i-0123456789abcdef0", "vol-0123456789abcdef0")
	in.cfg.NotMounted = true
	in.write()
	require.NoError(t, os.WriteFile(in.cfg.MappedFile, nil, 0o600))
	sec := &vault{m: map[string][]byte{in.volID: []byte(testPassphrase)}}
	k, err := New(Options{NoEC2: true, Secrets: sec}, nil)
	require.NoError(t, err)
	res, err := k.UnlockOnce(context.Background(), in.target())
	require.ErrorIs(t, err, ErrNotMounted)
	require.Equal(t, OutcomeMappedNotMounted, res.Outcome)
	st := k.Status()[0]
	require.Equal(t, StateMappedNotMounted, st.State)
	require.Contains(t, st.Reason, "mapping exists but is not mounted")
	var tbl bytes.Buffer
	require.NoError(t, WriteStatusTable(&tbl, k.Status()))
	require.Contains(t, tbl.String(), "mapped-not-mounted: ")
}

// Protocol errors wrap the context's error; the audit log says the key is being sent
// before it is.
func TestProtocolErrorsWrapAndAuditBeforeSend(t *testing.T) {
	in := newInstance(t, "i-0123456789abcdef0", "vol-0123456789abcdef0")
	in.cfg.DelayMS = 3000
	in.write()
	sec := &vault{m: map[string][]byte{in.volID: []byte(testPassphrase)}}
	var audit lockedAudit
	k, err := New(Options{NoEC2: true, Secrets: sec, RequestTimeout: time.Second, Audit: &audit}, nil)
	require.NoError(t, err)
	_, err = k.UnlockOnce(context.Background(), in.target())
	require.ErrorIs(t, err, ErrProtocol)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var steps []string
	for _, l := range strings.Split(strings.TrimSpace(audit.String()), "\n") {
		var e auditEntry
		require.NoError(t, json.Unmarshal([]byte(l), &e))
		steps = append(steps, e.Step+"="+e.Decision)
	}
	require.Contains(t, steps, "send=sending", "%v", steps)
}

type lockedAudit struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedAudit) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedAudit) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// A transient EC2 error in Run's backstop poll keeps a healthy connection: no redial, no
// needs-unlock.
func TestRunKeepsConnectionOnTransientEC2Error(t *testing.T) {
	moto := awstest.StartMoto(t)
	direct := awstest.NewEC2Client(moto)
	var mu sync.Mutex
	failing, failed := false, 0
	client := awstest.NewEC2Client(awstest.StartProxy(t, moto, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		form, _ := url.ParseQuery(string(body))
		mu.Lock()
		defer mu.Unlock()
		if failing && form.Get("Action") == "DescribeInstances" {
			failed++
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>Unavailable</Code><Message>try later</Message></Error></Errors><RequestID>x</RequestID></Response>`)
			return true
		}
		return false
	}))
	ctx := context.Background()
	inst := awstest.RunInstance(t, ctx, direct, "us-east-1a", "/dev/sdf")
	vol := volumeAtInternal(t, ctx, direct, inst, "/dev/sdf")
	in := newInstance(t, inst, vol)
	sec := &vault{m: map[string][]byte{vol: []byte(testPassphrase)}}
	var audit lockedAudit
	k, err := New(Options{EC2: client, Secrets: sec, PollEvery: 300 * time.Millisecond, Audit: &audit,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}, []Target{in.target()})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = k.Run(rctx) }()
	waitStatus(t, k, in.target().Name, 30*time.Second, func(s TargetStatus) bool { return s.State == StateUnlocked })
	connects := strings.Count(audit.String(), `"step":"connect","decision":"ok"`)
	mu.Lock()
	failing = true
	mu.Unlock()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return failed >= 3 }, 30*time.Second, 50*time.Millisecond)
	mu.Lock()
	failing = false
	mu.Unlock()
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, StateUnlocked, k.Status()[0].State)
	require.Equal(t, connects, strings.Count(audit.String(), `"step":"connect","decision":"ok"`), "the connection was kept")
}

func volumeAtInternal(t *testing.T, ctx context.Context, c *ec2.Client, instance, device string) string {
	t.Helper()
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instance}})
	require.NoError(t, err)
	for _, m := range out.Reservations[0].Instances[0].BlockDeviceMappings {
		if aws.ToString(m.DeviceName) == device {
			return aws.ToString(m.Ebs.VolumeId)
		}
	}
	t.Fatalf("no volume at %s", device)
	return ""
}
