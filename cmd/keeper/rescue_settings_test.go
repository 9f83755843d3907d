package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	pemlib "encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/cloudluks/cloudluks/internal/awstest"
	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/keeper/vault"
)

// rescue_probes and rescue_probe_interval out of range stop rescue and run before anything
// happens: no vault is opened (there is none), no status file written, nothing dialled.
func TestRescueSettingsRefusedFirst(t *testing.T) {
	for _, bad := range []struct{ line, msg string }{
		{"rescue_probes = 0", "rescue_probes: invalid value: 0: want 2..20"},
		{"rescue_probes = 21", "rescue_probes: invalid value: 21: want 2..20"},
		{`rescue_probe_interval = "100ms"`, "rescue_probe_interval: invalid value: 100ms: want 1s..10m0s"},
		{`rescue_probe_interval = "1h"`, "rescue_probe_interval: invalid value: 1h0m0s: want 1s..10m0s"},
		{"rescue_probes = 1", "rescue_probes: invalid value: 1: want 2..20"},
		{`rescue_probe_interval = "1s1ns"`, "rescue_probe_interval: invalid value: 1.000000001s: whole seconds only"},
	} {
		dir := t.TempDir()
		cfg := writeConfig(t, dir, bad.line, target(inst, vol1, "127.0.0.1:1"))
		for _, args := range [][]string{{"rescue", inst}, {"run", "--once"}, {"run"}} {
			r := kp(t, "pw\n", append([]string{"-c", cfg}, args...)...)
			assert.Equal(t, cli.ExitFailure, r.code, "%s %v", bad.line, args)
			assert.Contains(t, r.stderr, "keeper.toml:4: "+bad.msg, "%v", args)
			assert.NotContains(t, r.stderr, "vault", "%v", args)
			_, err := os.Stat(filepath.Join(dir, "status.json"))
			assert.ErrorIs(t, err, os.ErrNotExist, "%v", args)
		}
	}
}

// keeper rescue probes as the configuration says: rescue_probes = 2 dials, 1 s apart, both
// refused, then the console (moto's, no prompt) stops the rescue; nothing is detached.
func TestRescueUsesConfiguredProbes(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	client := awstest.NewEC2Client(moto)
	for _, kv := range awstest.Env(moto, "") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	id := awstest.RunInstance(t, ctx, client, "us-east-1a", "/dev/sdf")
	vols, err := client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{id}}, {Name: aws.String("attachment.device"), Values: []string{"/dev/sdf"}}}})
	require.NoError(t, err)
	volID := aws.ToString(vols.Volumes[0].VolumeId)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o644))
	v, err := vault.Create(filepath.Join(dir, "vault.age"), []byte("pw"), vault.Options{WorkFactor: 10})
	require.NoError(t, err)
	require.NoError(t, v.Add(vault.Entry{VolumeID: volID, LUKSUUID: uuid1}, []byte("x")))
	v.Close()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	pem, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	keyFile := filepath.Join(dir, "id")
	require.NoError(t, os.WriteFile(keyFile, pemlib.EncodeToMemory(pem), 0o600))
	// Nothing listens on 127.0.0.1:1: every dial is refused at the TCP level.
	cfg := writeConfig(t, dir, "rescue_probes = 2\nrescue_probe_interval = \"1s\"", strings.Replace(target(id, volID, "127.0.0.1:1"), "/nonexistent/id", keyFile, 1))

	r := kp(t, "pw\n", "-c", cfg, "rescue", id)
	assert.Equal(t, cli.ExitFailure, r.code)
	assert.Contains(t, r.stdout, "console shows no passphrase prompt")
	assert.Contains(t, r.stderr, `"step":"rescue-probe","decision":"ok","detail":"1 of 2: `)
	assert.Contains(t, r.stderr, `"step":"rescue-probe","decision":"ok","detail":"2 of 2: `)
	assert.NotContains(t, r.stderr, " of 3: ")
	vols, err = client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volID}})
	require.NoError(t, err)
	require.Len(t, vols.Volumes[0].Attachments, 1, "nothing detached")
}
