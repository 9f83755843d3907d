package awstest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/awstest"
	"github.com/cloudluks/cloudluks/internal/testenv"
)

func TestMotoAndMetadataMock(t *testing.T) {
	ctx := context.Background()
	endpoint := awstest.StartMoto(t)
	client := awstest.NewEC2Client(endpoint)

	id := awstest.RunInstance(t, ctx, client, "us-east-1c", "/dev/sdf")
	out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	require.NoError(t, err)
	require.Len(t, out.Reservations, 1)
	inst := out.Reservations[0].Instances[0]
	assert.Equal(t, "us-east-1c", aws.ToString(inst.Placement.AvailabilityZone))
	var names []string
	for _, m := range inst.BlockDeviceMappings {
		names = append(names, aws.ToString(m.DeviceName))
	}
	assert.Contains(t, names, "/dev/sdf")

	md := awstest.StartMetadataMock(t, awstest.MetadataConfig{InstanceID: id, AZ: "us-east-1c"})

	// IMDSv2 only: a GET without a session token is refused.
	resp, err := http.Get(md + "/latest/meta-data/instance-id")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	mc := imds.New(imds.Options{Endpoint: md, EnableFallback: aws.FalseTernary})
	doc, err := mc.GetInstanceIdentityDocument(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, id, doc.InstanceID)
	assert.Equal(t, "us-east-1c", doc.AvailabilityZone)
	assert.Equal(t, "us-east-1", doc.Region)

	az, err := mc.GetMetadata(ctx, &imds.GetMetadataInput{Path: "placement/availability-zone"})
	require.NoError(t, err)
	b, err := io.ReadAll(az.Content)
	require.NoError(t, err)
	assert.Equal(t, "us-east-1c", string(b))
}

func TestRegionOf(t *testing.T) {
	for az, want := range map[string]string{"us-east-1c": "us-east-1", "eu-west-3a": "eu-west-3", "": ""} {
		assert.Equal(t, want, awstest.RegionOf(az), az)
	}
}

const orphanHelperEnv = "AWSTEST_ORPHAN_HELPER"

// TestHelperStartAndDie is not a test on its own: TestEmulatorsDieWithTheTestBinary runs the
// test binary again with only this test, which starts both emulators, prints their
// endpoints and waits to be killed (as a test binary hit by a -timeout panic, os.Exit or
// SIGKILL dies: without running its cleanups).
func TestHelperStartAndDie(t *testing.T) {
	if os.Getenv(orphanHelperEnv) != "1" {
		t.Skip("helper process for TestEmulatorsDieWithTheTestBinary")
	}
	moto := awstest.StartMoto(t)
	md := awstest.StartMetadataMock(t, awstest.MetadataConfig{InstanceID: "i-0123456789abcdef0", AZ: "us-east-1c"})
	fmt.Printf("ENDPOINT %s\nENDPOINT %s\n", moto, md)
	select {}
}

// The emulators never outlive the test binary, even when it dies without running its
// cleanups: their ports are free again afterwards.
func TestEmulatorsDieWithTheTestBinary(t *testing.T) {
	testenv.LookPath(t, "moto_server", awstest.MotoHint)
	awstest.MetadataMockPath(t)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStartAndDie$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), orphanHelperEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	var endpoints []string
	sc := bufio.NewScanner(out)
	for len(endpoints) < 2 && sc.Scan() {
		if ep, ok := strings.CutPrefix(sc.Text(), "ENDPOINT "); ok {
			endpoints = append(endpoints, ep)
		}
	}
	require.Len(t, endpoints, 2, "the helper started both emulators")
	for _, ep := range endpoints {
		require.True(t, answers(ep), "%s answers while the helper lives", ep)
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()

	// The kernel delivers the parent-death signal at once; allow a generous bound for a
	// loaded machine, so that only an emulator that really survived fails the test.
	for _, ep := range endpoints {
		gone := false
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if !answers(ep) {
				gone = true
				break
			}
		}
		assert.True(t, gone, "%s still answers after the test binary died: the emulator was orphaned", ep)
	}
}

func answers(endpoint string) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(endpoint + "/")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return true
}
