package ebs_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/ebs"
)

// testFaults runs the package through the fault-injecting proxy in front of moto.
func testFaults(t *testing.T, e *env) {
	t.Run("ThrottleBurst", func(t *testing.T) { testThrottleBurst(t, e) })
	t.Run("ThrottleOutlastsSDKRetries", func(t *testing.T) { testThrottleInWait(t, e) })
	t.Run("OverloadOutlastsSDKRetries", func(t *testing.T) { testOverloadInWait(t, e) })
	t.Run("NotFoundAfterCreate", func(t *testing.T) { testNotFoundAfterCreate(t, e) })
	t.Run("StuckAttaching", func(t *testing.T) { testStuckAttaching(t, e) })
	t.Run("DeviceNameInUse", func(t *testing.T) { testDeviceInUse(t, e) })
	t.Run("DroppedCreate", func(t *testing.T) { testDroppedCreate(t, e) })
	t.Run("DroppedAnswers", func(t *testing.T) { testDroppedAnswers(t, e) })
	t.Run("ForceOnlyWhenAsked", func(t *testing.T) { testForce(t, e) })
	t.Run("PersistentServerError", func(t *testing.T) { testPersistentServerError(t, e) })
	t.Run("ServerErrorBurst", func(t *testing.T) { testServerErrorBurst(t, e) })
	t.Run("ProgressOneAtATime", func(t *testing.T) { testProgressOneAtATime(t, e) })
}

func tagged(t *testing.T) map[string]string { return map[string]string{"test": t.Name()} }

// available creates a volume through c and waits for it.
func available(t *testing.T, c *ebs.Client, name string) *ebs.Volume {
	t.Helper()
	ctx := context.Background()
	v, err := c.Create(ctx, ebs.CreateOptions{Name: name, SizeGiB: 1, AvailabilityZone: testAZ, Tags: tagged(t)})
	require.NoError(t, err)
	v, err = c.WaitAvailable(ctx, v.ID)
	require.NoError(t, err)
	return v
}

// RequestLimitExceeded (503) bursts before every step: the SDK retryer (DescribeVolumes,
// AttachVolume, …) and Create's own resend loop (CreateVolume) get through.
func testThrottleBurst(t *testing.T, e *env) {
	ctx := context.Background()
	e = e.withInstance(t, false)
	p := newFaultProxy(t, e.moto)
	ev := &events{}
	c := e.client(t, p.URL, ev)

	p.set(func(p *faultProxy) { p.throttle[""] = 3; p.throttle["CreateVolume"] = 2 })
	v, err := c.Create(ctx, ebs.CreateOptions{Name: "throttled", SizeGiB: 1, AvailabilityZone: testAZ, Tags: tagged(t)})
	require.NoError(t, err)
	assert.Equal(t, 5, p.fired("throttle"))
	assert.True(t, ev.find(func(x ebs.Event) bool {
		return x.Op == "create" && x.Warning && strings.Contains(x.Message, "RequestLimitExceeded")
	}))

	steps := []func() error{
		func() error { _, err := c.WaitAvailable(ctx, v.ID); return err },
		func() error { _, err := c.Attach(ctx, v.ID, ebs.AttachOptions{InstanceID: e.instance}); return err },
		func() error { return c.Detach(ctx, v.ID, ebs.DetachOptions{}) },
		func() error { return c.Delete(ctx, v.ID, ebs.DeleteOptions{}) },
	}
	for i, step := range steps {
		p.set(func(p *faultProxy) { p.throttle[""] = 3 })
		require.NoError(t, step(), "step %d", i)
	}
	assert.Equal(t, 5+3*len(steps), p.fired("throttle"))
	for _, cv := range p.callsOf("CreateVolume") {
		assert.Equal(t, ebs.ClientToken("throttled"), cv.Get("ClientToken"))
	}
	assert.Empty(t, e.motoVolumes(t, t.Name()), "the one volume was deleted, no second one exists")
}

