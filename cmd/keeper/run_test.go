package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	pemlib "encoding/pem"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/cloudluks/cloudluks/internal/awstest"
	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/cloudluks/cloudluks/keeper"
	"github.com/cloudluks/cloudluks/keeper/vault"
)

func TestStatus(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, target(inst, vol1, "127.0.0.1:1"))
	r := kp(t, "", "-c", cfg, "status")
	assert.Equal(t, cli.ExitNoDevice, r.code)
	assert.Contains(t, r.stderr, "is keeper run running?")

	at := time.Date(2026, 12, 4, 19, 0, 0, 0, time.UTC)
	rows := []keeper.TargetStatus{
		{Name: "web-1/data", InstanceID: inst, VolumeID: vol1, Addr: "10.0.1.5:22", BootID: "2f0c9a58-6c0e-4d9e-9c55-5a3b1c2d4e5f", State: keeper.StateUnlocked, LastSeen: at, LastUnlock: at},
		{Name: "db", InstanceID: "i-0fedcba9876543210", VolumeID: vol2, State: keeper.StateRefused, Reason: "LUKS UUID mismatch", Attempts: 1},
	}
	statusFile := filepath.Join(dir, "status.json")
	require.NoError(t, writeStatus(statusFile, rows))

	// What the operator reads, spelled out (the engine's golden files cover the format).
	r = kp(t, "", "-c", cfg, "status")
	assert.Equal(t, cli.ExitNeedsUnlock, r.code, "a target is not unlocked")
	assert.Equal(t, "NAME        INSTANCE             VOLUME                 BOOT ID   STATE                        LAST UNLOCK\n"+
		"web-1/data  "+inst+"  "+vol1+"  2f0c9a58  unlocked                     2026-12-04T19:00:00Z\n"+
		"db          i-0fedcba9876543210  "+vol2+"  -         refused: LUKS UUID mismatch  -\n", r.stdout)
	assert.Empty(t, r.stderr)
	r = kp(t, "", "-c", cfg, "status", "--json")
	assert.Equal(t, cli.ExitNeedsUnlock, r.code)
	var back []keeper.TargetStatus
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &back))
	require.Len(t, back, 2)
	assert.Equal(t, keeper.StateUnlocked, back[0].State)
	assert.True(t, at.Equal(back[0].LastUnlock))
	assert.Equal(t, "LUKS UUID mismatch", back[1].Reason)

	require.NoError(t, writeStatus(statusFile, rows[:1]))
	r = kp(t, "", "-c", cfg, "status")
	assert.Equal(t, cli.ExitOK, r.code)

	// A file nobody touched for a while is a stopped keeper's: said so, and not exit 0.
	old := time.Now().Add(-staleAfter - time.Minute)
	require.NoError(t, os.Chtimes(statusFile, old, old))
	r = kp(t, "", "-c", cfg, "status")
	assert.Equal(t, cli.ExitFailure, r.code)
	assert.Contains(t, r.stdout, "web-1/data")
	assert.Contains(t, r.stderr, "status is stale: last written 1m30s ago; keeper run is not running")
}

