package ebs_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/ebs"
)

// gatedEC2 is an in-memory EC2 whose AttachVolume can be held open, and whose
// DescribeInstances lags (never shows hot-attached volumes), as EC2's can.
type gatedEC2 struct {
	ebs.EC2API
	mu      sync.Mutex
	vols    map[string]*types.Volume
	gate    map[string]chan struct{} // volume → released when closed
	entered chan string              // device names as AttachVolume is entered
}

func (g *gatedEC2) DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: []types.Instance{{
		InstanceId: aws.String("i-1"), RootDeviceName: aws.String("/dev/xvda"),
	}}}}}, nil
}

func (g *gatedEC2) DescribeVolumes(_ context.Context, in *ec2.DescribeVolumesInput, _ ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := &ec2.DescribeVolumesOutput{}
	for _, id := range in.VolumeIds {
		if v, ok := g.vols[id]; ok {
			out.Volumes = append(out.Volumes, *v)
		}
	}
	return out, nil
}

func (g *gatedEC2) AttachVolume(_ context.Context, in *ec2.AttachVolumeInput, _ ...func(*ec2.Options)) (*ec2.AttachVolumeOutput, error) {
	g.entered <- *in.Device
	g.mu.Lock()
	gate := g.gate[*in.VolumeId]
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	v := g.vols[*in.VolumeId]
	v.State = types.VolumeStateInUse
	v.Attachments = []types.VolumeAttachment{{VolumeId: in.VolumeId, InstanceId: in.InstanceId, Device: in.Device, State: types.VolumeAttachmentStateAttached}}
	return &ec2.AttachVolumeOutput{State: types.VolumeAttachmentStateAttaching}, nil
}

// Two attaches in flight on one instance never pick the same name, even though
// DescribeInstances does not show the first yet: the Client's in-flight set does.
func TestAttachInFlightNames(t *testing.T) {
	g := &gatedEC2{
		vols: map[string]*types.Volume{
			"vol-a": {VolumeId: aws.String("vol-a"), State: types.VolumeStateAvailable},
			"vol-b": {VolumeId: aws.String("vol-b"), State: types.VolumeStateAvailable},
		},
		gate:    map[string]chan struct{}{"vol-a": make(chan struct{})},
		entered: make(chan string, 4),
	}
	c := ebs.New(g, ebs.Options{Wait: tinyWait})
	ctx := context.Background()

	var wg sync.WaitGroup
	var attA *ebs.Attachment
	var errA error
	wg.Add(1)
	go func() {
		defer wg.Done()
		attA, errA = c.Attach(ctx, "vol-a", ebs.AttachOptions{InstanceID: "i-1"})
	}()
	require.Equal(t, "/dev/sdf", <-g.entered)
	assert.Equal(t, []string{"/dev/sdf"}, c.InFlight("i-1"))

	attB, err := c.Attach(ctx, "vol-b", ebs.AttachOptions{InstanceID: "i-1"})
	require.NoError(t, err)
	assert.Equal(t, "/dev/sdg", attB.Device)
	require.Equal(t, "/dev/sdg", <-g.entered)

	close(g.gate["vol-a"])
	wg.Wait()
	require.NoError(t, errA)
	assert.Equal(t, "/dev/sdf", attA.Device)
	assert.Empty(t, c.InFlight("i-1"))
}

// Every name taken: ErrNoFreeDevice, nothing sent.
func TestAttachNoFreeName(t *testing.T) {
	g := &fullInstance{vol: types.Volume{VolumeId: aws.String("vol-a"), State: types.VolumeStateAvailable}}
	c := ebs.New(g, ebs.Options{Wait: tinyWait})
	_, err := c.Attach(context.Background(), "vol-a", ebs.AttachOptions{InstanceID: "i-1"})
	require.ErrorIs(t, err, ebs.ErrNoFreeDevice)
	assert.Contains(t, err.Error(), "vol-a")
	assert.Contains(t, err.Error(), "i-1")
}

type fullInstance struct {
	ebs.EC2API
	vol types.Volume
}

func (f *fullInstance) DescribeVolumes(context.Context, *ec2.DescribeVolumesInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error) {
	return &ec2.DescribeVolumesOutput{Volumes: []types.Volume{f.vol}}, nil
}

func (f *fullInstance) DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	inst := types.Instance{InstanceId: aws.String("i-1")}
	for _, d := range ebs.DeviceNames() {
		// xvd spellings occupy the sd slots too
		inst.BlockDeviceMappings = append(inst.BlockDeviceMappings, types.InstanceBlockDeviceMapping{DeviceName: aws.String("/dev/xvd" + d[len("/dev/sd"):])})
	}
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: []types.Instance{inst}}}}, nil
}