// Throttling that outlasts the SDK's attempts inside a wait loop is ridden out by the loop.
func testThrottleInWait(t *testing.T, e *env) {
	ctx := context.Background()
	p := newFaultProxy(t, e.moto)
	ev := &events{}
	c := e.client(t, p.URL, ev)
	v, err := c.Create(ctx, ebs.CreateOptions{SizeGiB: 1, AvailabilityZone: testAZ, Tags: tagged(t)})
	require.NoError(t, err)
	p.set(func(p *faultProxy) { p.throttle["DescribeVolumes"] = 10 }) // SDK gives up after 4
	v, err = c.WaitAvailable(ctx, v.ID)
	require.NoError(t, err)
	assert.Equal(t, ebs.StateAvailable, v.State)
	assert.Equal(t, 10, p.fired("throttle"))
	assert.True(t, ev.find(func(x ebs.Event) bool { return x.Op == "wait-available" && x.Warning }))
}

// EC2's overload answer (503 Unavailable or ServiceUnavailable, or a 503 from something in
// front of EC2 with a body of its own) says "slow down", as RequestLimitExceeded does: a wait
// rides it out instead of ending with ErrServer.
func testOverloadInWait(t *testing.T, e *env) {
	bodies := map[string]string{
		"Unavailable":        "",
		"ServiceUnavailable": `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>ServiceUnavailable</Code><Message>Service unavailable</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`,
		"NotEC2":             "<html><body><h1>503 Service Unavailable</h1></body></html>",
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			p := newFaultProxy(t, e.moto)
			ev := &events{}
			c := e.client(t, p.URL, ev)
			v, err := c.Create(ctx, ebs.CreateOptions{SizeGiB: 1, AvailabilityZone: testAZ, Tags: tagged(t)})
			require.NoError(t, err)
			p.set(func(p *faultProxy) { p.overload["DescribeVolumes"] = 10; p.overloadBody = body }) // SDK gives up after 4
			v, err = c.WaitAvailable(ctx, v.ID)
			require.NoError(t, err)
			assert.Equal(t, ebs.StateAvailable, v.State)
			assert.Equal(t, 10, p.fired("overload"))
			assert.True(t, ev.find(func(x ebs.Event) bool { return x.Op == "wait-available" && x.Warning }))
			require.NoError(t, c.Delete(ctx, v.ID, ebs.DeleteOptions{}))
		})
	}
}

// InvalidVolume.NotFound for the first DescribeVolumes after create (eventual consistency)
// is tolerated for NotFoundGrace, and only for that long.
func testNotFoundAfterCreate(t *testing.T, e *env) {
	ctx := context.Background()
	p := newFaultProxy(t, e.moto)
	ev := &events{}
	c := e.client(t, p.URL, ev)

	p.set(func(p *faultProxy) { p.notFound = 3 })
	v, err := c.Create(ctx, ebs.CreateOptions{SizeGiB: 1, AvailabilityZone: testAZ, Tags: tagged(t)})
	require.NoError(t, err)
	got, err := c.WaitAvailable(ctx, v.ID)
	require.NoError(t, err)
	assert.Equal(t, ebs.StateAvailable, got.State)
	assert.Equal(t, 3, p.fired("not-found"))
	assert.True(t, ev.find(func(x ebs.Event) bool { return x.State == "not-yet-visible" }))

	// A volume that never shows up: the grace window ends the wait with ErrNotFound.
	short := e.client(t, p.URL, nil, func(o *ebs.Options) { o.Wait.NotFoundGrace = time.Nanosecond })
	p.set(func(p *faultProxy) { p.notFound = 1 << 20 })
	v2, err := short.Create(ctx, ebs.CreateOptions{SizeGiB: 1, AvailabilityZone: testAZ, Tags: tagged(t)})
	require.NoError(t, err)
	_, err = short.WaitAvailable(ctx, v2.ID)
	require.ErrorIs(t, err, ebs.ErrNotFound)
	assert.Contains(t, err.Error(), v2.ID)
	p.set(func(p *faultProxy) { p.notFoundArmed = map[string]int{} })
}