// run --once goes through the engine against a real sshd and moto: an unpinned host key is
// refused (exit 2, nothing sent); once trusted the keeper gets past the host key and the
// status file says where it stopped.
func TestRunOnce(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		testenv.Missing(t, "ssh-keygen", "apt-get install openssh-client")
	}
	dir := t.TempDir()
	clientKey := filepath.Join(dir, "id_ed25519")
	out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", clientKey).CombinedOutput()
	require.NoError(t, err, "%s", out)
	pub, err := os.ReadFile(clientKey + ".pub")
	require.NoError(t, err)
	// The forced command stands in for an instance whose encrypted-volume is missing.
	s := startSSHD(t, `restrict,command="/bin/false" `+strings.TrimSpace(string(pub)))

	ctx := context.Background()
	moto := awstest.StartMoto(t)
	client := awstest.NewEC2Client(moto)
	id := awstest.RunInstance(t, ctx, client, "us-east-1a", "/dev/sdf")
	vols, err := client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{id}},
		{Name: aws.String("attachment.device"), Values: []string{"/dev/sdf"}},
	}})
	require.NoError(t, err)
	require.Len(t, vols.Volumes, 1)
	volID := aws.ToString(vols.Volumes[0].VolumeId)
	for _, kv := range awstest.Env(moto, "") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	u, err := user.Current()
	require.NoError(t, err)
	cfg := writeConfig(t, dir, "[ssh]\nuser = \""+u.Username+"\"\nkey = \""+clientKey+"\"\n[[target]]\nname = \"web-1/data\"\ninstance = \""+id+"\"\nvolume = \""+volID+"\"\nmapping = \"data\"\nmount = \"/data\"\n  [target.ssh]\n  address = \""+s.addr+"\"\n")

	// No known_hosts yet: told to trust first.
	v, err := vault.Create(filepath.Join(dir, "vault.age"), []byte("pw"), vault.Options{WorkFactor: 10})
	require.NoError(t, err)
	r := kp(t, "pw\n", "-c", cfg, "run", "--once")
	assert.Equal(t, cli.ExitNoDevice, r.code)
	assert.Contains(t, r.stderr, "keeper trust INSTANCE")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o644))

	// No vault entry for the volume: nothing is dialled.
	r = kp(t, "pw\n", "-c", cfg, "run", "--once")
	assert.Equal(t, cli.ExitNoDevice, r.code)
	assert.Contains(t, r.stderr, volID)
	require.NoError(t, v.Add(vault.Entry{VolumeID: volID, LUKSUUID: uuid1}, []byte("disk pass")))
	v.Close()

	r = kp(t, "pw\n", "-c", cfg, "run", "--once")
	assert.Equal(t, cli.ExitPermission, r.code)
	assert.Contains(t, r.stdout, "web-1/data\t"+id+"\t"+string(keeper.OutcomeRefused))
	assert.Contains(t, r.stderr, "host key not pinned")
	assert.NotContains(t, r.stdout+r.stderr, "disk pass")

	r = kp(t, "", "-c", cfg, "trust", id, "--fingerprint", s.fp)
	require.Equal(t, cli.ExitOK, r.code)
	r = kp(t, "pw\n", "-c", cfg, "run", "--once")
	assert.NotEqual(t, cli.ExitOK, r.code, "the instance side is /bin/false")
	assert.NotContains(t, r.stderr, "host key not pinned")
	r = kp(t, "", "-c", cfg, "status", "--json")
	assert.Equal(t, cli.ExitNeedsUnlock, r.code)
	assert.Contains(t, r.stdout, `"name": "web-1/data"`)

	// run serves until its context ends, keeps the status file current, and stops with 0.
	require.NoError(t, os.Remove(filepath.Join(dir, "status.json")))
	rctx, cancel := context.WithTimeout(ctx, 3*statusEvery+time.Second)
	defer cancel()
	var stdout, stderr strings.Builder
	start := time.Now()
	code := run(rctx, []string{"-c", cfg, "run"}, strings.NewReader("pw\n"), &stdout, &stderr)
	t.Logf("keeper run → %d after %v\n%s", code, time.Since(start), stderr.String())
	assert.Equal(t, cli.ExitOK, code)
	assert.Contains(t, stderr.String(), "serving 1 target(s)")
	assert.Contains(t, stderr.String(), "keeper: stopped")
	status, err := os.ReadFile(filepath.Join(dir, "status.json"))
	require.NoError(t, err)
	assert.Contains(t, string(status), `"instance_id": "`+id+`"`)

	// rescue: the instance is reachable and its console shows no prompt: left alone
	// (keeper.ErrNotStuck, exit 1), and nothing detached.
	r = kp(t, "pw\n", "-c", cfg, "rescue", id)
	assert.Equal(t, cli.ExitFailure, r.code)
	vols, err = client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volID}})
	require.NoError(t, err)
	require.Len(t, vols.Volumes[0].Attachments, 1)
	assert.Equal(t, id, aws.ToString(vols.Volumes[0].Attachments[0].InstanceId))
	r = kp(t, "pw\n", "-c", cfg, "rescue", "i-0fedcba9876543210")
	assert.Equal(t, cli.ExitNoDevice, r.code)
}

