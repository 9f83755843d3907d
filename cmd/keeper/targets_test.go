package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/awstest"
	"github.com/cloudluks/cloudluks/keeper"
	"github.com/cloudluks/cloudluks/keeper/config"
	"github.com/cloudluks/cloudluks/keeper/vault"
)

func TestTargets(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	client := awstest.NewEC2Client(moto)
	tag := func(id string, kv ...string) {
		var tags []types.Tag
		for i := 0; i < len(kv); i += 2 {
			tags = append(tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		_, err := client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: tags})
		require.NoError(t, err)
	}
	volumeOf := func(instance, device string) string {
		out, err := client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
			{Name: aws.String("attachment.instance-id"), Values: []string{instance}},
			{Name: aws.String("attachment.device"), Values: []string{device}},
		}})
		require.NoError(t, err)
		require.Len(t, out.Volumes, 1)
		return aws.ToString(out.Volumes[0].VolumeId)
	}
	db1 := awstest.RunInstance(t, ctx, client, "us-east-1a", "/dev/sdf", "/dev/sdg")
	db2 := awstest.RunInstance(t, ctx, client, "us-east-1a", "/dev/sdf")
	web := awstest.RunInstance(t, ctx, client, "us-east-1a", "/dev/sdf")
	tag(db1, "Role", "db")
	tag(db2, "Role", "db")
	tag(web, "Role", "web")
	d1, d2 := volumeOf(db1, "/dev/sdf"), volumeOf(db2, "/dev/sdf")
	tag(d1, "Name", "db-data")
	tag(d2, "Name", "db-data")
	tag(volumeOf(db1, "/dev/sdg"), "Name", "db-logs")
	webVol := volumeOf(web, "/dev/sdf")

	dir := t.TempDir()
	v, err := vault.Create(filepath.Join(dir, "v.age"), []byte("pw"), vault.Options{WorkFactor: 10})
	require.NoError(t, err)
	defer v.Close()
	for i, id := range []string{d1, d2, webVol} {
		require.NoError(t, v.Add(vault.Entry{VolumeID: id, LUKSUUID: []string{uuid1, uuid2, "33333333-2222-4333-8444-555555555555"}[i]}, []byte("x")))
	}
	c, err := config.Parse("k.toml", []byte(`
vault = "/v"
known_hosts = "/etc/keeper/known_hosts"
auto_rescue = true
[ssh]
user = "keeper"
key = "/etc/keeper/id"
jump_host = { address = "bastion.example.net", user = "jump", agent = true }

[[target]]
name = "db"
instance_tags = { Role = "db" }
volume_tags = { Name = "db-data" }
mapping = "db"
mount = "/var/lib/db"

[[target]]
instance = "`+web+`"
volume = "`+webVol+`"
auto_rescue = false
  [target.ssh]
  address = "127.0.0.1"
  port = 2222
`))
	require.NoError(t, err)
	ts, err := targets(ctx, c, client, v)
	require.NoError(t, err)
	require.Len(t, ts, 3)
	byInstance := map[string]keeper.Target{}
	for _, tg := range ts {
		byInstance[tg.InstanceID] = tg
	}
	jump := &keeper.SSHConfig{Addr: "bastion.example.net:22", User: "jump", Agent: true, KnownHosts: []string{"/etc/keeper/known_hosts"}}
	assert.Equal(t, keeper.Target{Name: "db/" + db1, InstanceID: db1, VolumeID: d1, Mapping: "db", MountPoint: "/var/lib/db", LUKSUUID: uuid1, AutoRescue: true,
		SSH: keeper.SSHConfig{Port: 22, User: "keeper", KeyFile: "/etc/keeper/id", KnownHosts: []string{"/etc/keeper/known_hosts"}, JumpHost: jump}}, byInstance[db1])
	assert.Equal(t, d2, byInstance[db2].VolumeID)
	assert.Equal(t, uuid2, byInstance[db2].LUKSUUID)
	w := byInstance[web]
	assert.Equal(t, "127.0.0.1:2222", w.SSH.Addr)
	assert.False(t, w.AutoRescue)
	assert.Equal(t, "", w.Name, "the engine names it INSTANCE/VOLUME")

	// The engine accepts what the conversion makes.
	_, err = keeper.New(keeper.Options{EC2: client, Secrets: v}, ts)
	require.NoError(t, err)

	// trust finds a tag-filtered instance's target through EC2.
	api := func() (keeper.EC2API, error) { return client, nil }
	found, err := findTarget(ctx, c, db2, api)
	require.NoError(t, err)
	assert.Equal(t, "db", found.Name)
	found, err = findTarget(ctx, c, web, api)
	require.NoError(t, err)
	assert.Equal(t, web, found.Instance)
	other := awstest.RunInstance(t, ctx, client, "us-east-1a")
	_, err = findTarget(ctx, c, other, api)
	require.ErrorIs(t, err, errNoTarget)

	// A second target that matches an instance and volume served already is left out.
	c.Targets = append(c.Targets, c.Targets[1])
	c.Targets[2].Name = "web-again"
	ts, err = targets(ctx, c, client, v)
	require.ErrorContains(t, err, "target web-again: "+web+"/"+webVol+": also matched by target "+c.Targets[1].Label())
	require.Len(t, ts, 3)
	c.Targets = c.Targets[:2]

	// A tag filter that finds nothing, and a volume filter that finds two, are errors.
	c.Targets[0].InstanceTags = map[string]string{"Role": "none"}
	_, err = targets(ctx, c, client, v)
	require.ErrorIs(t, err, errNoTarget)
	c.Targets[0].InstanceTags = map[string]string{"Role": "db"}
	c.Targets[0].VolumeTags = nil
	_, err = targets(ctx, c, client, v)
	require.ErrorContains(t, err, "attached volumes")
	// A volume with no vault entry.
	require.NoError(t, v.Remove(webVol))
	c.Targets = c.Targets[1:]
	_, err = targets(ctx, c, client, v)
	require.ErrorIs(t, err, vault.ErrNotFound)
}