// An attachment that stays "attaching" is rolled back with a detach and reported with
// ErrAttachTimeout naming volume, instance, device and state.
func testStuckAttaching(t *testing.T, e *env) {
	ctx := context.Background()
	e = e.withInstance(t, false)
	p := newFaultProxy(t, e.moto)
	ev := &events{}
	c := e.client(t, p.URL, ev)
	v := available(t, c, "")

	p.set(func(p *faultProxy) { p.attaching[v.ID] = true })
	_, err := c.Attach(ctx, v.ID, ebs.AttachOptions{InstanceID: e.instance})
	require.ErrorIs(t, err, ebs.ErrAttachTimeout)
	var ee *ebs.Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, ebs.Error{Op: "attach", VolumeID: v.ID, InstanceID: e.instance, Device: "/dev/sdf", State: "attaching", Err: ee.Err}, *ee)
	assert.Positive(t, p.fired("attaching"))

	detaches := p.callsOf("DetachVolume")
	require.Len(t, detaches, 1, "rolled back")
	assert.Equal(t, v.ID, detaches[0].Get("VolumeId"))
	assert.Equal(t, e.instance, detaches[0].Get("InstanceId"))
	assert.Equal(t, "/dev/sdf", detaches[0].Get("Device"))
	assert.NotEqual(t, "true", detaches[0].Get("Force"))
	out, err := e.direct.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{v.ID}})
	require.NoError(t, err)
	assert.Equal(t, "available", string(out.Volumes[0].State))
	assert.Empty(t, out.Volumes[0].Attachments)
	assert.Empty(t, c.InFlight(e.instance))
	assert.True(t, ev.find(func(x ebs.Event) bool { return x.Warning && strings.Contains(x.Message, "roll back") }))

	// Once EC2 behaves, the same attach works.
	p.set(func(p *faultProxy) { delete(p.attaching, v.ID) })
	att, err := c.Attach(ctx, v.ID, ebs.AttachOptions{InstanceID: e.instance})
	require.NoError(t, err)
	assert.Equal(t, ebs.AttachmentAttached, att.State)
	require.NoError(t, c.Delete(ctx, v.ID, ebs.DeleteOptions{Detach: true}))
}

// "Attachment point … is already in use": the next free name is used; a name the caller
// chose is not replaced.
func testDeviceInUse(t *testing.T, e *env) {
	ctx := context.Background()
	e = e.withInstance(t, false, "/dev/sdf")
	p := newFaultProxy(t, e.moto)
	ev := &events{}
	c := e.client(t, p.URL, ev)
	v := available(t, c, "")

	// sdg and sdh are invisible to DescribeInstances but taken (e.g. AMI instance-store).
	p.set(func(p *faultProxy) { p.deviceInUse["/dev/sdg"] = true; p.deviceInUse["/dev/sdh"] = true })
	att, err := c.Attach(ctx, v.ID, ebs.AttachOptions{InstanceID: e.instance})
	require.NoError(t, err)
	assert.Equal(t, "/dev/sdi", att.Device)
	var tried []string
	for _, a := range p.callsOf("AttachVolume") {
		tried = append(tried, a.Get("Device"))
	}
	assert.Equal(t, []string{"/dev/sdg", "/dev/sdh", "/dev/sdi"}, tried, "sdf skipped: the instance's own mapping")
	assert.True(t, ev.find(func(x ebs.Event) bool { return x.Warning && x.Device == "/dev/sdg" }))

	v2 := available(t, c, "")
	_, err = c.Attach(ctx, v2.ID, ebs.AttachOptions{InstanceID: e.instance, Device: "/dev/sdg"})
	require.ErrorIs(t, err, ebs.ErrInUse)
	var ee *ebs.Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "/dev/sdg", ee.Device)
	assert.Len(t, p.callsOf("AttachVolume"), 4, "an explicit name is not replaced")

	// The refused names are remembered: the next attach goes straight to a good one.
	att2, err := c.Attach(ctx, v2.ID, ebs.AttachOptions{InstanceID: e.instance})
	require.NoError(t, err)
	assert.Equal(t, "/dev/sdj", att2.Device)
	attaches := p.callsOf("AttachVolume")
	require.Len(t, attaches, 5)
	assert.Equal(t, "/dev/sdj", attaches[4].Get("Device"))

	require.NoError(t, c.Delete(ctx, v.ID, ebs.DeleteOptions{Detach: true}))
	require.NoError(t, c.Delete(ctx, v2.ID, ebs.DeleteOptions{Detach: true}))
}