// A tag group with no instance yet does not stop the fixed target beside it (run --once
// serves it and reports the group refused, in its output and the status file), and run
// resolves the groups again every poll_interval: the instance launched later is served, by
// the same engine (the engine's TestSetTargetsKeepsStateAcrossTagChanges shows what the
// targets that stay keep).
func TestRunResolvesTags(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	client := awstest.NewEC2Client(moto)
	for _, kv := range awstest.Env(moto, "") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o644))
	v, err := vault.Create(filepath.Join(dir, "vault.age"), []byte("pw"), vault.Options{WorkFactor: 10})
	require.NoError(t, err)
	require.NoError(t, v.Add(vault.Entry{VolumeID: vol1, LUKSUUID: uuid1}, []byte("x")))
	cfg := writeConfig(t, dir, "poll_interval = \"5s\"\n"+target(inst, vol1, "127.0.0.1:1")+
		"[[target]]\nname = \"web\"\ninstance_tags = { Role = \"web\" }\nvolume_tags = { Name = \"data\" }\n")

	r := kp(t, "pw\n", "-c", cfg, "run", "--once")
	assert.NotEqual(t, cli.ExitOK, r.code, "the empty group is an error of the pass")
	assert.Contains(t, r.stdout, inst+"/"+vol1+"\t"+inst+"\t", "the fixed target is served")
	assert.Contains(t, r.stdout, "web\t\trefused\ttarget web: no instance with tags")
	status, err := os.ReadFile(filepath.Join(dir, "status.json"))
	require.NoError(t, err)
	assert.Contains(t, string(status), `"name": "web"`)
	assert.Contains(t, string(status), `"state": "refused"`)

	rctx, cancel := context.WithTimeout(ctx, 9*time.Second)
	defer cancel()
	stderr := &testenv.SyncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(rctx, []string{"-c", cfg, "run"}, strings.NewReader("pw\n"), io.Discard, stderr) }()
	time.Sleep(time.Second)
	id := awstest.RunInstance(t, ctx, client, "us-east-1a", "/dev/sdf")
	vols, err := client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{id}}}})
	require.NoError(t, err)
	require.Len(t, vols.Volumes, 1)
	webVol := aws.ToString(vols.Volumes[0].VolumeId)
	for _, res := range []string{id, webVol} {
		k, val := "Role", "web"
		if res == webVol {
			k, val = "Name", "data"
		}
		_, err := client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{res}, Tags: []types.Tag{{Key: aws.String(k), Value: aws.String(val)}}})
		require.NoError(t, err)
	}
	// The vault gets the new volume's entry while run is running; the resolution re-reads
	// the vault (Reload) before it resolves.
	require.NoError(t, v.Add(vault.Entry{VolumeID: webVol, LUKSUUID: uuid2}, []byte("y")))
	v.Close()
	assert.Equal(t, cli.ExitOK, <-done)
	t.Logf("%s", stderr.String())
	assert.Contains(t, stderr.String(), "serving 1 target(s); status in")
	assert.Contains(t, stderr.String(), "the fleet changed: serving 2 target(s) now")
	assert.Equal(t, 1, strings.Count(stderr.String(), "; status in"), "the engine was made once and given the new fleet in place")
}

// A rescue that stopped after its detach is resumed with --device (the engine's
// RescueOptions.Device): without it the volume attached to nothing is refused, with it the
// rescue goes on (reboot, wait for sshd) with that device.
func TestRescueDevice(t *testing.T) {
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
	_, err = client.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(volID), InstanceId: aws.String(id), Device: aws.String("/dev/sdf")})
	require.NoError(t, err)
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
	cfg := writeConfig(t, dir, strings.Replace(target(id, volID, "127.0.0.1:1"), "/nonexistent/id", keyFile, 1))

	r := kp(t, "pw\n", "-c", cfg, "rescue", id, "--timeout", "3s")
	assert.Equal(t, cli.ExitUsage, r.code)
	assert.Contains(t, r.stderr, "attached to nothing")
	r = kp(t, "pw\n", "-c", cfg, "rescue", id, "--device", "/dev/sdg", "--force", "--timeout", "5s")
	// No sshd here: the engine reboots, waits for it in vain and keeps the device for the
	// next try (the e2e rescue test attaches and unlocks in a VM).
	assert.Equal(t, cli.ExitFailure, r.code)
	assert.Contains(t, r.stdout, "sshd did not come back")
	assert.Contains(t, r.stdout, "rescue again with its device /dev/sdg")
}