// Addresses without a port get the configured one; IPv6 ones in brackets.
func TestSSHConfigAddr(t *testing.T) {
	for in, want := range map[string]string{"::1": "[::1]:2200", "[::1]": "[::1]:2200", "[::1]:22": "[::1]:22", "10.0.0.1": "10.0.0.1:2200", "h.example:23": "h.example:23"} {
		assert.Equal(t, want, sshConfig(config.SSH{Address: in, Port: 2200}).Addr, in)
	}
	j := sshConfig(config.SSH{Address: "10.0.0.1", Port: 2200, JumpHost: &config.Jump{Address: "fe80::1"}})
	assert.Equal(t, "[fe80::1]:22", j.JumpHost.Addr)
}

// A tag group EC2 fails to resolve for a moment (a 500 on DescribeInstances, through a
// fault proxy in front of moto, every retry included) keeps the instances it had: the
// engine is not handed a fleet without them (which would stop serving them and drop what
// it knows of them). The failure is a warning, not a refused row. Without an earlier
// resolution there is nothing to keep: the group is a problem, as before.
func TestResolveKeepsGroupOnEC2Error(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	var failing atomic.Bool
	var failed atomic.Int32
	proxy := awstest.StartProxy(t, moto, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if !failing.Load() || !strings.Contains(string(body), "Action=DescribeInstances") {
			return false
		}
		failed.Add(1)
		awstest.EC2Error(w, http.StatusInternalServerError, "InternalError", "An internal error has occurred")
		return true
	})
	client := awstest.NewEC2Client(proxy)
	db := awstest.RunInstance(t, ctx, client, "us-east-1a", "/dev/sdf")
	_, err := client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{db}, Tags: []types.Tag{{Key: aws.String("Role"), Value: aws.String("db")}}})
	require.NoError(t, err)
	vols, err := client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{db}}}})
	require.NoError(t, err)
	require.Len(t, vols.Volumes, 1)
	vol := aws.ToString(vols.Volumes[0].VolumeId)
	v, err := vault.Create(filepath.Join(t.TempDir(), "v.age"), []byte("pw"), vault.Options{WorkFactor: 10})
	require.NoError(t, err)
	defer v.Close()
	require.NoError(t, v.Add(vault.Entry{VolumeID: vol, LUKSUUID: uuid1}, []byte("x")))
	c, err := config.Parse("k.toml", []byte(`
vault = "/v"
known_hosts = "/etc/keeper/known_hosts"
[ssh]
user = "keeper"
key = "/etc/keeper/id"
[[target]]
name = "db"
instance_tags = { Role = "db" }
volume_tags = { Name = "db-data" }
`))
	require.NoError(t, err)
	_, err = client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{vol}, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("db-data")}}})
	require.NoError(t, err)

	ts, probs, pairs := resolveTargets(ctx, c, client, v, nil)
	require.Empty(t, probs)
	require.Len(t, ts, 1)

	failing.Store(true)
	again, probs, pairs2 := resolveTargets(ctx, c, client, v, pairs)
	require.NotZero(t, failed.Load(), "the proxy failed no DescribeInstances")
	require.Equal(t, ts, again, "the group's instance was dropped on an EC2 error")
	require.Equal(t, pairs, pairs2)
	require.Len(t, probs, 1)
	assert.True(t, probs[0].kept)
	assert.ErrorContains(t, probs[0].err, "InternalError")
	k, err := keeper.New(keeper.Options{EC2: client, Secrets: v}, again)
	require.NoError(t, err)
	for _, row := range statusRows(k, probs) {
		assert.NotEqual(t, keeper.StateRefused, row.State, "a kept group shows as refused: %+v", row)
	}

	// Nothing to keep without an earlier resolution.
	none, probs, _ := resolveTargets(ctx, c, client, v, nil)
	require.Empty(t, none)
	require.Len(t, probs, 1)
	assert.False(t, probs[0].kept)

	// An answer that the group is empty does take it out.
	failing.Store(false)
	_, err = client.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{db}, Tags: []types.Tag{{Key: aws.String("Role")}}})
	require.NoError(t, err)
	gone, probs, _ := resolveTargets(ctx, c, client, v, pairs)
	require.Empty(t, gone)
	require.Len(t, probs, 1)
	assert.ErrorIs(t, probs[0].err, errNoTarget)
}

