package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/cloudluks/cloudluks/keeper"
	"github.com/cloudluks/cloudluks/keeper/config"
	"github.com/cloudluks/cloudluks/keeper/vault"
)

// ec2Factory makes the EC2 client; region "" is the SDK's own.
type ec2Factory func(ctx context.Context, region string) (keeper.EC2API, error)

func defaultEC2(ctx context.Context, region string) (keeper.EC2API, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return ec2.NewFromConfig(cfg), nil
}

// sshConfig turns a configuration's [target.ssh] into the engine's.
func sshConfig(s config.SSH) keeper.SSHConfig {
	c := keeper.SSHConfig{
		Addr: s.Address, Port: s.Port, PrivateIP: s.UsesPrivateIP(), User: s.User, KeyFile: s.Key,
		Agent: s.UsesAgent(), AgentSocket: s.AgentSocket, KnownHosts: s.KnownHosts, HostCA: s.HostCA,
		Command: s.Command,
	}
	if c.Addr != "" && !hasPort(c.Addr) {
		// JoinHostPort brackets a bare IPv6 address ("::1" → "[::1]:22").
		c.Addr = net.JoinHostPort(strings.Trim(c.Addr, "[]"), strconv.Itoa(s.Port))
	}
	if j := s.JumpHost; j != nil {
		addr := j.Address
		if !hasPort(addr) {
			addr = net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(keeper.DefaultPort))
		}
		c.JumpHost = &keeper.SSHConfig{Addr: addr, User: j.User, KeyFile: j.Key, Agent: j.Agent,
			AgentSocket: s.AgentSocket, KnownHosts: j.KnownHosts, HostCA: j.HostCA}
	}
	return c
}

func hasPort(addr string) bool {
	// "host:port" or "[v6]:port"; a bare IPv6 address has colons but no brackets.
	if len(addr) > 0 && addr[0] == '[' {
		return slices.Contains([]byte(addr), ']') && addr[len(addr)-1] != ']'
	}
	n := 0
	for _, c := range addr {
		if c == ':' {
			n++
		}
	}
	return n == 1
}

// problem is a configured target (or one instance of a tag group) the keeper cannot serve
// right now: a group that finds no instance, an instance without its volume, a volume
// without a vault entry. It is reported, as a refused row of the status, and the rest of the
// fleet is served; the next resolution may find it well.
type problem struct {
	status keeper.TargetStatus
	err    error
	// kept: EC2 failed to answer for the target, which is served as last resolved
	// meanwhile: a warning, not a status row.
	kept bool
}

// targets turns the configuration into the engine's targets: each tag filter is resolved
// against EC2 (running instances only), and every volume's LUKS UUID comes from its vault
// entry. What cannot be served is left out and returned in the error (errors.Join of one
// per problem), so one bad group does not stop the fleet.
func targets(ctx context.Context, c *config.Config, api keeper.EC2API, v *vault.Vault) ([]keeper.Target, error) {
	ts, probs, _ := resolveTargets(ctx, c, api, v, nil)
	var errs []error
	for _, p := range probs {
		errs = append(errs, p.err)
	}
	return ts, errors.Join(errs...)
}