// Dropped connections on CreateVolume, before and after EC2 processed the request: exactly
// one volume exists afterwards, every resend carried the same ClientToken, and the volume
// returned is that one.
func testDroppedCreate(t *testing.T, e *env) {
	cases := []struct {
		name          string
		volName       string
		before, after int
	}{
		{"BeforeEC2", "dropped-before", 2, 0},
		{"AfterEC2", "dropped-after", 0, 1},
		{"AfterEC2Unnamed", "", 0, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			p := newFaultProxy(t, e.moto)
			c := e.client(t, p.URL, nil)
			p.set(func(p *faultProxy) { p.dropBefore["CreateVolume"], p.dropAfter["CreateVolume"] = tc.before, tc.after })
			v, err := c.Create(ctx, ebs.CreateOptions{Name: tc.volName, SizeGiB: 1, AvailabilityZone: testAZ, Tags: tagged(t)})
			require.NoError(t, err)
			assert.Equal(t, tc.before, p.fired("drop-before"))
			assert.Equal(t, min(tc.after, 1), p.fired("drop-after"), "the volume made by the lost request is found, not made again")
			assert.Equal(t, []string{v.ID}, e.motoVolumes(t, t.Name()), "one volume, the one returned")
			creates := p.callsOf("CreateVolume")
			require.NotEmpty(t, creates)
			for _, cv := range creates {
				assert.Equal(t, creates[0].Get("ClientToken"), cv.Get("ClientToken"))
			}
			if tc.volName != "" {
				assert.Equal(t, ebs.ClientToken(tc.volName), creates[0].Get("ClientToken"))
			}
			require.NoError(t, c.Delete(ctx, v.ID, ebs.DeleteOptions{}))
			for _, d := range p.callsOf("DeleteVolume") {
				assert.Equal(t, v.ID, d.Get("VolumeId"))
			}
		})
	}
}

// Force is sent only when asked, with a warning; Delete{Detach} detaches without force.
func testForce(t *testing.T, e *env) {
	ctx := context.Background()
	e = e.withInstance(t, false)
	p := newFaultProxy(t, e.moto)
	ev := &events{}
	c := e.client(t, p.URL, ev)
	v := available(t, c, "")

	_, err := c.Attach(ctx, v.ID, ebs.AttachOptions{InstanceID: e.instance})
	require.NoError(t, err)
	require.NoError(t, c.Detach(ctx, v.ID, ebs.DetachOptions{Force: true}))
	d := p.callsOf("DetachVolume")
	require.Len(t, d, 1)
	assert.Equal(t, "true", d[0].Get("Force"))
	assert.True(t, ev.find(func(x ebs.Event) bool { return x.Op == "detach" && x.Warning && strings.Contains(x.Message, "forcing") }))

	_, err = c.Attach(ctx, v.ID, ebs.AttachOptions{InstanceID: e.instance})
	require.NoError(t, err)
	require.NoError(t, c.Delete(ctx, v.ID, ebs.DeleteOptions{Detach: true}))
	d = p.callsOf("DetachVolume")
	require.Len(t, d, 2)
	assert.Equal(t, "false", d[1].Get("Force"))
	dels := p.callsOf("DeleteVolume")
	require.Len(t, dels, 1)
	assert.Equal(t, v.ID, dels[0].Get("VolumeId"))
	_, err = e.direct.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{v.ID}})
	require.Error(t, err)
	assert.Equal(t, aws.String(v.ID), aws.String(dels[0].Get("VolumeId")))
}