// A volume attached elsewhere is refused with ErrInUse naming the other instance; the
// context bounds every wait.
func TestAttachInUseElsewhere(t *testing.T) {
	f := &fullInstance{vol: types.Volume{VolumeId: aws.String("vol-a"), State: types.VolumeStateInUse,
		Attachments: []types.VolumeAttachment{{InstanceId: aws.String("i-other"), Device: aws.String("/dev/sdf"), State: types.VolumeAttachmentStateAttached}}}}
	c := ebs.New(f, ebs.Options{Wait: tinyWait})
	_, err := c.Attach(context.Background(), "vol-a", ebs.AttachOptions{InstanceID: "i-1"})
	require.ErrorIs(t, err, ebs.ErrInUse)
	assert.Contains(t, err.Error(), "i-other")

	// creating forever: WaitAvailable gives up at its timeout, or earlier with the context.
	f.vol = types.Volume{VolumeId: aws.String("vol-a"), State: types.VolumeStateCreating}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = ebs.New(f, ebs.Options{Wait: ebs.WaitOptions{PollInitial: time.Millisecond}}).WaitAvailable(ctx, "vol-a")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = ebs.New(f, ebs.Options{Wait: ebs.WaitOptions{PollInitial: time.Millisecond, AvailableTimeout: 20 * time.Millisecond}}).WaitAvailable(context.Background(), "vol-a")
	require.ErrorIs(t, err, ebs.ErrTimeout)
	var ee *ebs.Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "creating", ee.State)

	// a volume that fails while being created
	f.vol.State = types.VolumeStateError
	_, err = c.WaitAvailable(context.Background(), "vol-a")
	require.ErrorIs(t, err, ebs.ErrVolumeFailed)
}

// scripted is an in-memory EC2 answering DescribeVolumes from a script of volume states
// (the last one repeats) and AttachVolume/DetachVolume with fixed errors.
type scripted struct {
	ebs.EC2API
	mu        sync.Mutex
	states    []types.Volume
	attachErr error
	detachErr error
	detached  []ec2.DetachVolumeInput
}

func (s *scripted) DescribeVolumes(context.Context, *ec2.DescribeVolumesInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.states[0]
	if len(s.states) > 1 {
		s.states = s.states[1:]
	}
	return &ec2.DescribeVolumesOutput{Volumes: []types.Volume{v}}, nil
}

func (s *scripted) DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: []types.Instance{{InstanceId: aws.String("i-1")}}}}}, nil
}

func (s *scripted) AttachVolume(context.Context, *ec2.AttachVolumeInput, ...func(*ec2.Options)) (*ec2.AttachVolumeOutput, error) {
	return nil, s.attachErr
}

func (s *scripted) DetachVolume(_ context.Context, in *ec2.DetachVolumeInput, _ ...func(*ec2.Options)) (*ec2.DetachVolumeOutput, error) {
	s.mu.Lock()
	s.detached = append(s.detached, *in)
	s.mu.Unlock()
	return &ec2.DetachVolumeOutput{}, s.detachErr
}

func volState(state types.VolumeState, att ...types.VolumeAttachmentState) types.Volume {
	v := types.Volume{VolumeId: aws.String("vol-a"), State: state}
	for _, a := range att {
		v.Attachments = append(v.Attachments, types.VolumeAttachment{VolumeId: aws.String("vol-a"),
			InstanceId: aws.String("i-1"), Device: aws.String("/dev/sdf"), State: a})
	}
	return v
}

// The first AttachVolume worked but its answer was lost; the resend is refused
// (IncorrectState). Attach sees its own attachment and succeeds.
func TestAttachResentRequestRefused(t *testing.T) {
	s := &scripted{
		states: []types.Volume{
			volState(types.VolumeStateAvailable),
			volState(types.VolumeStateInUse, types.VolumeAttachmentStateAttaching),
			volState(types.VolumeStateInUse, types.VolumeAttachmentStateAttached),
		},
		attachErr: &smithy.GenericAPIError{Code: "IncorrectState", Message: "vol-a is in-use"},
	}
	ev := &events{}
	c := ebs.New(s, ebs.Options{Wait: tinyWait, Progress: ev.add})
	att, err := c.Attach(context.Background(), "vol-a", ebs.AttachOptions{InstanceID: "i-1"})
	require.NoError(t, err)
	assert.Equal(t, "/dev/sdf", att.Device)
	assert.True(t, ev.find(func(x ebs.Event) bool { return strings.Contains(x.Message, "IncorrectState") }))
}

