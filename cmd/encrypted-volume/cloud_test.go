package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/internal/awstest"
)

// setEnv points the SDK's default configuration at the emulators for the rest of t.
func setEnv(t *testing.T, env []string) {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// recorder is a reverse proxy that keeps every request it forwards (line, headers, body).
type recorder struct {
	mu   sync.Mutex
	reqs [][]byte
	n    map[string]int // Action or path → count
}

func newRecorder(t *testing.T, target string) (*recorder, string) {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	r := &recorder{n: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		dump, _ := httputil.DumpRequest(req, false)
		key := req.URL.Path
		if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
			key = v.Get("Action")
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, append(dump, body...))
		r.n[key]++
		r.mu.Unlock()
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL
}

// containsSecret looks for the passphrase in the encodings a request could carry it in.
// The forms are tried in a fixed order: several can be equal (base64 and base64url agree
// unless the secret encodes to '+' or '/'), and the first match names the result.
func containsSecret(b, secret []byte) string {
	forms := []struct {
		name string
		enc  []byte
	}{
		{"raw", secret},
		{"urlencode", []byte(url.QueryEscape(string(secret)))},
		{"pathesc", []byte(url.PathEscape(string(secret)))},
		{"base64", []byte(base64.StdEncoding.EncodeToString(secret))},
		{"base64url", []byte(base64.URLEncoding.EncodeToString(secret))},
		{"hex", []byte(hex.EncodeToString(secret))},
	}
	for _, f := range forms {
		if bytes.Contains(b, f.enc) || bytes.Contains(bytes.ToLower(b), bytes.ToLower(f.enc)) {
			return f.name
		}
	}
	return ""
}

// The EC2 side of setup/status/teardown against moto and the metadata mock, through
// recording proxies: the program creates the volume in the instance's zone, attaches it at
// the first free name, and deletes it at teardown; no request it sends (EC2 or IMDS)
// carries the passphrase in any encoding.
func TestEC2FlowAgainstMotoSendsNoSecret(t *testing.T) {
	moto := awstest.StartMoto(t)
	client := awstest.NewEC2Client(moto)
	ctx := context.Background()
	// /dev/sdf is taken by a launch-time volume: the program must pick the next free name.
	instance := awstest.RunInstance(t, ctx, client, "us-east-1c", "/dev/sdf")
	imds := awstest.StartMetadataMock(t, awstest.MetadataConfig{InstanceID: instance, AZ: "us-east-1c"})
	ec2Rec, ec2URL := newRecorder(t, moto)
	imdsRec, imdsURL := newRecorder(t, imds)
	setEnv(t, awstest.Env(ec2URL, imdsURL))

	secret := []byte("wire-check: pässphrase \x00\xff with binary and words")
	keyFile := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(keyFile, secret, 0o600))

	h := newHarness(t, "")
	h.app.newCloud = newEBSCloud(h.stdout)
	nvme := h.dev("nvme1n1")
	h.local.anyVol = nvme
	mp := tempMountPoint(t)

	code := h.run("setup", "--key-file", keyFile, "--size", "1", "--mount-point", mp)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", h.stdout, h.stderr)
	out := h.stdout.String()
	t.Log(out)
	assert.Contains(t, out, "Step 1/9: create EBS volume (1 GiB gp3 in us-east-1c)...")
	var volumeID string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VOLUME" {
			volumeID = f[1]
		}
	}
	require.NotEmpty(t, volumeID)
	assert.Contains(t, out, "ATTACHMENT "+volumeID+" "+instance+" /dev/sdg attached")
	assert.Equal(t, []string{"wait " + volumeID + " /dev/sdg"}, h.local.calls[:1])

	vo, err := client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volumeID}})
	require.NoError(t, err)
	require.Len(t, vo.Volumes, 1)
	assert.Equal(t, "us-east-1c", *vo.Volumes[0].AvailabilityZone)
	require.Len(t, vo.Volumes[0].Attachments, 1)
	assert.Equal(t, instance, *vo.Volumes[0].Attachments[0].InstanceId)

	h.stdout.Reset()
	require.Equal(t, 0, h.run("status", "--volume-id", volumeID, "--mount-point", mp))
	assert.Contains(t, h.stdout.String(), "volume:    "+volumeID+" attached to this instance as /dev/sdg")

	// teardown --detach, then unlock through EC2 attaches the volume again before opening it.
	h.stdout.Reset()
	require.Equal(t, 0, h.run("teardown", "--mount-point", mp, "--volume-id", volumeID, "--detach"), h.stderr.String())
	assert.Contains(t, h.stdout.String(), "Step 4/4: delete "+volumeID+"...\n    skipped: no --delete")
	vo, err = client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volumeID}})
	require.NoError(t, err)
	assert.Empty(t, vo.Volumes[0].Attachments, "detached")
	h.stdout.Reset()
	require.Equal(t, 0, h.run("unlock", "--volume-id", volumeID, "--key-file", keyFile, "--mount-point", mp), h.stderr.String())
	assert.Contains(t, h.stdout.String(), "attached "+volumeID+" as /dev/sdg")
	assert.Contains(t, h.stdout.String(), "local device: "+nvme)

	h.stdout.Reset()
	require.Equal(t, 0, h.run("teardown", "--volume-id", volumeID, "--mount-point", mp, "--delete"), h.stderr.String())
	_, err = client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volumeID}})
	require.Error(t, err, "deleted")
	assert.Empty(t, h.local.mappings)
	// Teardown is idempotent against EC2 too: the deleted volume is reported, not an error.
	h.stdout.Reset()
	require.Equal(t, 0, h.run("teardown", "--volume-id", volumeID, "--mount-point", mp, "--delete"), h.stderr.String())
	assert.Contains(t, h.stdout.String(), "skipped: volume "+volumeID+" does not exist (already deleted)")

	// An existing volume (--volume-id) is attached and used as it is.
	cv, err := client.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1c"), Size: aws.Int32(2)})
	require.NoError(t, err)
	existing := *cv.VolumeId
	h.dev("nvme1n1") // a fresh disk: the existing volume is empty
	h.stdout.Reset()
	require.Equal(t, 0, h.run("setup", "--volume-id", existing, "--key-file", keyFile, "--mount-point", mp), h.stderr.String())
	assert.Contains(t, h.stdout.String(), "Step 1/9: create EBS volume...\n    skipped: using existing volume "+existing)
	assert.Contains(t, h.stdout.String(), "ATTACHMENT "+existing+" "+instance+" /dev/sdg attached")
	require.Equal(t, 0, h.run("teardown", "--volume-id", existing, "--mount-point", mp, "--delete"), h.stderr.String())
	_, err = client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{existing}})
	require.Error(t, err, "deleted")

	// What went over the wire.
	for _, action := range []string{"CreateVolume", "AttachVolume", "DetachVolume", "DeleteVolume", "DescribeVolumes"} {
		assert.Positive(t, ec2Rec.n[action], "the program called %s through the proxy", action)
	}
	assert.Positive(t, imdsRec.n["/latest/api/token"], "IMDSv2 session")
	for _, r := range [](*recorder){ec2Rec, imdsRec} {
		for _, req := range r.reqs {
			if form := containsSecret(req, secret); form != "" {
				t.Errorf("a request carries the passphrase (%s):\n%s", form, req)
			}
		}
	}
	t.Logf("%d EC2 and %d IMDS requests checked", len(ec2Rec.reqs), len(imdsRec.reqs))
}

