package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/internal/awstest"
)

// holdCreate is a fault proxy in front of moto: while armed, it forwards a CreateVolume to
// moto (the volume is made) and then never answers, as a connection that dies after the
// request went out; created is closed when moto has made the volume.
type holdCreate struct {
	armed   atomic.Bool
	created chan struct{}
}

func newHoldCreate(t *testing.T, target string) (*holdCreate, string) {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	h := &holdCreate{created: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		v, _ := url.ParseQuery(string(body))
		if v.Get("Action") == "CreateVolume" && h.armed.CompareAndSwap(true, false) {
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, req)
			close(h.created)
			<-req.Context().Done() // the reply is held back until the client gives up
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL
}

// TestSetupRerunAfterKillUsesTheSameVolume (#14 item 4): a setup killed while CreateVolume's
// reply is held back used to leave an orphan volume whose ID it never learnt, and a rerun
// made a second one. Now the create carries a token derived from the run's parameters:
// the rerun finds the volume the killed run made and continues with it — one volume.
func TestSetupRerunAfterKillUsesTheSameVolume(t *testing.T) {
	moto := awstest.StartMoto(t)
	client := awstest.NewEC2Client(moto)
	ctx := context.Background()
	instance := awstest.RunInstance(t, ctx, client, "us-east-1c", "")
	imds := awstest.StartMetadataMock(t, awstest.MetadataConfig{InstanceID: instance, AZ: "us-east-1c"})
	hold, ec2URL := newHoldCreate(t, moto)
	setEnv(t, awstest.Env(ec2URL, imds))

	keyFile := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(keyFile, []byte("rerun passphrase"), 0o600))
	h := newHarness(t, "")
	h.app.newCloud = newEBSCloud(h.stdout)
	h.local.anyVol = h.dev("nvme1n1")
	mp := tempMountPoint(t)
	args := []string{"setup", "--type", "luks1", "--pbkdf-force-iterations", "1000", "--key-file", keyFile, "--size", "1", "--mount-point", mp}

	// Run 1: killed (its context cancelled, as SIGTERM does) once the volume exists but
	// before the answer arrives.
	hold.armed.Store(true)
	kctx, kill := context.WithCancel(ctx)
	go func() {
		select {
		case <-hold.created:
		case <-time.After(time.Minute):
		}
		kill()
	}()
	code := h.app.main(kctx, args)
	require.NotEqual(t, 0, code, "run 1 was killed during the create")
	select {
	case <-hold.created:
	default:
		t.Fatal("run 1 never sent CreateVolume")
	}
	volumes := func() []types.Volume {
		out, err := client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
			{Name: aws.String("tag-key"), Values: []string{ebs.TokenTagKey}}}})
		require.NoError(t, err)
		return out.Volumes
	}
	require.Equal(t, 1, len(volumes()), "run 1 made the volume")
	entries, err := os.ReadDir(h.app.stateDir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "run 1 left its creation token")
	orphan := *volumes()[0].VolumeId

	// Run 2, the same command: it continues with run 1's volume.
	h.stdout.Reset()
	h.stderr.Reset()
	code = h.app.main(ctx, args)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", h.stdout, h.stderr)
	assert.Contains(t, h.stdout.String(), "continuing an unfinished setup with the same parameters")
	assert.Contains(t, h.stdout.String(), "create "+orphan)
	assert.Contains(t, h.stdout.String(), "VOLUME "+orphan+" 1 us-east-1c available")
	assert.Equal(t, 1, len(volumes()), "no second volume")

	// The finished run forgot its token: the same setup again (after a teardown that
	// kept the volume) makes a new volume instead of taking over the old one, which holds
	// data (review finding: it used to reuse it and call it "created by this run").
	require.Equal(t, 0, h.run("teardown", "--mount-point", mp), h.stderr.String())
	h.local.anyVol = h.dev("nvme2n1")
	h.stdout.Reset()
	require.Equal(t, 0, h.app.main(ctx, args), h.stderr.String())
	assert.NotContains(t, h.stdout.String(), "create "+orphan)
	assert.NotContains(t, h.stdout.String(), "continuing an unfinished setup")
	assert.Equal(t, 2, len(volumes()))
	entries, err = os.ReadDir(h.app.stateDir)
	require.NoError(t, err)
	assert.Empty(t, entries, "no token left after finished runs")
}