// A detach that stays "busy" (the instance still uses the device) warns once and ends in
// ErrTimeout naming the state; a later "detached" ends the wait.
func TestDetachBusy(t *testing.T) {
	busy := volState(types.VolumeStateInUse, types.VolumeAttachmentStateBusy)
	s := &scripted{states: []types.Volume{volState(types.VolumeStateInUse, types.VolumeAttachmentStateAttached), busy}}
	ev := &events{}
	w := tinyWait
	w.DetachTimeout = 30 * time.Millisecond
	c := ebs.New(s, ebs.Options{Wait: w, Progress: ev.add})
	err := c.Detach(context.Background(), "vol-a", ebs.DetachOptions{})
	require.ErrorIs(t, err, ebs.ErrTimeout)
	var ee *ebs.Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "busy", ee.State)
	assert.Equal(t, "i-1", ee.InstanceID)
	assert.True(t, ev.find(func(x ebs.Event) bool { return x.Warning && strings.Contains(x.Message, "unmount") }))
	require.Len(t, s.detached, 1)
	assert.False(t, aws.ToBool(s.detached[0].Force))

	s.states = []types.Volume{volState(types.VolumeStateInUse, types.VolumeAttachmentStateAttached), busy, busy, volState(types.VolumeStateAvailable)}
	require.NoError(t, ebs.New(s, ebs.Options{Wait: tinyWait}).Detach(context.Background(), "vol-a", ebs.DetachOptions{}))

	// EC2 says "not attached" to the detach itself: success.
	s.states = []types.Volume{volState(types.VolumeStateInUse, types.VolumeAttachmentStateAttached), volState(types.VolumeStateAvailable)}
	s.detachErr = &smithy.GenericAPIError{Code: "IncorrectState"}
	require.NoError(t, ebs.New(s, ebs.Options{Wait: tinyWait}).Detach(context.Background(), "vol-a", ebs.DetachOptions{}))
}

// countingAttach counts AttachVolume calls on top of a scripted EC2.
type countingAttach struct {
	*scripted
	attaches []string
}

func (c *countingAttach) AttachVolume(ctx context.Context, in *ec2.AttachVolumeInput, o ...func(*ec2.Options)) (*ec2.AttachVolumeOutput, error) {
	c.attaches = append(c.attaches, aws.ToString(in.Device))
	return c.scripted.AttachVolume(ctx, in, o...)
}

// The first AttachVolume worked but its answer was lost; EC2 refuses the resend with
// "already in use" because the point is now taken by this very volume. Attach must see its
// own attachment and wait for it — not report ErrInUse (leaving an attachment nobody
// accounts for) nor mark the name bad and try another one.
func TestAttachResentRequestDeviceInUse(t *testing.T) {
	for _, tc := range []struct{ name, device string }{{"ExplicitDevice", "/dev/sdf"}, {"ChosenDevice", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			s := &countingAttach{scripted: &scripted{
				states: []types.Volume{
					volState(types.VolumeStateAvailable),
					volState(types.VolumeStateInUse, types.VolumeAttachmentStateAttaching),
					volState(types.VolumeStateInUse, types.VolumeAttachmentStateAttached),
				},
				attachErr: &smithy.GenericAPIError{Code: "InvalidParameterValue",
					Message: "Invalid value '/dev/sdf' for unixDevice. Attachment point /dev/sdf is already in use"},
			}}
			c := ebs.New(s, ebs.Options{Wait: tinyWait})
			att, err := c.Attach(context.Background(), "vol-a", ebs.AttachOptions{InstanceID: "i-1", Device: tc.device})
			require.NoError(t, err)
			assert.Equal(t, ebs.AttachmentAttached, att.State)
			assert.Equal(t, "/dev/sdf", att.Device)
			assert.Equal(t, []string{"/dev/sdf"}, s.attaches, "no other name tried")
			assert.Empty(t, c.InFlight("i-1"))
		})
	}
}

// deleteScripted answers DescribeVolumes from a script and DeleteVolume with a fixed error,
// recording the IDs it was asked to delete.
type deleteScripted struct {
	*scripted
	deleteErr error
	deleted   []string
}

func (d *deleteScripted) DeleteVolume(_ context.Context, in *ec2.DeleteVolumeInput, _ ...func(*ec2.Options)) (*ec2.DeleteVolumeOutput, error) {
	d.deleted = append(d.deleted, aws.ToString(in.VolumeId))
	return &ec2.DeleteVolumeOutput{}, d.deleteErr
}

