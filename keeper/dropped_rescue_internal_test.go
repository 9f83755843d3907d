package keeper

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/awstest"
)

// An AutoRescue target dropped by SetTargets while Run's rescue of it is still probing
// (its checks, before any change) stops there: no detach, no reboot. The rescue's checks
// run under the watcher's context, only its detach and what follows under Run's.
func TestRunDroppedTargetStopsItsRescue(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	direct := awstest.NewEC2Client(moto)
	proxy := &ec2Proxy{prompt: true}
	var k *Keeper
	var once sync.Once
	dropped := make(chan struct{})
	fault := func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		form, _ := url.ParseQuery(string(body))
		if form.Get("Action") == "GetConsoleOutput" {
			// Run saw the prompt: its rescue starts probing now. Drop the target meanwhile.
			once.Do(func() {
				go func() {
					time.Sleep(300 * time.Millisecond)
					require.NoError(t, k.SetTargets(nil))
					close(dropped)
				}()
			})
		}
		return proxy.fault(w, r, body)
	}
	client := awstest.NewEC2Client(awstest.StartProxy(t, moto, fault))
	instID := awstest.RunInstance(t, ctx, direct, "us-east-1a", "/dev/sdf")
	volID := dataVolume(t, direct, instID)
	in := newInstance(t, instID, volID)
	in.srv.Stop() // nothing listens: unreachable, and the console shows a prompt
	tg := in.target()
	tg.AutoRescue = true
	var audit lockedAudit
	var err error
	k, err = New(Options{EC2: client, Secrets: &vault{m: map[string][]byte{volID: []byte(testPassphrase)}}, Audit: &audit,
		DialTimeout: time.Second, PollEvery: 200 * time.Millisecond, RescueProbes: 3, RescueProbeEvery: time.Second,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}, []Target{tg})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- k.Run(rctx) }()

	select {
	case <-dropped:
	case <-time.After(30 * time.Second):
		t.Fatal("the console was never read")
	}
	// Long enough for the probes (3, 1 s apart) and a detach had the rescue gone on.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(audit.String(), `"step":"rescue-check","decision":"refused"`) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	require.Contains(t, audit.String(), `"step":"rescue-check","decision":"refused"`)
	require.Contains(t, audit.String(), "context canceled")
	require.Zero(t, proxy.seen("DetachVolume"), "a dropped target's rescue detached its volume")
	require.Zero(t, proxy.seen("RebootInstances"))
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}
