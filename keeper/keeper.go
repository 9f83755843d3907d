package keeper

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Defaults for the zero fields of Options.
const (
	DefaultMaxAttemptsPerBoot = 3
	// DefaultMaxAttemptsPerWindow key derivations per DefaultAttemptWindow and target,
	// whatever boot ids the instance reports: a reboot loop is served, a replaying
	// instance is not served without end.
	DefaultMaxAttemptsPerWindow = 10
	DefaultAttemptWindow        = time.Hour
	DefaultConcurrency          = 16
	DefaultKeepalive            = 15 * time.Second
	DefaultPollEvery            = 60 * time.Second
	DefaultDialTimeout          = 15 * time.Second
	DefaultRequestTimeout       = 2 * time.Minute // an unlock mounts and runs hooks
	DefaultReconnectMin         = 1 * time.Second
	// DefaultReconnectMax caps the redial backoff, and so bounds how long after a rebooted
	// instance's sshd comes up the keeper notices (a dial is one TCP SYN: cheap to repeat).
	DefaultReconnectMax = 10 * time.Second
	DefaultCommand      = "encrypted-volume serve"
	DefaultPort         = 22
)

// EC2API is the part of the EC2 client the keeper calls; *ec2.Client satisfies it. The
// unlock checks use only the two Describe calls; Rescue needs the rest.
type EC2API interface {
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeVolumes(context.Context, *ec2.DescribeVolumesInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
	GetConsoleOutput(context.Context, *ec2.GetConsoleOutputInput, ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error)
	DetachVolume(context.Context, *ec2.DetachVolumeInput, ...func(*ec2.Options)) (*ec2.DetachVolumeOutput, error)
	AttachVolume(context.Context, *ec2.AttachVolumeInput, ...func(*ec2.Options)) (*ec2.AttachVolumeOutput, error)
	RebootInstances(context.Context, *ec2.RebootInstancesInput, ...func(*ec2.Options)) (*ec2.RebootInstancesOutput, error)
}

// Secrets hands out passphrases by volume ID; the vault implements it. The keeper zeroes
// the returned slice when it is done with it, so implementations return a copy.
type Secrets interface {
	Passphrase(volumeID string) ([]byte, error)
}

// Target is one instance and encrypted volume the keeper serves.
type Target struct {
	Name       string // label for status and audit ("web-1/data"); "" = "INSTANCE/VOLUME"
	InstanceID string // i-…; the instance is pinned by ID, its address comes from EC2
	VolumeID   string // vol-…
	Mapping    string // expected mapping name on the instance ("" = not checked)
	MountPoint string // expected mount point on the instance ("" = not checked)
	LUKSUUID   string // expected header UUID (from the vault entry); required
	SSH        SSHConfig
	// AutoRescue lets Run rescue this target on its own when it is stuck (see Rescue).
	AutoRescue bool
}

// SSHConfig says how to reach a target's sshd and how to trust it.
type SSHConfig struct {
	// Addr is "host:port" to dial. "" = the instance's address from EC2 (public IPv4, else
	// private; PrivateIP forces the private one) and Port.
	Addr      string
	Port      int // with Addr "": 0 = 22
	PrivateIP bool
	User      string // required
	// KeyFile is an unencrypted OpenSSH private key. Agent uses the ssh-agent at
	// AgentSocket ("" = $SSH_AUTH_SOCK). At least one of them; both may be offered.
	KeyFile     string
	Agent       bool
	AgentSocket string
	// KnownHosts are OpenSSH known_hosts files (hashed names, markers and
	// @cert-authority lines included). HostCA are files of CA public keys, one
	// authorized_keys-style key per line, whose host certificates are trusted for a
	// principal equal to the instance ID or the dialled host. At least one of them.
	KnownHosts []string
	HostCA     []string
	// JumpHost is a bastion dialled first; the target is reached through it.
	JumpHost *SSHConfig
	// Command is sent as the exec request ("" = DefaultCommand); a forced command in the
	// instance's authorized_keys overrides it, and should.
	Command string
}

// Options configure a Keeper. Zero durations and counts mean the defaults above.
type Options struct {
	EC2 EC2API // required unless NoEC2
	// NoEC2 skips the EC2 checks (instance running, volume attached): only for setups
	// outside AWS. Every target then needs SSH.Addr. The audit log records the skip.
	NoEC2   bool
	Secrets Secrets   // required
	Audit   io.Writer // JSON lines, one per decision; nil = discarded

	MaxAttemptsPerBoot int
	// MaxAttemptsPerWindow bounds the key derivations per AttemptWindow and target,
	// whatever boot ids the instance reports.
	MaxAttemptsPerWindow int
	AttemptWindow        time.Duration
	Concurrency          int // targets being dialled, checked or unlocked at once
	Keepalive            time.Duration
	PollEvery            time.Duration // EC2 backstop poll per target
	DialTimeout          time.Duration // TCP connect, and separately the SSH handshake
	RequestTimeout       time.Duration // one protocol exchange
	ReconnectMin         time.Duration // reconnect backoff: first delay …
	ReconnectMax         time.Duration // … and cap
	// RescueProbes dials, RescueProbeEvery apart, must all fail to make a TCP connection
	// before a rescue (Rescue, and Run's AutoRescue) counts the instance unreachable;
	// RescueOptions.Probes and ProbeEvery override them for one call.
	RescueProbes     int
	RescueProbeEvery time.Duration

	// Program is sent in the protocol's Hello, for the instance's logs ("" = "keeper").
	Program string

	// Now is the clock (nil = time.Now); tests set it for stable status output.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt(&o.MaxAttemptsPerBoot, DefaultMaxAttemptsPerBoot)
	defInt(&o.MaxAttemptsPerWindow, DefaultMaxAttemptsPerWindow)
	defDur(&o.AttemptWindow, DefaultAttemptWindow)
	defInt(&o.Concurrency, DefaultConcurrency)
	defDur(&o.Keepalive, DefaultKeepalive)
	defDur(&o.PollEvery, DefaultPollEvery)
	defDur(&o.DialTimeout, DefaultDialTimeout)
	defDur(&o.RequestTimeout, DefaultRequestTimeout)
	defDur(&o.ReconnectMin, DefaultReconnectMin)
	defDur(&o.ReconnectMax, DefaultReconnectMax)
	defInt(&o.RescueProbes, DefaultRescueProbes)
	defDur(&o.RescueProbeEvery, DefaultRescueProbeEvery)
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = o.ReconnectMin
	}
	if o.Program == "" {
		o.Program = "keeper"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Audit == nil {
		o.Audit = io.Discard
	}
	return o
}

// Keeper serves a set of targets, which SetTargets may change while Run serves them. Its
// methods are safe for concurrent use.
type Keeper struct {
	opts  Options
	audit *auditLog
	sem   chan struct{}

	mu      sync.Mutex
	targets []Target
	state   map[string]*targetState // by Target.key(): instance ID and volume; served targets only
	// gone is the memory of targets not served: dropped by SetTargets (a tag group EC2
	// failed to resolve for a moment, an instance retagged out and back) or passed over by
	// UnlockOnce/Rescue without being served. It is kept for AttemptWindow after the drop,
	// so what guards an unlock (boot ids unlocked, attempts, the mapped mark) survives a
	// target's brief absence; it has no status row.
	gone map[string]*goneState
	// changed is closed (and replaced) by SetTargets, to wake every Run.
	changed chan struct{}
}

// New validates opts and targets and returns a Keeper; it dials nothing.
func New(opts Options, targets []Target) (*Keeper, error) {
	opts = opts.withDefaults()
	if opts.Secrets == nil {
		return nil, fmt.Errorf("keeper: Options.Secrets: %w", ErrInvalid)
	}
	if opts.EC2 == nil && !opts.NoEC2 {
		return nil, fmt.Errorf("keeper: Options.EC2 is nil and NoEC2 is not set: %w", ErrInvalid)
	}
	k := &Keeper{
		opts:    opts,
		audit:   newAuditLog(opts.Audit, opts.Now),
		sem:     make(chan struct{}, opts.Concurrency),
		state:   make(map[string]*targetState),
		gone:    make(map[string]*goneState),
		changed: make(chan struct{}),
	}
	if err := k.setTargets(targets, false); err != nil {
		return nil, err
	}
	return k, nil
}

// SetTargets replaces the set of targets served, in place: a running Run starts serving
// the new ones, stops serving (and closes the connections of) the ones gone, and
// restarts a target whose settings changed. What the keeper remembers of a target (the
// boot ids unlocked, the attempts per boot, the rate-limit window, the last unlock, a
// stuck mark, its status row) is kept for every target that stays, matched by instance
// ID and volume, whatever its name now (a tag group renamed, an instance retagged into
// another group), as long as its LUKSUUID stays the same (a vault entry with a new UUID
// starts afresh). The memory of a target gone is kept, without a status row, for
// Options.AttemptWindow: one that comes back within it (a tag group EC2 failed to resolve
// for a moment) has its boot ids, attempts and rate-limit window again; one that comes back
// later starts afresh. The targets are all validated first: on an error nothing changes.
func (k *Keeper) SetTargets(targets []Target) error { return k.setTargets(targets, true) }

// setTargets is SetTargets; audit says whether the changes go to the audit log (not for
// New's first set).
func (k *Keeper) setTargets(targets []Target, audit bool) error {
	next := make([]Target, 0, len(targets))
	names, keys := map[string]bool{}, map[string]bool{}
	for i := range targets {
		t := targets[i]
		if err := k.validate(&t); err != nil {
			return err
		}
		if names[t.label()] {
			return fmt.Errorf("keeper: target %q listed twice: %w", t.label(), ErrInvalid)
		}
		if keys[t.key()] {
			return fmt.Errorf("keeper: target %q: %s listed twice: %w", t.label(), t.key(), ErrInvalid)
		}
		names[t.label()], keys[t.key()] = true, true
		next = append(next, t)
	}
	var added, dropped []TargetStatus
	k.mu.Lock()
	now := k.opts.Now()
	for key, g := range k.gone {
		if now.Sub(g.since) >= k.opts.AttemptWindow {
			delete(k.gone, key)
		}
	}
	for key, s := range k.state {
		if !keys[key] {
			delete(k.state, key)
			k.gone[key] = &goneState{s: s, since: now}
			dropped = append(dropped, s.status)
		}
	}
	for i := range next {
		t := &next[i]
		s, ok := k.state[t.key()]
		if !ok {
			if g := k.gone[t.key()]; g != nil {
				s = g.s
				delete(k.gone, t.key())
			} else {
				s = newTargetState(t)
			}
			k.state[t.key()] = s
		}
		s.status.Name = t.label() // the one place a row is renamed
		if s.uuid != t.LUKSUUID {
			// The vault entry names another header now: what was unlocked, tried or seen
			// mapped was about the old one.
			s.unlocked, s.attempts, s.recent, s.mapped, s.stuck = nil, map[string]int{}, nil, "", false
			s.status.Attempts, s.status.LastUnlock = 0, time.Time{}
			s.uuid = t.LUKSUUID
		}
		if !ok {
			added = append(added, s.status)
		}
	}
	k.targets = next
	close(k.changed)
	k.changed = make(chan struct{})
	k.mu.Unlock()
	if !audit {
		return nil
	}
	for _, s := range dropped {
		k.audit.log(auditEntry{Target: s.Name, Instance: s.InstanceID, Volume: s.VolumeID, Step: "targets", Decision: "dropped", Detail: "no longer served; its state kept for " + k.opts.AttemptWindow.String() + " in case it comes back"})
	}
	for _, s := range added {
		k.audit.log(auditEntry{Target: s.Name, Instance: s.InstanceID, Volume: s.VolumeID, Step: "targets", Decision: "added"})
	}
	return nil
}

// key is what the keeper's memory of a target is filed under: the same instance and
// volume are the same target, whatever the configuration calls them.
func (t *Target) key() string { return t.InstanceID + "/" + t.VolumeID }

// label is the target's name in status, audit and errors.
func (t *Target) label() string {
	if t.Name != "" {
		return t.Name
	}
	return t.InstanceID + "/" + t.VolumeID
}

// ValidateTarget checks t as New and SetTargets do (noEC2 as Options.NoEC2), so that a
// caller building a fleet can leave a bad target out instead of having the whole set
// refused. Two targets with the same name, or the same instance and volume, are refused
// by SetTargets too; that needs the whole set.
func ValidateTarget(t Target, noEC2 bool) error { return validateTarget(&t, noEC2) }

func (k *Keeper) validate(t *Target) error { return validateTarget(t, k.opts.NoEC2) }

func validateTarget(t *Target, noEC2 bool) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("keeper: target %q: %s: %w", t.label(), fmt.Sprintf(format, a...), ErrInvalid)
	}
	if !strings.HasPrefix(t.InstanceID, "i-") || len(t.InstanceID) < 3 || strings.ContainsAny(t.InstanceID, " \t\n/") {
		return bad("instance ID %q", t.InstanceID)
	}
	if !strings.HasPrefix(t.VolumeID, "vol-") || len(t.VolumeID) < 5 || strings.ContainsAny(t.VolumeID, " \t\n/") {
		return bad("volume ID %q", t.VolumeID)
	}
	if t.LUKSUUID == "" {
		return bad("no LUKS UUID")
	}
	if err := validateSSH(&t.SSH, noEC2, 0); err != nil {
		return bad("ssh: %v", err)
	}
	return nil
}

func validateSSH(c *SSHConfig, noEC2 bool, depth int) error {
	if depth > 4 {
		return fmt.Errorf("jump hosts nested too deep")
	}
	if c.User == "" {
		return fmt.Errorf("no user")
	}
	if c.KeyFile == "" && !c.Agent {
		return fmt.Errorf("neither a key file nor the agent")
	}
	if len(c.KnownHosts) == 0 && len(c.HostCA) == 0 {
		return fmt.Errorf("no known_hosts file and no host CA: the host key cannot be pinned")
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port %d", c.Port)
	}
	if c.Addr == "" && (noEC2 || depth > 0) {
		return fmt.Errorf("no address (only a target's own address can come from EC2)")
	}
	if c.JumpHost != nil {
		return validateSSH(c.JumpHost, noEC2, depth+1)
	}
	return nil
}

// Targets returns the targets the keeper serves, in the order given to New or SetTargets.
func (k *Keeper) Targets() []Target {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Target(nil), k.targets...)
}
