package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/awstest"
	"github.com/cloudluks/cloudluks/internal/cli"
)

// A persistent 500 on DetachVolume: each SDK retry is announced on stderr, the program
// stops after the SDK's attempts (AWS_MAX_ATTEMPTS, honoured as in any SDK program) and
// exits 1 with EC2's error and the volume it concerns.
func TestServerError(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	direct := awstest.NewEC2Client(moto)
	instance := awstest.RunInstance(t, ctx, direct, "us-east-1c", "/dev/sdf")
	md := awstest.StartMetadataMock(t, awstest.MetadataConfig{InstanceID: instance, AZ: "us-east-1c"})

	r := ec2volume(t, awstest.Env(moto, md), "create", "--size", "1")
	require.Equal(t, 0, r.code)
	vol := fields(t, r.stdout)[1]
	r = ec2volume(t, awstest.Env(moto, md), "attach", vol)
	require.Equal(t, 0, r.code)

	var detaches atomic.Int32
	proxy := awstest.StartProxy(t, moto, func(w http.ResponseWriter, _ *http.Request, body []byte) bool {
		form, _ := url.ParseQuery(string(body))
		if form.Get("Action") != "DetachVolume" {
			return false
		}
		detaches.Add(1)
		awstest.EC2Error(w, http.StatusInternalServerError, "InternalError", "An internal error has occurred")
		return true
	})
	r = ec2volume(t, append(awstest.Env(proxy, md), "AWS_MAX_ATTEMPTS=3"), "detach", vol)
	assert.Equal(t, cli.ExitFailure, r.code)
	assert.Equal(t, int32(3), detaches.Load(), "the SDK's attempts, no more")
	assert.Empty(t, r.stdout)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	require.Len(t, lines, 3, "two retries announced, then the error")
	prefix := "ec2volume: warning: detach " + vol + " " + instance + " /dev/sdg retrying DetachVolume: InternalError "
	assert.Equal(t, prefix+"(attempt 2 of 3)", lines[0])
	assert.Equal(t, prefix+"(attempt 3 of 3)", lines[1])
	assert.Contains(t, lines[2], "ec2volume: ebs: detach "+vol+" instance "+instance+" device /dev/sdg")
	assert.Contains(t, lines[2], "EC2 server error")
	assert.Contains(t, lines[2], "InternalError")
}

// A metadata service that refuses the IMDSv2 session token (403, as with an IMDSv1-only
// endpoint): the SDK falls back to IMDSv1 and logs a warning. It must not reach stderr in
// the SDK's format; ec2volume shows it in its own words with -v.
func TestIMDSv1FallbackQuiet(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	direct := awstest.NewEC2Client(moto)
	instance := awstest.RunInstance(t, ctx, direct, "us-east-1c")
	md := awstest.StartMetadataMock(t, awstest.MetadataConfig{InstanceID: instance, AZ: "us-east-1c", AllowV1: true})
	var tokens atomic.Int32
	proxy := awstest.StartProxy(t, md, func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		if r.Method != http.MethodPut || r.URL.Path != "/latest/api/token" {
			return false
		}
		tokens.Add(1)
		http.Error(w, "IMDSv2 tokens are not served here", http.StatusForbidden)
		return true
	})
	// A user's default: IMDSv1 fallback allowed (awstest.Env turns it off).
	var env []string
	for _, kv := range awstest.Env(moto, proxy) {
		if !strings.HasPrefix(kv, "AWS_EC2_METADATA_V1_DISABLED=") {
			env = append(env, kv)
		}
	}

	r := ec2volume(t, env, "create", "--size", "1")
	require.Equal(t, 0, r.code)
	assert.Equal(t, "us-east-1c", fields(t, r.stdout)[4], "the zone came from metadata, over IMDSv1")
	assert.Positive(t, tokens.Load(), "a token was asked for and refused")
	assert.Empty(t, r.stderr, "no SDK log line (WARN falling back to IMDSv1) on stderr")

	r = ec2volume(t, env, "-v", "attach", fields(t, r.stdout)[1])
	require.Equal(t, 0, r.code)
	assert.NotContains(t, r.stderr, "WARN")
	assert.Contains(t, r.stderr, "ec2volume: warning: metadata falling back to IMDSv1:")
}