// resolveTargets is targets with the problems apart. prev holds the pairs each target
// (by label) resolved to last time, and the pairs of this resolution are returned: when
// EC2 fails to answer (throttling, a 5xx, a timeout) for a tag group, or for one instance
// of it, the pairs it had are kept rather than dropped, as a failed question says nothing
// about the fleet. Only an answer (no instance, no volume) takes a target out.
func resolveTargets(ctx context.Context, c *config.Config, api keeper.EC2API, v *vault.Vault, prev map[string][][2]string) ([]keeper.Target, []problem, map[string][][2]string) {
	var out []keeper.Target
	var probs []problem
	resolved := map[string][][2]string{}
	servedBy := map[[2]string]string{} // (instance, volume) → the target serving it
	labels := map[string]string{}      // engine name → the target serving it
	bad := func(t config.Target, instance, volume string, err error) {
		err = fmt.Errorf("target %s: %w", t.Label(), err)
		probs = append(probs, problem{err: err, status: keeper.TargetStatus{
			Name: t.Label(), InstanceID: instance, VolumeID: volume, State: keeper.StateRefused, Reason: oneLine(err.Error()),
		}})
	}
	for _, t := range c.Targets {
		pairs, perr := resolve(ctx, api, t)
		for _, pe := range perr {
			if !pe.transient {
				bad(t, pe.instance, t.Volume, pe.err)
				continue
			}
			var keep [][2]string
			for _, p := range prev[t.Label()] {
				if (pe.instance == "" || pe.instance == p[0]) && !slices.Contains(pairs, p) {
					keep = append(keep, p)
				}
			}
			if len(keep) == 0 {
				bad(t, pe.instance, t.Volume, pe.err)
				continue
			}
			err := fmt.Errorf("target %s: %w (serving the %d instance(s) it had)", t.Label(), pe.err, len(keep))
			probs = append(probs, problem{err: err, kept: true})
			pairs = append(pairs, keep...)
		}
		slices.SortFunc(pairs, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		resolved[t.Label()] = pairs
		for _, p := range pairs {
			if by, dup := servedBy[p]; dup {
				// One engine target per instance and volume: its memory (attempts, boots
				// unlocked) is kept under that pair, and two watchers would race each other.
				bad(t, p[0], p[1], fmt.Errorf("%s/%s: also matched by target %s, which serves it", p[0], p[1], by))
				continue
			}
			e, err := v.Lookup(p[1])
			if err != nil {
				bad(t, p[0], p[1], err)
				continue
			}
			name := t.Name
			if name != "" && (len(pairs) > 1 || len(t.InstanceTags) > 0) {
				name = t.Name + "/" + p[0]
			}
			kt := keeper.Target{
				Name: name, InstanceID: p[0], VolumeID: p[1], Mapping: t.Mapping, MountPoint: t.Mount,
				LUKSUUID: e.LUKSUUID, SSH: sshConfig(t.SSH), AutoRescue: c.Rescue(t),
			}
			// What the engine would refuse is left out here, one target at a time: the
			// engine refuses a set with one bad target whole, which would hold up every
			// other change of the fleet.
			if err := keeper.ValidateTarget(kt, false); err != nil {
				bad(t, p[0], p[1], err)
				continue
			}
			label := kt.Name
			if label == "" {
				label = p[0] + "/" + p[1]
			}
			if by, dup := labels[label]; dup {
				bad(t, p[0], p[1], fmt.Errorf("%s/%s: its name %q is also target %s's", p[0], p[1], label, by))
				continue
			}
			labels[label] = t.Label()
			servedBy[p] = t.Label()
			out = append(out, kt)
		}
	}
	return out, probs, resolved
}

type resolveErr struct {
	instance  string // "" for the whole target
	err       error
	transient bool // EC2 did not answer: the target's earlier pairs stand
}

// resolve returns the (instance, volume) pairs of a target, and what went wrong for the
// whole target or for single instances of its group.
func resolve(ctx context.Context, api keeper.EC2API, t config.Target) ([][2]string, []resolveErr) {
	if t.Instance != "" && t.Volume != "" {
		return [][2]string{{t.Instance, t.Volume}}, nil
	}
	if api == nil {
		return nil, []resolveErr{{t.Instance, fmt.Errorf("tag filters need EC2"), false}}
	}
	instances := []string{t.Instance}
	if t.Instance == "" {
		filters := tagFilters(t.InstanceTags)
		filters = append(filters, types.Filter{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}})
		p := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: filters})
		instances = nil
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, []resolveErr{{"", err, true}}
			}
			for _, r := range page.Reservations {
				for _, i := range r.Instances {
					instances = append(instances, aws.ToString(i.InstanceId))
				}
			}
		}
		if len(instances) == 0 {
			return nil, []resolveErr{{"", fmt.Errorf("no instance with tags %v: %w", t.InstanceTags, errNoTarget), false}}
		}
	}
	var out [][2]string
	var errs []resolveErr
	for _, id := range instances {
		filters := append(tagFilters(t.VolumeTags), types.Filter{Name: aws.String("attachment.instance-id"), Values: []string{id}})
		res, err := api.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: filters})
		if err != nil {
			errs = append(errs, resolveErr{id, err, true})
			continue
		}
		switch len(res.Volumes) {
		case 0:
			errs = append(errs, resolveErr{id, fmt.Errorf("%s: no attached volume with tags %v: %w", id, t.VolumeTags, errNoTarget), false})
		case 1:
			out = append(out, [2]string{id, aws.ToString(res.Volumes[0].VolumeId)})
		default:
			errs = append(errs, resolveErr{id, fmt.Errorf("%s: %d attached volumes with tags %v: make the filter narrower", id, len(res.Volumes), t.VolumeTags), false})
		}
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out, errs
}

func tagFilters(tags map[string]string) []types.Filter {
	var f []types.Filter
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		f = append(f, types.Filter{Name: aws.String("tag:" + k), Values: []string{tags[k]}})
	}
	return f
}

// findTarget is the configured target of an instance (for trust): a target naming it, else
// a tag-filtered target whose filter EC2 says it matches (api is made only then).
func findTarget(ctx context.Context, c *config.Config, instance string, api func() (keeper.EC2API, error)) (config.Target, error) {
	for _, t := range c.Targets {
		if t.Instance == instance {
			return t, nil
		}
	}
	for _, t := range c.Targets {
		if len(t.InstanceTags) == 0 {
			continue
		}
		client, err := api()
		if err != nil {
			return config.Target{}, err
		}
		out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instance}, Filters: tagFilters(t.InstanceTags)})
		if err != nil {
			return config.Target{}, fmt.Errorf("%s: %w", instance, err)
		}
		for _, r := range out.Reservations {
			if len(r.Instances) > 0 {
				return t, nil
			}
		}
	}
	return config.Target{}, fmt.Errorf("%s: %w", instance, errNoTarget)
}
