package ebs_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/internal/awstest"
)

const testAZ = "us-east-1c"

// tinyWait keeps every wait policy small so fault tests finish quickly. The values are
// bounds, never asserted.
var tinyWait = ebs.WaitOptions{
	PollInitial:      2 * time.Millisecond,
	PollMax:          20 * time.Millisecond,
	AvailableTimeout: 20 * time.Second,
	NotFoundGrace:    10 * time.Second,
	AttachTimeout:    20 * time.Second,
	AttachingTimeout: 300 * time.Millisecond,
	DetachTimeout:    20 * time.Second,
	DeleteTimeout:    20 * time.Second,
	DeviceTimeout:    2 * time.Second,
	DevicePoll:       5 * time.Millisecond,
	CreateAttempts:   5,
	// Short, so that a persistent server error ends a wait quickly; tests of a burst that
	// must be ridden out set it long.
	ServerErrorBudget: 100 * time.Millisecond,
}

var tinyBackoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })

// env is one moto_server, one instance in it, and (optionally) the metadata mock for it.
type env struct {
	moto     string      // moto endpoint
	direct   *ec2.Client // straight to moto, to check its state
	instance string
	metadata string // metadata mock endpoint ("" = none)
}

// newEnv starts moto (its first EC2 request costs seconds, so one moto serves a whole group
// of subtests) with no instance yet.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{moto: awstest.StartMoto(t)}
	e.direct = awstest.NewEC2Client(e.moto)
	return e
}

// withInstance returns a copy of e with a fresh instance (in testAZ, with extra block-device
// mappings) and, if asked, a metadata mock describing it.
func (e *env) withInstance(t *testing.T, withMetadata bool, devices ...string) *env {
	t.Helper()
	n := *e
	n.instance = awstest.RunInstance(t, context.Background(), e.direct, testAZ, devices...)
	n.metadata = ""
	if withMetadata {
		n.metadata = awstest.StartMetadataMock(t, awstest.MetadataConfig{InstanceID: n.instance, AZ: testAZ})
	}
	return &n
}

// events collects progress reports.
type events struct {
	mu  sync.Mutex
	all []ebs.Event
}

func (ev *events) add(e ebs.Event) { ev.mu.Lock(); ev.all = append(ev.all, e); ev.mu.Unlock() }

func (ev *events) find(pred func(ebs.Event) bool) bool {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for _, e := range ev.all {
		if pred(e) {
			return true
		}
	}
	return false
}

// client returns an ebs.Client built the production way (config.LoadDefaultConfig +
// NewFromConfig) pointed at endpoint, with tiny waits and SDK backoff.
func (e *env) client(t *testing.T, endpoint string, ev *events, mod ...func(*ebs.Options)) *ebs.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(awstest.Region),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: awstest.AccessKeyID, SecretAccessKey: awstest.SecretAccessKey}, nil
		})),
		config.WithBaseEndpoint(endpoint),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	)
	require.NoError(t, err)
	opts := ebs.Options{
		Wait:  tinyWait,
		Retry: ebs.RetryOptions{MaxAttempts: 4, Backoff: tinyBackoff},
	}
	if ev != nil {
		opts.Progress = ev.add
	}
	if e.metadata != "" {
		opts.Metadata = imds.New(imds.Options{Endpoint: e.metadata, EnableFallback: aws.FalseTernary})
	}
	for _, m := range mod {
		m(&opts)
	}
	return ebs.NewFromConfig(cfg, opts)
}

// motoVolumes returns the IDs of the volumes moto holds with tag test=name (every volume a
// subtest creates carries it).
func (e *env) motoVolumes(t *testing.T, name string) []string {
	t.Helper()
	out, err := e.direct.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{})
	require.NoError(t, err)
	var ids []string
	for _, v := range out.Volumes {
		for _, tag := range v.Tags {
			if aws.ToString(tag.Key) == "test" && aws.ToString(tag.Value) == name {
				ids = append(ids, aws.ToString(v.VolumeId))
			}
		}
	}
	sort.Strings(ids)
	return ids
}

// fakeNVMe makes a sysfs/dev tree holding one NVMe namespace with the volume's serial.
func fakeNVMe(t *testing.T, root, name, serial string) (sys, dev string) {
	t.Helper()
	sys, dev = filepath.Join(root, "sys"), filepath.Join(root, "dev")
	require.NoError(t, os.MkdirAll(filepath.Join(sys, "block", name, "device"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(sys, "block", name, "device", "serial"), []byte(serial+"\n"), 0o644))
	require.NoError(t, os.MkdirAll(dev, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dev, name), nil, 0o644))
	return sys, dev
}