// Answers lost after EC2 acted on AttachVolume, DetachVolume and DeleteVolume: the SDK sends
// the request again, EC2 answers that there is nothing left to do, and each operation
// recognises its own work as done — and only the volume asked for is ever deleted.
func testDroppedAnswers(t *testing.T, e *env) {
	ctx := context.Background()
	e = e.withInstance(t, false)
	p := newFaultProxy(t, e.moto)
	c := e.client(t, p.URL, nil)
	v := available(t, c, "")
	keep := available(t, c, "")

	p.set(func(p *faultProxy) { p.dropAfter["AttachVolume"] = 1 })
	att, err := c.Attach(ctx, v.ID, ebs.AttachOptions{InstanceID: e.instance})
	require.NoError(t, err)
	assert.Equal(t, ebs.AttachmentAttached, att.State)

	p.set(func(p *faultProxy) { p.dropAfter["DetachVolume"] = 1 })
	require.NoError(t, c.Detach(ctx, v.ID, ebs.DetachOptions{}))

	p.set(func(p *faultProxy) { p.dropAfter["DeleteVolume"] = 1 })
	require.NoError(t, c.Delete(ctx, v.ID, ebs.DeleteOptions{}))

	assert.Equal(t, 3, p.fired("drop-after"))
	assert.Len(t, p.callsOf("DeleteVolume"), 2, "the SDK resent the delete")
	for _, d := range p.callsOf("DeleteVolume") {
		assert.Equal(t, v.ID, d.Get("VolumeId"))
	}
	assert.Equal(t, []string{keep.ID}, e.motoVolumes(t, t.Name()), "the other volume is untouched")
}

// retryEvents returns the messages of the warnings about SDK retries of action on volume.
func (ev *events) retries(op, volume, action string) []string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var out []string
	for _, e := range ev.all {
		if e.Op == op && e.VolumeID == volume && e.Warning && strings.HasPrefix(e.Message, "retrying "+action+":") {
			out = append(out, e.Message)
		}
	}
	return out
}

