package keeper

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/require"
)

// A running keeper whose tag groups change keeps what it knows of the targets that stay:
// an instance retagged from one group into another (a new name, the same instance and
// volume) keeps its attempt count, its last unlock and the boot id it unlocked, so a volume
// closed again on that boot is refused, not reopened. A target dropped from the groups
// loses its row but not its memory: when it comes back (within AttemptWindow) it has its
// attempts and last unlock again. The groups are resolved from moto's tags
// between passes, as `keeper run` resolves them.
func TestSetTargetsKeepsStateAcrossTagChanges(t *testing.T) {
	ctx := context.Background()
	client, inst, vol := motoFleet(t)
	ins := [2]*instance{newInstance(t, inst[0], vol[0]), newInstance(t, inst[1], vol[1])}
	sec := &vault{m: map[string][]byte{vol[0]: []byte(testPassphrase), vol[1]: []byte(testPassphrase)}}
	retag := func(i int, role string) {
		_, err := client.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{inst[i]}, Tags: []types.Tag{{Key: aws.String("Role")}}})
		require.NoError(t, err)
		if role != "" {
			_, err = client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{inst[i]}, Tags: []types.Tag{{Key: aws.String("Role"), Value: aws.String(role)}}})
			require.NoError(t, err)
		}
	}
	// groups resolves the "web" and "db" groups: each instance tagged Role=GROUP is served
	// as GROUP/INSTANCE.
	groups := func() []Target {
		var out []Target
		for _, g := range []string{"db", "web"} {
			res, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:Role"), Values: []string{g}}}})
			require.NoError(t, err)
			for _, r := range res.Reservations {
				for _, i := range r.Instances {
					for _, in := range ins {
						if in.instID == aws.ToString(i.InstanceId) {
							tg := in.target()
							tg.Name = g + "/" + in.instID
							out = append(out, tg)
						}
					}
				}
			}
		}
		return out
	}
	retag(0, "web")
	retag(1, "web")
	var audit lockedAudit
	k, err := New(Options{EC2: client, Secrets: sec, Audit: &audit, Keepalive: 200 * time.Millisecond, PollEvery: 300 * time.Millisecond,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}, groups())
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- k.Run(rctx) }()
	defer func() {
		cancel()
		<-done
	}()
	web0, web1 := "web/"+inst[0], "web/"+inst[1]
	first := waitStatus(t, k, web0, 30*time.Second, func(s TargetStatus) bool { return s.State == StateUnlocked })
	require.Equal(t, 1, first.Attempts)
	require.False(t, first.LastUnlock.IsZero())
	gone := waitStatus(t, k, web1, 30*time.Second, func(s TargetStatus) bool { return s.State == StateUnlocked })
	require.Equal(t, 1, gone.Attempts)
	require.Equal(t, 1, bytes.Count(ins[0].sent(), ins[0].vk), "one key sent to the first instance")

	// The first instance moves to the db group, the second leaves both.
	retag(0, "db")
	retag(1, "")
	require.NoError(t, k.SetTargets(groups()))
	db0 := "db/" + inst[0]
	rows := k.Status()
	require.Len(t, rows, 1, "the dropped target has no row: %+v", rows)
	kept := rows[0]
	require.Equal(t, db0, kept.Name)
	require.Equal(t, first.BootID, kept.BootID)
	require.Equal(t, 1, kept.Attempts, "the attempt count of the current boot survived")
	require.True(t, first.LastUnlock.Equal(kept.LastUnlock), "the last unlock survived")

	// Closed again on the boot it unlocked: refused under its new name, no key sent.
	ins[0].unmap()
	st := waitStatus(t, k, db0, 30*time.Second, func(s TargetStatus) bool { return s.State == StateRefused })
	require.Contains(t, st.Reason, "the volume is closed again")
	require.Equal(t, 1, st.Attempts)
	require.Zero(t, bytes.Count(ins[0].sent(), ins[0].vk), "the key was sent again for a boot already unlocked")

	// The second comes back: its memory with it (the attempt of its boot, its last
	// unlock); it finds its volume still mapped, so it reads as unlocked.
	retag(1, "web")
	require.NoError(t, k.SetTargets(groups()))
	back := waitStatus(t, k, web1, 30*time.Second, func(s TargetStatus) bool { return s.State == StateUnlocked })
	require.Equal(t, 1, back.Attempts)
	require.True(t, gone.LastUnlock.Equal(back.LastUnlock), "the dropped target's last unlock was lost: %v", back.LastUnlock)
	require.Contains(t, audit.String(), `"target":"`+web1+`","instance":"`+inst[1]+`","volume":"`+vol[1]+`","step":"targets","decision":"dropped"`)

	// A set that cannot be served changes nothing.
	twice := append(groups(), groups()[0])
	twice[len(twice)-1].Name = "other"
	require.ErrorIs(t, k.SetTargets(twice), ErrInvalid)
	require.Len(t, k.Targets(), 2)
}

