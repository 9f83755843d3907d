package awstest_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/awstest"
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