// A persistent 500 from EC2 is reported while the SDK retries, ends the operation after the
// SDK's attempts (one call) or once server errors have lasted Wait.ServerErrorBudget (a wait)
// instead of at the wait's timeout, and comes back as ErrServer naming the volume and
// instance, with EC2's error in the chain. The client makes 4 attempts per call (env.client).
func testPersistentServerError(t *testing.T, e *env) {
	const attempts = 4
	ctx := context.Background()
	e = e.withInstance(t, false)
	p := newFaultProxy(t, e.moto)
	ev := &events{}
	c := e.client(t, p.URL, ev)

	// polls returns how many polls the DescribeVolumes requests since before were, each
	// being the SDK's attempts.
	polls := func(t *testing.T, before int) int {
		t.Helper()
		n := len(p.callsOf("DescribeVolumes")) - before
		require.Zero(t, n%attempts, "every poll made the SDK's attempts: %d requests", n)
		return n / attempts
	}

	t.Run("DetachVolume", func(t *testing.T) {
		v := available(t, c, "")
		_, err := c.Attach(ctx, v.ID, ebs.AttachOptions{InstanceID: e.instance})
		require.NoError(t, err)
		p.set(func(p *faultProxy) { p.serverError["DetachVolume"] = 1 << 20 })
		err = c.Detach(ctx, v.ID, ebs.DetachOptions{})
		p.set(func(p *faultProxy) { delete(p.serverError, "DetachVolume") })
		require.ErrorIs(t, err, ebs.ErrServer)
		var ee *ebs.Error
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "detach", ee.Op)
		assert.Equal(t, v.ID, ee.VolumeID)
		assert.Equal(t, e.instance, ee.InstanceID)
		assert.Equal(t, "/dev/sdf", ee.Device)
		var api smithy.APIError
		require.ErrorAs(t, err, &api)
		assert.Equal(t, "InternalError", api.ErrorCode())
		assert.Len(t, p.callsOf("DetachVolume"), attempts, "the SDK's attempts, no more")
		assert.Equal(t, []string{
			"retrying DetachVolume: InternalError (attempt 2 of 4)",
			"retrying DetachVolume: InternalError (attempt 3 of 4)",
			"retrying DetachVolume: InternalError (attempt 4 of 4)",
		}, ev.retries("detach", v.ID, "DetachVolume"))
		require.NoError(t, c.Delete(ctx, v.ID, ebs.DeleteOptions{Detach: true}))
	})

	t.Run("DescribeVolumesInDetachWait", func(t *testing.T) {
		v := available(t, c, "")
		_, err := c.Attach(ctx, v.ID, ebs.AttachOptions{InstanceID: e.instance})
		require.NoError(t, err)
		before := len(p.callsOf("DescribeVolumes")) + 1 // the describe before the detach
		p.set(func(p *faultProxy) { p.thenServerError["DetachVolume"] = "DescribeVolumes" })
		err = c.Detach(ctx, v.ID, ebs.DetachOptions{})
		p.set(func(p *faultProxy) { delete(p.serverError, "DescribeVolumes") })
		require.ErrorIs(t, err, ebs.ErrServer)
		assert.NotErrorIs(t, err, ebs.ErrTimeout)
		var ee *ebs.Error
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, ebs.Error{Op: "detach", VolumeID: v.ID, InstanceID: e.instance, Device: "/dev/sdf", Err: ee.Err}, *ee)
		assert.Contains(t, err.Error(), "server errors for ")
		n := polls(t, before)
		assert.Positive(t, n)
		assert.Len(t, ev.retries("detach", v.ID, "DescribeVolumes"), n*(attempts-1))
		require.NoError(t, c.Delete(ctx, v.ID, ebs.DeleteOptions{Detach: true}))
	})

	t.Run("DescribeVolumesInAvailableWait", func(t *testing.T) {
		v, err := c.Create(ctx, ebs.CreateOptions{SizeGiB: 1, AvailabilityZone: testAZ, Tags: tagged(t)})
		require.NoError(t, err)
		before := len(p.callsOf("DescribeVolumes"))
		p.set(func(p *faultProxy) { p.serverError["DescribeVolumes"] = 1 << 20 })
		_, err = c.WaitAvailable(ctx, v.ID)
		p.set(func(p *faultProxy) { delete(p.serverError, "DescribeVolumes") })
		require.ErrorIs(t, err, ebs.ErrServer)
		assert.NotErrorIs(t, err, ebs.ErrTimeout)
		var ee *ebs.Error
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "wait-available", ee.Op)
		assert.Equal(t, v.ID, ee.VolumeID)
		n := polls(t, before)
		assert.Positive(t, n)
		assert.Len(t, ev.retries("wait-available", v.ID, "DescribeVolumes"), n*(attempts-1))
		require.NoError(t, c.Delete(ctx, v.ID, ebs.DeleteOptions{}))
	})

	// EC2 accepted the attachment, then every describe fails: Attach reports ErrServer only
	// after detaching the volume again, so a failed attach never leaves it attached.
	t.Run("DescribeVolumesInAttachWait", func(t *testing.T) {
		v := available(t, c, "")
		p.set(func(p *faultProxy) { p.thenServerError["AttachVolume"] = "DescribeVolumes" })
		_, err := c.Attach(ctx, v.ID, ebs.AttachOptions{InstanceID: e.instance})
		p.set(func(p *faultProxy) { delete(p.serverError, "DescribeVolumes") })
		require.ErrorIs(t, err, ebs.ErrServer)
		var ee *ebs.Error
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "attach", ee.Op)
		assert.Equal(t, v.ID, ee.VolumeID)
		assert.Equal(t, e.instance, ee.InstanceID)
		assert.Equal(t, "/dev/sdf", ee.Device)
		detaches := p.callsOf("DetachVolume")
		require.NotEmpty(t, detaches, "rolled back")
		last := detaches[len(detaches)-1]
		assert.Equal(t, v.ID, last.Get("VolumeId"))
		assert.Equal(t, e.instance, last.Get("InstanceId"))
		assert.NotEqual(t, "true", last.Get("Force"))
		out, err := e.direct.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{v.ID}})
		require.NoError(t, err)
		assert.Equal(t, "available", string(out.Volumes[0].State))
		assert.Empty(t, out.Volumes[0].Attachments)
		assert.Empty(t, c.InFlight(e.instance))
		assert.True(t, ev.find(func(x ebs.Event) bool {
			return x.VolumeID == v.ID && x.Warning && strings.Contains(x.Message, "roll back")
		}))
		require.NoError(t, c.Delete(ctx, v.ID, ebs.DeleteOptions{}))
	})
}