func TestContainsSecret(t *testing.T) {
	s := []byte("a b&c")
	assert.Equal(t, "raw", containsSecret([]byte("x a b&c y"), s))
	assert.Equal(t, "urlencode", containsSecret([]byte("Pass=a+b%26c"), s))
	assert.Equal(t, "base64", containsSecret([]byte(base64.StdEncoding.EncodeToString(s)), s))
	assert.Equal(t, "", containsSecret([]byte("Action=CreateVolume&Size=1"), s))
}

// --instance-id and --availability-zone together make IMDS unnecessary (off-instance use).
func TestPlacementFromFlags(t *testing.T) {
	e := &ebsCloud{instanceID: "i-0123456789abcdef0", zone: "eu-west-1b"} // no client: IMDS would panic
	inst, zone, err := e.Placement(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "i-0123456789abcdef0", inst)
	assert.Equal(t, "eu-west-1b", zone)
}

// describeOnly is an EC2 that answers DescribeVolumes with one fixed volume.
type describeOnly struct {
	ebs.EC2API
	vol types.Volume
}

func (d describeOnly) DescribeVolumes(context.Context, *ec2.DescribeVolumesInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error) {
	return &ec2.DescribeVolumesOutput{Volumes: []types.Volume{d.vol}}, nil
}

// Attachment tells "attached here" from "being detached from here" from "attached to
// another instance", each with a message that names the right instance.
func TestAttachmentStates(t *testing.T) {
	const self, other = "i-0123456789abcdef0", "i-0fedcba9876543210"
	vol := func(inst string, st types.VolumeAttachmentState) types.Volume {
		return types.Volume{VolumeId: aws.String("vol-1"), State: types.VolumeStateInUse, Attachments: []types.VolumeAttachment{{
			VolumeId: aws.String("vol-1"), InstanceId: aws.String(inst), Device: aws.String("/dev/sdf"), State: st}}}
	}
	tests := []struct {
		name    string
		vol     types.Volume
		wantOK  bool
		wantErr string
	}{
		{"attached here", vol(self, types.VolumeAttachmentStateAttached), true, ""},
		{"attaching here", vol(self, types.VolumeAttachmentStateAttaching), true, ""},
		{"detaching here", vol(self, types.VolumeAttachmentStateDetaching), false, "vol-1 is being detached from this instance (/dev/sdf, state detaching)"},
		{"busy here", vol(self, types.VolumeAttachmentStateBusy), false, "vol-1 is being detached from this instance (/dev/sdf, state busy)"},
		{"attached elsewhere", vol(other, types.VolumeAttachmentStateAttached), false, "vol-1 is attached to another instance (" + other + " as /dev/sdf)"},
		{"detached", vol(self, types.VolumeAttachmentStateDetached), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &ebsCloud{c: ebs.New(describeOnly{vol: tt.vol}, ebs.Options{}), instanceID: self, zone: "us-east-1c"}
			dev, ok, err := e.Attachment(context.Background(), "vol-1")
			if tt.wantErr != "" {
				require.ErrorIs(t, err, errBusy)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantOK, ok)
			if ok {
				assert.Equal(t, "/dev/sdf", dev)
			}
		})
	}
}

func TestEventLine(t *testing.T) {
	tests := []struct {
		e    ebs.Event
		want string
	}{
		{ebs.Event{Op: "attach", VolumeID: "vol-1", Device: "/dev/sdg", State: "attaching"}, "attach vol-1 /dev/sdg: attaching"},
		{ebs.Event{Op: "create", VolumeID: "vol-1", State: "creating", Message: "created"}, "create vol-1: creating (created)"},
		{ebs.Event{Op: "detach", VolumeID: "vol-1", State: "busy", Warning: true, Message: "device in use"}, "warning: detach vol-1: busy (device in use)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, eventLine(tt.e))
	}
}