// TestMoto runs everything that needs the EC2 API emulator against one moto_server.
func TestMoto(t *testing.T) {
	e := newEnv(t)
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, e) })
	t.Run("CreateIdempotent", func(t *testing.T) { testCreateIdempotent(t, e) })
	t.Run("ListAndFindByTag", func(t *testing.T) { testListAndFindByTag(t, e) })
	t.Run("FromSnapshotAndEncryption", func(t *testing.T) { testFromSnapshot(t, e) })
	t.Run("Faults", func(t *testing.T) { testFaults(t, e) })
	t.Run("NameTag", func(t *testing.T) { testNameTag(t, e) })
	t.Run("ExplicitDeviceTaken", func(t *testing.T) { testExplicitDeviceTaken(t, e) })
}

// A creation name is also the Name tag (what the console and the AWS CLI show), set in the
// CreateVolume request itself; an explicit Name tag wins.
func testNameTag(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.client(t, e.moto, nil)
	v, err := c.Create(ctx, ebs.CreateOptions{Name: "mysql-data", SizeGiB: 1, AvailabilityZone: testAZ, Tags: map[string]string{"test": t.Name()}})
	require.NoError(t, err)
	assert.Equal(t, "mysql-data", v.Tags["Name"])
	out, err := e.direct.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{v.ID}})
	require.NoError(t, err)
	require.Len(t, out.Volumes, 1)
	tags := map[string]string{}
	for _, tag := range out.Volumes[0].Tags {
		tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	assert.Equal(t, "mysql-data", tags["Name"], "moto holds the Name tag")
	assert.Equal(t, ebs.ClientToken("mysql-data"), tags[ebs.TokenTagKey])

	w, err := c.Create(ctx, ebs.CreateOptions{Name: "web-data", SizeGiB: 1, AvailabilityZone: testAZ, Tags: map[string]string{"test": t.Name(), "Name": "web"}})
	require.NoError(t, err)
	got, err := c.Describe(ctx, w.ID)
	require.NoError(t, err)
	assert.Equal(t, "web", got.Tags["Name"])
}

// An explicit device name the instance already uses is refused before AttachVolume is sent.
func testExplicitDeviceTaken(t *testing.T, e *env) {
	ctx := context.Background()
	e = e.withInstance(t, false)
	p := newFaultProxy(t, e.moto)
	c := e.client(t, p.URL, nil)
	a := available(t, c, "")
	b := available(t, c, "")
	_, err := c.Attach(ctx, a.ID, ebs.AttachOptions{InstanceID: e.instance, Device: "/dev/sdf"})
	require.NoError(t, err)

	_, err = c.Attach(ctx, b.ID, ebs.AttachOptions{InstanceID: e.instance, Device: "/dev/xvdf"})
	require.ErrorIs(t, err, ebs.ErrInUse)
	var ee *ebs.Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, b.ID, ee.VolumeID)
	assert.Equal(t, e.instance, ee.InstanceID)
	assert.Equal(t, "/dev/xvdf", ee.Device)
	assert.Contains(t, err.Error(), "already used by instance "+e.instance)
	for _, call := range p.callsOf("AttachVolume") {
		assert.NotEqual(t, b.ID, call.Get("VolumeId"), "no AttachVolume for the refused volume")
	}
	got, err := c.Describe(ctx, b.ID)
	require.NoError(t, err)
	assert.Equal(t, ebs.StateAvailable, got.State)
	assert.Empty(t, got.Attachments)

	require.NoError(t, c.Delete(ctx, a.ID, ebs.DeleteOptions{Detach: true}))
	require.NoError(t, c.Delete(ctx, b.ID, ebs.DeleteOptions{Detach: true}))
}

