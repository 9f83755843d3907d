package keeper

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/awstest"
)

// TestUnlockOnceDialsTheEC2Address leaves SSH.Addr empty: the keeper must take the
// address from DescribeInstances (the instance is pinned by ID). moto hands out addresses
// of a private range the test may not dial, so a proxy rewrites the public IPv4 in moto's
// answer to 127.0.0.1, where the instance's sshd listens (SSHConfig.Port gives its port).
func TestUnlockOnceDialsTheEC2Address(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	direct := awstest.NewEC2Client(moto)
	ipRe := regexp.MustCompile(`<ipAddress>[^<]*</ipAddress>`)
	client := awstest.NewEC2Client(awstest.StartProxy(t, moto, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		form, _ := url.ParseQuery(string(body))
		if form.Get("Action") != "DescribeInstances" {
			return false
		}
		// moto picks its backend by the SigV4 credential scope: forward the headers too.
		req, err := http.NewRequest(http.MethodPost, moto+r.URL.Path, bytes.NewReader(body))
		if err != nil {
			awstest.EC2Error(w, 500, "InternalError", err.Error())
			return true
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			awstest.EC2Error(w, 500, "InternalError", err.Error())
			return true
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		b = ipRe.ReplaceAll(b, []byte("<ipAddress>127.0.0.1</ipAddress>"))
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(b)
		return true
	}))
	instID := awstest.RunInstance(t, ctx, direct, "us-east-1a", "/dev/sdf")
	out, err := direct.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instID}})
	require.NoError(t, err)
	require.NotEqual(t, "127.0.0.1", aws.ToString(out.Reservations[0].Instances[0].PublicIpAddress))
	var volID string
	for _, m := range out.Reservations[0].Instances[0].BlockDeviceMappings {
		if aws.ToString(m.DeviceName) == "/dev/sdf" {
			volID = aws.ToString(m.Ebs.VolumeId)
		}
	}
	in := newInstance(t, instID, volID)
	tg := in.target()
	_, port, err := net.SplitHostPort(tg.SSH.Addr)
	require.NoError(t, err)
	tg.SSH.Addr = ""
	tg.SSH.Port, _ = strconv.Atoi(port)
	k, err := New(Options{EC2: client, Secrets: &vault{m: map[string][]byte{volID: []byte(testPassphrase)}}}, nil)
	require.NoError(t, err)
	res, err := k.UnlockOnce(ctx, tg)
	require.NoError(t, err)
	require.Equal(t, OutcomeUnlocked, res.Outcome)
	require.Equal(t, "127.0.0.1:"+port, res.Addr, "dialled the address EC2 reported")
	require.Equal(t, "127.0.0.1:"+port, k.Status()[0].Addr)
}