// A burst of server errors shorter than Wait.ServerErrorBudget inside each wait (available,
// attached, detached, deleted) is ridden out, however many polls it spans: several polls of
// the SDK's attempts each, or single requests with AWS_MAX_ATTEMPTS=1.
func testServerErrorBurst(t *testing.T, e *env) {
	for _, attempts := range []int{4, 1} {
		t.Run(fmt.Sprintf("Attempts%d", attempts), func(t *testing.T) {
			ctx := context.Background()
			e := e.withInstance(t, false)
			p := newFaultProxy(t, e.moto)
			c := e.client(t, p.URL, nil, func(o *ebs.Options) {
				o.Wait.ServerErrorBudget = time.Minute
				o.Retry.MaxAttempts = attempts
			})
			burst := 3 * attempts // three polls in a row fail

			v, err := c.Create(ctx, ebs.CreateOptions{SizeGiB: 1, AvailabilityZone: testAZ, Tags: tagged(t)})
			require.NoError(t, err)
			p.set(func(p *faultProxy) { p.serverError["DescribeVolumes"] = burst })
			_, err = c.WaitAvailable(ctx, v.ID)
			require.NoError(t, err)
			require.Equal(t, burst, p.fired("server-error"))

			steps := []struct {
				after string
				run   func() error
			}{
				{"AttachVolume", func() error { _, err := c.Attach(ctx, v.ID, ebs.AttachOptions{InstanceID: e.instance}); return err }},
				{"DetachVolume", func() error { return c.Detach(ctx, v.ID, ebs.DetachOptions{}) }},
				{"DeleteVolume", func() error { return c.Delete(ctx, v.ID, ebs.DeleteOptions{}) }},
			}
			for i, step := range steps {
				p.set(func(p *faultProxy) { p.thenServerError[step.after] = "DescribeVolumes"; p.thenServerErrors = burst })
				require.NoError(t, step.run(), step.after)
				require.Equal(t, (i+2)*burst, p.fired("server-error"), "the burst hit the wait after %s", step.after)
			}
			assert.Len(t, p.callsOf("DetachVolume"), 1, "the detach step only, no roll-back of the attach")
			assert.Empty(t, e.motoVolumes(t, t.Name()))
		})
	}
}

// Operations running in parallel on one Client, each reporting retries and state changes:
// Options.Progress is never entered while another call of it is running, so a callback that
// writes to a terminal or appends to a slice needs no lock of its own.
func testProgressOneAtATime(t *testing.T, e *env) {
	ctx := context.Background()
	p := newFaultProxy(t, e.moto)
	var inside, overlaps, calls atomic.Int32
	c := e.client(t, p.URL, nil, func(o *ebs.Options) {
		o.Progress = func(ebs.Event) {
			calls.Add(1)
			if inside.Add(1) > 1 {
				overlaps.Add(1)
			}
			for range 1000 { // a slow callback: give the other operations every chance to enter
				runtime.Gosched()
			}
			inside.Add(-1)
		}
	})
	const n = 4
	ids := make([]string, n)
	for i := range ids {
		v, err := c.Create(ctx, ebs.CreateOptions{SizeGiB: 1, AvailabilityZone: testAZ, Tags: tagged(t)})
		require.NoError(t, err)
		ids[i] = v.ID
	}
	p.set(func(p *faultProxy) { p.throttle["DescribeVolumes"] = 8 * n })
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, id := range ids {
		wg.Go(func() {
			_, errs[i] = c.WaitAvailable(ctx, id)
			if errs[i] == nil {
				errs[i] = c.Delete(ctx, id, ebs.DeleteOptions{})
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, 8*n, p.fired("throttle"))
	assert.GreaterOrEqual(t, calls.Load(), int32(8*n), "every throttled request was reported")
	assert.Zero(t, overlaps.Load(), "Progress entered while running")
}