func testLifecycle(t *testing.T, e *env) {
	ctx := context.Background()
	e = e.withInstance(t, true, "/dev/sdf", "/dev/xvdg")
	proxy := newFaultProxy(t, e.moto)
	ev := &events{}
	c := e.client(t, proxy.URL, ev)

	inst, err := c.Instance(ctx)
	require.NoError(t, err)
	assert.Equal(t, ebs.Instance{ID: e.instance, AvailabilityZone: testAZ, Region: "us-east-1"}, inst)

	// create → available (AZ from the metadata mock)
	vol, err := c.Create(ctx, ebs.CreateOptions{Name: "lifecycle", SizeGiB: 10, Tags: map[string]string{"project": "cloudluks", "test": t.Name()}})
	require.NoError(t, err)
	assert.Equal(t, testAZ, vol.AvailabilityZone)
	assert.EqualValues(t, 10, vol.SizeGiB)
	assert.Equal(t, "gp3", vol.Type)
	vol, err = c.WaitAvailable(ctx, vol.ID)
	require.NoError(t, err)
	assert.Equal(t, ebs.StateAvailable, vol.State)
	assert.Equal(t, "cloudluks", vol.Tags["project"])
	creates := proxy.callsOf("CreateVolume")
	require.Len(t, creates, 1)
	assert.Equal(t, ebs.ClientToken("lifecycle"), creates[0].Get("ClientToken"))
	assert.NotEqual(t, "true", creates[0].Get("Encrypted"), "EBS encryption is off by default")

	// attach: /dev/sdf and /dev/xvdg (= sdg) are the instance's, /dev/sda1 its root
	att, err := c.Attach(ctx, vol.ID, ebs.AttachOptions{})
	require.NoError(t, err)
	assert.Equal(t, ebs.Attachment{VolumeID: vol.ID, InstanceID: e.instance, Device: "/dev/sdh", State: ebs.AttachmentAttached,
		AttachTime: att.AttachTime, DeleteOnTermination: att.DeleteOnTermination}, *att)
	assert.Empty(t, c.InFlight(e.instance))
	assert.True(t, ev.find(func(x ebs.Event) bool { return x.Op == "attach" && x.State == ebs.AttachmentAttached }))

	// attaching again is idempotent
	again, err := c.Attach(ctx, vol.ID, ebs.AttachOptions{})
	require.NoError(t, err)
	assert.Equal(t, "/dev/sdh", again.Device)
	require.Len(t, proxy.callsOf("AttachVolume"), 1)

	// resolve on a fake Nitro tree: serial = volume ID without the dash
	root := t.TempDir()
	sys, dev := fakeNVMe(t, root, "nvme1n1", ebs.NVMeSerial(vol.ID))
	rc := e.client(t, proxy.URL, nil, func(o *ebs.Options) {
		o.Resolve = ebs.ResolveOptions{SysRoot: sys, DevRoot: dev, Identify: identifyAs("/dev/sdh")}
	})
	local, err := rc.LocalDevice(ctx, vol.ID)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dev, "nvme1n1"), local)

	// delete refused while attached
	err = c.Delete(ctx, vol.ID, ebs.DeleteOptions{})
	require.ErrorIs(t, err, ebs.ErrInUse)
	var ee *ebs.Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, vol.ID, ee.VolumeID)
	assert.Equal(t, e.instance, ee.InstanceID)
	assert.Empty(t, proxy.callsOf("DeleteVolume"))

	// detach → detached; detaching again is success
	require.NoError(t, c.Detach(ctx, vol.ID, ebs.DetachOptions{}))
	got, err := c.Describe(ctx, vol.ID)
	require.NoError(t, err)
	assert.Equal(t, ebs.StateAvailable, got.State)
	assert.Empty(t, got.Attachments)
	require.NoError(t, c.Detach(ctx, vol.ID, ebs.DetachOptions{}))
	detaches := proxy.callsOf("DetachVolume")
	require.Len(t, detaches, 1, "the second detach found nothing to do")
	assert.Equal(t, "false", detaches[0].Get("Force"), "never forced unless asked")
	assert.Equal(t, e.instance, detaches[0].Get("InstanceId"))

	// delete → not found
	require.NoError(t, c.Delete(ctx, vol.ID, ebs.DeleteOptions{}))
	_, err = c.Describe(ctx, vol.ID)
	require.ErrorIs(t, err, ebs.ErrNotFound)
	err = c.Delete(ctx, vol.ID, ebs.DeleteOptions{})
	require.ErrorIs(t, err, ebs.ErrNotFound)
	for _, d := range proxy.callsOf("DeleteVolume") {
		assert.Equal(t, vol.ID, d.Get("VolumeId"), "only the volume asked for is ever deleted")
	}
	assert.Empty(t, e.motoVolumes(t, t.Name()))
}

func testCreateIdempotent(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.client(t, e.moto, nil)

	tags := map[string]string{"test": t.Name()}
	a, err := c.Create(ctx, ebs.CreateOptions{Name: "db-data", SizeGiB: 5, AvailabilityZone: testAZ, Tags: tags})
	require.NoError(t, err)
	b, err := c.Create(ctx, ebs.CreateOptions{Name: "db-data", SizeGiB: 5, AvailabilityZone: testAZ, Tags: tags})
	require.NoError(t, err)
	assert.Equal(t, a.ID, b.ID, "same name, same volume")

	other, err := c.Create(ctx, ebs.CreateOptions{Name: "db-logs", SizeGiB: 5, AvailabilityZone: testAZ, Tags: tags})
	require.NoError(t, err)
	assert.NotEqual(t, a.ID, other.ID)

	_, err = c.Create(ctx, ebs.CreateOptions{Name: "db-data", SizeGiB: 6, AvailabilityZone: testAZ})
	require.ErrorIs(t, err, ebs.ErrNameConflict, "same name, other parameters")

	found, err := c.FindByName(ctx, "db-data")
	require.NoError(t, err)
	assert.Equal(t, a.ID, found.ID)
	want := []string{a.ID, other.ID}
	sort.Strings(want)
	assert.Equal(t, want, e.motoVolumes(t, t.Name()))
}