// DeleteVolume refused after the first (lost) attempt started the deletion: Delete sees the
// volume "deleting" and waits for it to go. A refusal while the volume is still there is
// reported with the volume and its state.
func TestDeleteResentRequestRefused(t *testing.T) {
	refused := &smithy.GenericAPIError{Code: "IncorrectState", Message: "The volume 'vol-a' is 'deleting'"}
	d := &deleteScripted{scripted: &scripted{states: []types.Volume{
		volState(types.VolumeStateAvailable),
		volState(types.VolumeStateDeleting),
		volState(types.VolumeStateDeleted),
	}}, deleteErr: refused}
	require.NoError(t, ebs.New(d, ebs.Options{Wait: tinyWait}).Delete(context.Background(), "vol-a", ebs.DeleteOptions{}))
	assert.Equal(t, []string{"vol-a"}, d.deleted)

	d = &deleteScripted{scripted: &scripted{states: []types.Volume{volState(types.VolumeStateAvailable)}},
		deleteErr: &smithy.GenericAPIError{Code: "IncorrectState", Message: "The volume 'vol-a' is 'available'"}}
	err := ebs.New(d, ebs.Options{Wait: tinyWait}).Delete(context.Background(), "vol-a", ebs.DeleteOptions{})
	require.Error(t, err)
	var ee *ebs.Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "vol-a", ee.VolumeID)
	assert.Equal(t, "available", ee.State)
	assert.Contains(t, err.Error(), "IncorrectState")
}

// An explicit device name that another attach of this Client holds right now is refused as
// in use, naming the device — not reported as "no free device name among /dev/sdf…/dev/sdp".
func TestAttachExplicitNameInFlight(t *testing.T) {
	g := &gatedEC2{
		vols: map[string]*types.Volume{
			"vol-a": {VolumeId: aws.String("vol-a"), State: types.VolumeStateAvailable},
			"vol-b": {VolumeId: aws.String("vol-b"), State: types.VolumeStateAvailable},
		},
		gate:    map[string]chan struct{}{"vol-a": make(chan struct{})},
		entered: make(chan string, 4),
	}
	c := ebs.New(g, ebs.Options{Wait: tinyWait})
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		_, err := c.Attach(ctx, "vol-a", ebs.AttachOptions{InstanceID: "i-1", Device: "/dev/sdk"})
		done <- err
	}()
	require.Equal(t, "/dev/sdk", <-g.entered)

	_, err := c.Attach(ctx, "vol-b", ebs.AttachOptions{InstanceID: "i-1", Device: "/dev/xvdk"})
	require.ErrorIs(t, err, ebs.ErrInUse)
	require.NotErrorIs(t, err, ebs.ErrNoFreeDevice)
	var ee *ebs.Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "/dev/xvdk", ee.Device)
	assert.Equal(t, "vol-b", ee.VolumeID)

	close(g.gate["vol-a"])
	require.NoError(t, <-done)
}

// fixedMetadata is an IMDS that names instance i-1 in us-east-1c.
type fixedMetadata struct{}

func (fixedMetadata) GetInstanceIdentityDocument(context.Context, *imds.GetInstanceIdentityDocumentInput, ...func(*imds.Options)) (*imds.GetInstanceIdentityDocumentOutput, error) {
	return &imds.GetInstanceIdentityDocumentOutput{InstanceIdentityDocument: imds.InstanceIdentityDocument{
		InstanceID: "i-1", AvailabilityZone: "us-east-1c", Region: "us-east-1"}}, nil
}

// LocalDevice of a volume whose attachment to this instance is being removed (or gone) fails
// at once, naming the state, instead of waiting DeviceTimeout for a device that will not come.
func TestLocalDeviceDetaching(t *testing.T) {
	for _, st := range []types.VolumeAttachmentState{types.VolumeAttachmentStateDetaching, types.VolumeAttachmentStateBusy, types.VolumeAttachmentStateDetached} {
		t.Run(string(st), func(t *testing.T) {
			s := &scripted{states: []types.Volume{volState(types.VolumeStateInUse, st)}}
			w := tinyWait
			w.DeviceTimeout = time.Hour // a wait would hang the test
			c := ebs.New(s, ebs.Options{Wait: w, Metadata: fixedMetadata{}, Resolve: ebs.ResolveOptions{SysRoot: t.TempDir(), DevRoot: t.TempDir()}})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // bounds the old wait
			defer cancel()
			_, err := c.LocalDevice(ctx, "vol-a")
			require.ErrorIs(t, err, ebs.ErrDeviceNotFound)
			var ee *ebs.Error
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, string(st), ee.State)
			assert.Equal(t, "i-1", ee.InstanceID)
			assert.Equal(t, "/dev/sdf", ee.Device)
		})
	}
}
