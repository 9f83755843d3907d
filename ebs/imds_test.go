package ebs_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/internal/awstest"
)

// A metadata service that refuses IMDSv2 session tokens (403 on PUT /latest/api/token):
// the SDK falls back to IMDSv1 and logs "falling back to IMDSv1". Through LoadDefaultConfig
// and NewFromConfig that line is a warning Event for Options.Progress and nothing is written
// to stderr (the SDK's default logger writes there).
func TestIMDSv1FallbackIsAnEvent(t *testing.T) {
	md := awstest.StartMetadataMock(t, awstest.MetadataConfig{InstanceID: "i-0123456789abcdef0", AZ: testAZ, AllowV1: true})
	var tokens atomic.Int32
	proxy := awstest.StartProxy(t, md, func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		if r.Method != http.MethodPut || r.URL.Path != "/latest/api/token" {
			return false
		}
		tokens.Add(1)
		http.Error(w, "no IMDSv2 here", http.StatusForbidden)
		return true
	})
	t.Setenv("AWS_EC2_METADATA_V1_DISABLED", "") // the SDK's default: fallback allowed

	// The SDK's default logger takes os.Stderr when the configuration is loaded.
	stderr, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	saved := os.Stderr
	os.Stderr = stderr
	t.Cleanup(func() { os.Stderr = saved })

	ctx := context.Background()
	cfg, err := ebs.LoadDefaultConfig(ctx,
		config.WithRegion(awstest.Region),
		config.WithCredentialsProvider(aws.AnonymousCredentials{}),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
		config.WithEC2IMDSEndpoint(proxy),
	)
	require.NoError(t, err)
	ev := &events{}
	c := ebs.NewFromConfig(cfg, ebs.Options{Progress: ev.add})
	inst, err := c.Instance(ctx)
	os.Stderr = saved
	require.NoError(t, err)
	assert.Equal(t, "i-0123456789abcdef0", inst.ID)
	assert.Positive(t, tokens.Load(), "a token was asked for and refused")

	_, err = stderr.Seek(0, io.SeekStart)
	require.NoError(t, err)
	written, err := io.ReadAll(stderr)
	require.NoError(t, err)
	assert.Empty(t, string(written), "nothing on stderr")
	assert.True(t, ev.find(func(e ebs.Event) bool {
		return e.Op == "metadata" && e.Warning && strings.HasPrefix(e.Message, "falling back to IMDSv1:")
	}), "the fallback is a warning Event: %+v", ev.all)
}