func testListAndFindByTag(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.client(t, e.moto, nil)
	mk := func(tags map[string]string) string {
		v, err := c.Create(ctx, ebs.CreateOptions{SizeGiB: 1, AvailabilityZone: testAZ, Type: "gp2", Tags: tags})
		require.NoError(t, err)
		return v.ID
	}
	web := mk(map[string]string{"role": "web", "env": "prod"})
	db := mk(map[string]string{"role": "db", "env": "prod"})
	mk(map[string]string{"role": "db", "env": "staging"})

	ids := func(vs []ebs.Volume) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.ID)
		}
		sort.Strings(out)
		return out
	}
	prod, err := c.List(ctx, ebs.ListOptions{Tags: map[string]string{"env": "prod"}})
	require.NoError(t, err)
	want := []string{web, db}
	sort.Strings(want)
	assert.Equal(t, want, ids(prod))

	all, err := c.List(ctx, ebs.ListOptions{Tags: map[string]string{"role": ""}})
	require.NoError(t, err)
	assert.Len(t, all, 3)

	v, err := c.Find(ctx, map[string]string{"role": "db", "env": "prod"})
	require.NoError(t, err)
	assert.Equal(t, db, v.ID)
	_, err = c.Find(ctx, map[string]string{"role": "db"})
	require.ErrorIs(t, err, ebs.ErrAmbiguous)
	_, err = c.Find(ctx, map[string]string{"role": "cache"})
	require.ErrorIs(t, err, ebs.ErrNotFound)
}

func TestCreateNeedsAZWithoutMetadata(t *testing.T) {
	c := ebs.New(nilAPI{}, ebs.Options{})
	_, err := c.Create(context.Background(), ebs.CreateOptions{SizeGiB: 1})
	require.ErrorIs(t, err, ebs.ErrInvalidParameter)
	_, err = c.Attach(context.Background(), "vol-1", ebs.AttachOptions{})
	require.ErrorIs(t, err, ebs.ErrInvalidParameter)
}

// nilAPI fails every call: for tests that must not reach EC2.
type nilAPI struct{ ebs.EC2API }

func identifyAs(name string) func(string) ([]byte, error) {
	return func(string) ([]byte, error) {
		b := make([]byte, ebs.IdentifySize)
		copy(b[3072:3104], padded(name, 32))
		return b, nil
	}
}

func padded(s string, n int) []byte {
	b := []byte(s)
	for len(b) < n {
		b = append(b, ' ')
	}
	return b
}

// From a snapshot (size implied), and the EBS encryption flags when asked for.
func testFromSnapshot(t *testing.T, e *env) {
	ctx := context.Background()
	p := newFaultProxy(t, e.moto)
	c := e.client(t, p.URL, nil)
	src, err := c.Create(ctx, ebs.CreateOptions{SizeGiB: 7, AvailabilityZone: testAZ, Type: "gp2", Tags: map[string]string{"test": t.Name()}})
	require.NoError(t, err)
	snap, err := e.direct.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(src.ID)})
	require.NoError(t, err)

	v, err := c.Create(ctx, ebs.CreateOptions{SnapshotID: aws.ToString(snap.SnapshotId), AvailabilityZone: testAZ, Type: "gp2"})
	require.NoError(t, err)
	v, err = c.WaitAvailable(ctx, v.ID)
	require.NoError(t, err)
	assert.EqualValues(t, 7, v.SizeGiB, "size of the snapshot")
	assert.Equal(t, aws.ToString(snap.SnapshotId), v.SnapshotID)
	assert.False(t, v.Encrypted)

	enc, err := c.Create(ctx, ebs.CreateOptions{SizeGiB: 4, AvailabilityZone: testAZ, Encrypted: true, Type: "io2", IOPS: 200})
	require.NoError(t, err)
	assert.True(t, enc.Encrypted)
	assert.Equal(t, "io2", enc.Type)
	creates := p.callsOf("CreateVolume")
	require.Len(t, creates, 3)
	assert.Equal(t, aws.ToString(snap.SnapshotId), creates[1].Get("SnapshotId"))
	assert.Empty(t, creates[1].Get("Size"))
	assert.Equal(t, "true", creates[2].Get("Encrypted"))
	assert.Equal(t, "200", creates[2].Get("Iops"))
}