// A target dropped for a moment (a tag group EC2 failed to resolve once) and given back
// keeps what guards its unlocks: the boot it unlocked (closed again on it: refused), its
// attempts, the mapped mark that stops a rescue from detaching. A pass of the dropped
// target still under way files into that memory without bringing back a status row.
// After AttemptWindow the memory goes.
func TestSetTargetsDropKeepsGuards(t *testing.T) {
	now := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tg := Target{Name: "web/i-0123456789abcdef0", InstanceID: "i-0123456789abcdef0", VolumeID: "vol-0123456789abcdef0",
		LUKSUUID: "11111111-2222-4333-8444-555555555555",
		SSH:      SSHConfig{Addr: "127.0.0.1:1", User: "u", KeyFile: "/nonexistent", KnownHosts: []string{"/nonexistent"}}}
	k, err := New(Options{NoEC2: true, Secrets: &vault{m: map[string][]byte{}}, Now: clock}, []Target{tg})
	require.NoError(t, err)
	k.noteMapped(&tg, "boot-1", true)
	k.markUnlocked(&tg, "boot-1", true)
	k.countAttempt(&tg, "boot-1")

	require.NoError(t, k.SetTargets(nil))
	require.Empty(t, k.Status())
	k.seen(&tg, "boot-1") // a stale pass of the dropped target
	require.Empty(t, k.Status(), "a pass of a target not served made a row")
	require.Equal(t, "boot-1", k.lastMapped(&tg), "the mapped mark went with the drop")

	now = now.Add(time.Minute)
	require.NoError(t, k.SetTargets([]Target{tg}))
	require.Equal(t, "boot-1", k.lastMapped(&tg))
	require.ErrorIs(t, k.checkBoot(&tg, "boot-1", false), ErrBootUnlocked)
	rows := k.Status()
	require.Len(t, rows, 1)
	require.Equal(t, 1, rows[0].Attempts)
	require.False(t, rows[0].LastUnlock.IsZero())

	// Dropped for longer than the window: a fresh start.
	require.NoError(t, k.SetTargets(nil))
	now = now.Add(DefaultAttemptWindow)
	require.NoError(t, k.SetTargets([]Target{tg}))
	require.Empty(t, k.lastMapped(&tg))
	require.NoError(t, k.checkBoot(&tg, "boot-1", false))
}

// A target whose vault entry names another LUKS UUID (the volume reformatted) keeps its
// row but not the guards of the old header: its boot ids, attempts and mapped mark.
func TestSetTargetsNewUUIDStartsAfresh(t *testing.T) {
	tg := Target{InstanceID: "i-0123456789abcdef0", VolumeID: "vol-0123456789abcdef0", LUKSUUID: "11111111-2222-4333-8444-555555555555",
		SSH: SSHConfig{Addr: "127.0.0.1:1", User: "u", KeyFile: "/nonexistent", KnownHosts: []string{"/nonexistent"}}}
	k, err := New(Options{NoEC2: true, Secrets: &vault{m: map[string][]byte{}}, MaxAttemptsPerBoot: 1}, []Target{tg})
	require.NoError(t, err)
	k.noteMapped(&tg, "boot-1", true)
	k.markUnlocked(&tg, "boot-1", true)
	k.countAttempt(&tg, "boot-1")
	require.NoError(t, k.SetTargets([]Target{tg}))
	require.ErrorIs(t, k.checkBoot(&tg, "boot-1", false), ErrBootUnlocked, "the same UUID lost its memory")

	tg.LUKSUUID = "99999999-2222-4333-8444-555555555555"
	require.NoError(t, k.SetTargets([]Target{tg}))
	require.NoError(t, k.checkBoot(&tg, "boot-1", false))
	require.Empty(t, k.lastMapped(&tg))
	require.Zero(t, k.Status()[0].Attempts)
}
