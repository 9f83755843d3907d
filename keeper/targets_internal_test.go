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
// closed again on that boot is refused, not reopened. A target dropped from the groups is
// forgotten: when it comes back it starts afresh. The groups are resolved from moto's tags
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

	// The second comes back: a new target with no memory (no attempts, no last unlock);
	// it finds its volume still mapped, so it reads as unlocked by someone else.
	retag(1, "web")
	require.NoError(t, k.SetTargets(groups()))
	back := waitStatus(t, k, web1, 30*time.Second, func(s TargetStatus) bool { return s.State == StateUnlocked })
	require.Zero(t, back.Attempts)
	require.True(t, back.LastUnlock.IsZero(), "the dropped target's last unlock came back: %v", back.LastUnlock)
	require.Contains(t, audit.String(), `"target":"`+web1+`","instance":"`+inst[1]+`","volume":"`+vol[1]+`","step":"targets","decision":"dropped"`)

	// A set that cannot be served changes nothing.
	twice := append(groups(), groups()[0])
	twice[len(twice)-1].Name = "other"
	require.ErrorIs(t, k.SetTargets(twice), ErrInvalid)
	require.Len(t, k.Targets(), 2)
}