// A target the engine would refuse (here: a name a tag group's instance also gets) is a
// problem of its own, reported as a refused row, and the rest of the fleet is a set the
// engine accepts: one bad target does not block every fleet change.
func TestResolveLeavesOutWhatTheEngineRefuses(t *testing.T) {
	ctx := context.Background()
	client := awstest.NewEC2Client(awstest.StartMoto(t))
	db := awstest.RunInstance(t, ctx, client, "us-east-1a", "/dev/sdf")
	other := awstest.RunInstance(t, ctx, client, "us-east-1a", "/dev/sdf")
	_, err := client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{db}, Tags: []types.Tag{{Key: aws.String("Role"), Value: aws.String("db")}}})
	require.NoError(t, err)
	volOf := func(id string) string {
		out, err := client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{id}}}})
		require.NoError(t, err)
		require.Len(t, out.Volumes, 1)
		return aws.ToString(out.Volumes[0].VolumeId)
	}
	dbVol, otherVol := volOf(db), volOf(other)
	v, err := vault.Create(filepath.Join(t.TempDir(), "v.age"), []byte("pw"), vault.Options{WorkFactor: 10})
	require.NoError(t, err)
	defer v.Close()
	require.NoError(t, v.Add(vault.Entry{VolumeID: dbVol, LUKSUUID: uuid1}, []byte("x")))
	require.NoError(t, v.Add(vault.Entry{VolumeID: otherVol, LUKSUUID: uuid2}, []byte("x")))
	_, err = client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{dbVol}, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("db-data")}}})
	require.NoError(t, err)
	c, err := config.Parse("k.toml", []byte(`
vault = "/v"
known_hosts = "/etc/keeper/known_hosts"
[ssh]
user = "keeper"
key = "/etc/keeper/id"
[[target]]
name = "db"
instance_tags = { Role = "db" }
volume_tags = { Name = "db-data" }
[[target]]
name = "db/`+db+`"
instance = "`+other+`"
volume = "`+otherVol+`"
`))
	require.NoError(t, err)
	ts, probs, _ := resolveTargets(ctx, c, client, v, nil)
	require.Len(t, ts, 1)
	require.Equal(t, db, ts[0].InstanceID)
	require.Len(t, probs, 1)
	assert.ErrorContains(t, probs[0].err, `its name "db/`+db+`" is also target db's`)
	assert.Equal(t, keeper.StateRefused, probs[0].status.State)
	_, err = keeper.New(keeper.Options{EC2: client, Secrets: v}, ts)
	require.NoError(t, err, "the engine refuses the resolved set")
}
