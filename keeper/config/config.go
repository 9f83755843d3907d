// Package config reads the keeper's configuration file: which instances and volumes it
// serves, how to reach them over SSH and how to trust their host keys, and the keeper-wide
// settings. The file is TOML (toml.io v1.0.0, read with github.com/BurntSushi/toml).
//
// # The file
//
//	vault       = "/etc/keeper/vault.age"        # required
//	identity    = "/etc/keeper/vault-key.txt"    # age identity file; absent = ask for the passphrase
//	recipients  = ["age1…", "age1…"]             # what vault writes are encrypted to (with identity)
//	audit_log   = "/var/log/keeper/audit.jsonl"  # absent = standard error
//	known_hosts = "/etc/keeper/known_hosts"      # the keeper's own; `keeper trust` writes it
//	status_file = "/run/keeper/status.json"      # `keeper run` writes it, `keeper status` reads it
//	region      = "eu-west-1"                    # absent = the AWS SDK's
//	concurrency       = 16      # targets dialled, checked or unlocked at once (1..1024)
//	attempts_per_boot = 3       # unlock attempts for one boot of one instance (1..100)
//	keepalive         = "15s"   # SSH keepalive (1s..10m)
//	poll_interval     = "60s"   # EC2 backstop poll (5s..24h)
//	auto_rescue       = false   # may `keeper run` rescue a stuck instance on its own
//	rescue_probes         = 3      # TCP dials that must all fail before a rescue (2..20)
//	rescue_probe_interval = "10s"  # between those dials (1s..10m, whole seconds)
//
//	[ssh]                       # defaults for every target's [target.ssh]
//	user  = "keeper"
//	key   = "/etc/keeper/id_ed25519"
//	agent = false               # offer the keys of $SSH_AUTH_SOCK (agent_socket = path to override)
//	port  = 22
//
//	[[target]]
//	name     = "web-1/data"              # for status and audit; default "INSTANCE/VOLUME"
//	instance = "i-0123456789abcdef0"     # or instance_tags = { Role = "web" }
//	volume   = "vol-0123456789abcdef0"   # or volume_tags = { Name = "data" }
//	mapping  = "data"                    # expected mapping name on the instance
//	mount    = "/data"                   # expected mount point
//	  [target.ssh]                       # any [ssh] key, overriding the default
//	  address     = "10.0.1.5:22"        # instead of the instance's address from EC2
//	  private_ip  = true                 # dial the private address EC2 reports
//	  known_hosts = ["/etc/keeper/known_hosts.web"]
//	  host_ca     = ["/etc/keeper/host_ca.pub"]
//	  jump_host   = { address = "bastion.example.net:22", user = "jump", agent = true }
//
// A target names one instance and one volume, or a tag filter the keeper resolves against
// EC2 (instance_tags, with volume_tags to find the volume attached to each instance found).
// A fixed volume with an instance tag filter is refused: a volume attaches to one instance.
//
// # Rescue
//
// A rescue (`keeper rescue`, and `keeper run` for auto_rescue targets) detaches a volume and
// reboots the instance, so it first makes sure the instance is unreachable:
// rescue_probes dials, rescue_probe_interval apart, must all fail to make a TCP
// connection (an sshd that answers, even wrongly, stops the rescue). More probes or a
// longer interval ride out a longer network fault before a reboot; the defaults, 3 dials
// 10 s apart, let a stuck instance be rescued some 20 s after it is found stuck. One dial
// is no probe (a dropped packet), so rescue_probes is at least 2; the probes must end well
// inside the 15 minutes a whole rescue may take ((rescue_probes-1) × rescue_probe_interval
// under that, or the file is refused).
//
// # Strictness
//
// Every key must be known and every value is checked before anything uses the file: IDs
// have their EC2 shapes (i-/vol- and 8 or 17 hex digits), paths are absolute, numbers and
// durations are inside the ranges above (an absent key takes the default; an explicit 0 is
// a value, and refused), names are unique, a fixed volume is in one target only, and ssh's
// command holds only letters, digits, spaces and _ . / = : , - (nothing a shell expands). Errors name the file and line
// ("keeper.toml:12: unknown key target.ssh.usr") and wrap ErrSyntax, ErrUnknownKey,
// ErrInvalid or ErrTooLarge. The file is at most MaxFileSize bytes.
//
// The package imports no SSH, EC2 or engine code: cmd/keeper turns a Config into the
// engine's targets.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/BurntSushi/toml"
)

// MaxFileSize bounds the configuration file.
const MaxFileSize = 1 << 20

// Defaults of the keeper-wide settings.
const (
	DefaultConcurrency     = 16
	DefaultAttemptsPerBoot = 3
	DefaultKeepalive       = 15 * time.Second
	DefaultPollInterval    = 60 * time.Second
	// DefaultRescueProbes and DefaultRescueProbeInterval are the engine's own defaults
	// (keeper.DefaultRescueProbes, keeper.DefaultRescueProbeEvery).
	DefaultRescueProbes        = 3
	DefaultRescueProbeInterval = 10 * time.Second
	// RescueTimeout is keeper.DefaultRescueTimeout, what a whole rescue may take: its
	// probes must leave time for the rest (this package does not import the engine).
	RescueTimeout     = 15 * time.Minute
	DefaultPort       = 22
	DefaultStatusFile = "/run/keeper/status.json"
)

// Errors, for errors.Is.
var (
	ErrSyntax     = errors.New("syntax error")
	ErrUnknownKey = errors.New("unknown key")
	ErrInvalid    = errors.New("invalid value")
	ErrTooLarge   = errors.New("file too large")
)

// Duration is a TOML string in time.ParseDuration's syntax ("15s", "2m").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%w: duration %q: want a number and a unit, such as \"15s\"", ErrInvalid, b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Config is a parsed, validated configuration. Targets carry their SSH settings with the
// [ssh] defaults already applied; the keeper-wide settings have their defaults filled in.
type Config struct {
	Vault           string   `toml:"vault"`
	Identity        string   `toml:"identity,omitempty"`
	Recipients      []string `toml:"recipients,omitempty"`
	AuditLog        string   `toml:"audit_log,omitempty"`
	KnownHosts      string   `toml:"known_hosts,omitempty"`
	StatusFile      string   `toml:"status_file,omitempty"`
	Region          string   `toml:"region,omitempty"`
	Concurrency     int      `toml:"concurrency,omitempty"`
	AttemptsPerBoot int      `toml:"attempts_per_boot,omitempty"`
	Keepalive       Duration `toml:"keepalive,omitempty"`
	PollInterval    Duration `toml:"poll_interval,omitempty"`
	AutoRescue      bool     `toml:"auto_rescue,omitempty"`
	// RescueProbes dials, RescueProbeInterval apart, must all fail before a rescue.
	RescueProbes        int      `toml:"rescue_probes,omitempty"`
	RescueProbeInterval Duration `toml:"rescue_probe_interval,omitempty"`
	SSH                 SSH      `toml:"ssh,omitempty"`
	Targets             []Target `toml:"target"`
}

// Target is one [[target]] table.
type Target struct {
	Name         string            `toml:"name,omitempty"`
	Instance     string            `toml:"instance,omitempty"`
	InstanceTags map[string]string `toml:"instance_tags,omitempty"`
	Volume       string            `toml:"volume,omitempty"`
	VolumeTags   map[string]string `toml:"volume_tags,omitempty"`
	Mapping      string            `toml:"mapping,omitempty"`
	Mount        string            `toml:"mount,omitempty"`
	// AutoRescue overrides the keeper-wide auto_rescue for this target.
	AutoRescue *bool `toml:"auto_rescue,omitempty"`
	SSH        SSH   `toml:"ssh,omitempty"`
}

// SSH is an [ssh] or [target.ssh] table.
type SSH struct {
	User        string `toml:"user,omitempty"`
	Key         string `toml:"key,omitempty"`
	Agent       *bool  `toml:"agent,omitempty"`
	AgentSocket string `toml:"agent_socket,omitempty"`
	Port        int    `toml:"port,omitempty,omitzero"`
	Address     string `toml:"address,omitempty"`
	PrivateIP   *bool  `toml:"private_ip,omitempty"`
	// KnownHosts and HostCA tell an empty list (none, overriding [ssh]) from an absent one.
	KnownHosts []string `toml:"known_hosts"`
	HostCA     []string `toml:"host_ca"`
	JumpHost   *Jump    `toml:"jump_host,omitempty"`
	Command    string   `toml:"command,omitempty"`
}

// Jump is a bastion: dialled first, the target is reached through it.
type Jump struct {
	Address    string   `toml:"address"`
	User       string   `toml:"user"`
	Key        string   `toml:"key,omitempty"`
	Agent      bool     `toml:"agent,omitempty"`
	KnownHosts []string `toml:"known_hosts,omitempty"`
	HostCA     []string `toml:"host_ca,omitempty"`
}

// UsesAgent reports whether the agent is offered.
func (s SSH) UsesAgent() bool { return s.Agent != nil && *s.Agent }

// UsesPrivateIP reports whether the private address is dialled.
func (s SSH) UsesPrivateIP() bool { return s.PrivateIP != nil && *s.PrivateIP }

// Rescue reports whether the keeper may rescue the target on its own.
func (c *Config) Rescue(t Target) bool {
	if t.AutoRescue != nil {
		return *t.AutoRescue
	}
	return c.AutoRescue
}

// Label is the target's name in status and audit: its name, else "INSTANCE/VOLUME" (with
// "tags" for a tag filter).
func (t Target) Label() string {
	if t.Name != "" {
		return t.Name
	}
	inst, vol := t.Instance, t.Volume
	if inst == "" {
		inst = "tags:" + fmtTags(t.InstanceTags)
	}
	if vol == "" {
		vol = "tags:" + fmtTags(t.VolumeTags)
	}
	return inst + "/" + vol
}

func fmtTags(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readLimited(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Parse(path, data)
}

func readLimited(f *os.File) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w (more than %d bytes)", ErrTooLarge, MaxFileSize)
	}
	return data, nil
}

// Parse validates data, the contents of the file name (used in errors only).
func Parse(name string, data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %w (more than %d bytes)", name, ErrTooLarge, MaxFileSize)
	}
	lines := keyLines(data)
	var c Config
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			if rest, ok := strings.CutPrefix(pe.Message, ErrInvalid.Error()+": "); ok {
				// A value the package's own TextUnmarshaler refused (a duration).
				return nil, fmt.Errorf("%s:%d: %s: %w: %s", name, pe.Position.Line, pe.LastKey, ErrInvalid, rest)
			}
			return nil, fmt.Errorf("%s:%d: %w: %s", name, pe.Position.Line, ErrSyntax, pe.Message)
		}
		// The decoder's type errors are plain: "toml: line N (last key "K"): MESSAGE".
		if m := reTypeErr.FindStringSubmatch(err.Error()); m != nil {
			return nil, fmt.Errorf("%s:%s: %s: %w: %s", name, m[1], m[2], ErrInvalid, m[3])
		}
		return nil, fmt.Errorf("%s: %w: %v", name, ErrSyntax, strings.TrimPrefix(err.Error(), "toml: "))
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0].String()
		return nil, fmt.Errorf("%s:%d: %w %s", name, lines.find(k), ErrUnknownKey, k)
	}
	if err := c.validate(explicit(md, data)); err != nil {
		var ve *valueError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("%s:%d: %s: %w: %s", name, lines.find(ve.key), ve.key, ErrInvalid, ve.msg)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

// valueError is a bad value at a key path ("target[1].ssh.port").
type valueError struct{ key, msg string }

func (e *valueError) Error() string { return e.key + ": " + e.msg }
func (e *valueError) Unwrap() error { return ErrInvalid }

func bad(key, format string, a ...any) error {
	return &valueError{key: key, msg: fmt.Sprintf(format, a...)}
}

var (
	reInstance = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)
	reVolume   = regexp.MustCompile(`^vol-([0-9a-f]{8}|[0-9a-f]{17})$`)
	reRegion   = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	reMapping  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,126}$`)
	reCommand  = regexp.MustCompile(`^[A-Za-z0-9_./=:, -]+$`)
	reUser     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$`)
	reTypeErr  = regexp.MustCompile(`(?s)^toml: line ([0-9]+) \(last key "([^"]*)"\): (.*)$`)
)

// given says which keys with a zero value the file sets explicitly: a zero there is a value
// to check, not "use the default".
type given struct {
	top         func(key string) bool
	targetPorts []bool // target[i].ssh.port set
}

func explicit(md toml.MetaData, data []byte) given {
	g := given{top: func(key string) bool { return md.IsDefined(strings.Split(key, ".")...) }}
	// MetaData names array tables without their index: decode the ports again on their own.
	var shadow struct {
		Target []struct {
			SSH struct {
				Port *int `toml:"port"`
			} `toml:"ssh"`
		} `toml:"target"`
	}
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&shadow); err == nil {
		for _, t := range shadow.Target {
			g.targetPorts = append(g.targetPorts, t.SSH.Port != nil)
		}
	}
	return g
}

func (c *Config) validate(set given) error {
	if c.Vault == "" {
		return bad("vault", "required: the path of the age vault file")
	}
	for key, p := range map[string]string{"vault": c.Vault, "identity": c.Identity, "audit_log": c.AuditLog, "known_hosts": c.KnownHosts, "status_file": c.StatusFile} {
		if err := checkPath(key, p); err != nil {
			return err
		}
	}
	if c.StatusFile == "" {
		c.StatusFile = DefaultStatusFile
	}
	for i, r := range c.Recipients {
		// The vault parses them in full; here only their shape, so a typo names its line.
		if !strings.HasPrefix(r, "age1") || strings.ContainsFunc(r, func(c rune) bool { return c <= ' ' || c > '~' }) {
			return bad(fmt.Sprintf("recipients[%d]", i), "%q is not an age recipient (age1…)", r)
		}
	}
	if c.Region != "" && !reRegion.MatchString(c.Region) {
		return bad("region", "%q is not an AWS region name", c.Region)
	}
	if err := intDefault(set, &c.Concurrency, "concurrency", DefaultConcurrency, 1, 1024); err != nil {
		return err
	}
	if err := intDefault(set, &c.AttemptsPerBoot, "attempts_per_boot", DefaultAttemptsPerBoot, 1, 100); err != nil {
		return err
	}
	if err := durDefault(set, &c.Keepalive, "keepalive", DefaultKeepalive, time.Second, 10*time.Minute); err != nil {
		return err
	}
	if err := durDefault(set, &c.PollInterval, "poll_interval", DefaultPollInterval, 5*time.Second, 24*time.Hour); err != nil {
		return err
	}
	if err := intDefault(set, &c.RescueProbes, "rescue_probes", DefaultRescueProbes, 2, 20); err != nil {
		return err
	}
	if err := durDefault(set, &c.RescueProbeInterval, "rescue_probe_interval", DefaultRescueProbeInterval, time.Second, 10*time.Minute); err != nil {
		return err
	}
	if c.RescueProbeInterval.Duration%time.Second != 0 {
		return bad("rescue_probe_interval", "%v: whole seconds only", c.RescueProbeInterval.Duration)
	}
	if d := time.Duration(c.RescueProbes-1) * c.RescueProbeInterval.Duration; d >= RescueTimeout {
		return bad("rescue_probes", "%d probes %v apart take %v, the whole rescue may take %v: fewer probes or a shorter rescue_probe_interval",
			c.RescueProbes, c.RescueProbeInterval.Duration, d, RescueTimeout)
	}
	if set.top("ssh.port") && c.SSH.Port == 0 {
		return bad("ssh.port", "0: want 1..65535")
	}
	if err := c.SSH.check("ssh", false); err != nil {
		return err
	}
	if len(c.Targets) == 0 {
		return bad("target", "no [[target]]: the keeper would serve nothing")
	}
	names, volumes := map[string]int{}, map[string]int{}
	for i := range c.Targets {
		t := &c.Targets[i]
		key := fmt.Sprintf("target[%d]", i)
		if i < len(set.targetPorts) && set.targetPorts[i] && t.SSH.Port == 0 {
			return bad(key+".ssh.port", "0: want 1..65535")
		}
		if err := c.checkTarget(key, t); err != nil {
			return err
		}
		if j, dup := names[t.Label()]; dup {
			return bad(key+".name", "%q is also target %d's: names must be unique", t.Label(), j+1)
		}
		names[t.Label()] = i
		if t.Volume != "" {
			// One volume is one passphrase and one instance: two targets for it would race.
			if j, dup := volumes[t.Volume]; dup {
				return bad(key+".volume", "%s is also target %d's: a volume is served once", t.Volume, j+1)
			}
			volumes[t.Volume] = i
		}
	}
	return nil
}

func (c *Config) checkTarget(key string, t *Target) error {
	if t.Name != "" && (len(t.Name) > 128 || strings.ContainsFunc(t.Name, unicode.IsControl)) {
		return bad(key+".name", "at most 128 printable characters")
	}
	switch {
	case t.Instance == "" && len(t.InstanceTags) == 0:
		return bad(key, "needs instance or instance_tags")
	case t.Instance != "" && len(t.InstanceTags) > 0:
		return bad(key+".instance_tags", "instance and instance_tags exclude each other")
	case t.Instance != "" && !reInstance.MatchString(t.Instance):
		return bad(key+".instance", "%q: want i- and 8 or 17 hex digits", t.Instance)
	case t.Volume == "" && len(t.VolumeTags) == 0:
		return bad(key, "needs volume or volume_tags")
	case t.Volume != "" && len(t.VolumeTags) > 0:
		return bad(key+".volume_tags", "volume and volume_tags exclude each other")
	case t.Volume != "" && !reVolume.MatchString(t.Volume):
		return bad(key+".volume", "%q: want vol- and 8 or 17 hex digits", t.Volume)
	case t.Volume != "" && len(t.InstanceTags) > 0:
		return bad(key+".volume", "a fixed volume with instance_tags: a volume attaches to one instance; use volume_tags")
	case t.Mapping != "" && !reMapping.MatchString(t.Mapping):
		return bad(key+".mapping", "%q is not a device-mapper name", t.Mapping)
	}
	for _, tags := range []struct {
		key string
		m   map[string]string
	}{{key + ".instance_tags", t.InstanceTags}, {key + ".volume_tags", t.VolumeTags}} {
		for k, v := range tags.m {
			if k == "" || len(k) > 128 || len(v) > 256 || strings.ContainsFunc(k+v, unicode.IsControl) {
				return bad(tags.key, "tag %q: keys 1..128 and values 0..256 printable characters", k)
			}
		}
	}
	if t.Mount != "" {
		if err := checkPath(key+".mount", t.Mount); err != nil {
			return err
		}
	}
	t.SSH = merge(c.SSH, t.SSH)
	if len(t.SSH.KnownHosts) == 0 && len(t.SSH.HostCA) == 0 {
		if c.KnownHosts == "" {
			return bad(key+".ssh", "no known_hosts and no host_ca: the host key could not be pinned")
		}
		t.SSH.KnownHosts = []string{c.KnownHosts}
	}
	if t.SSH.Port == 0 {
		t.SSH.Port = DefaultPort
	}
	return t.SSH.check(key+".ssh", true)
}

// merge applies the [ssh] defaults d under the target's own settings o.
func merge(d, o SSH) SSH {
	pick := func(a, b string) string {
		if b != "" {
			return b
		}
		return a
	}
	r := SSH{
		User: pick(d.User, o.User), Key: pick(d.Key, o.Key), AgentSocket: pick(d.AgentSocket, o.AgentSocket),
		Address: o.Address, Command: pick(d.Command, o.Command),
		Agent: d.Agent, PrivateIP: d.PrivateIP, Port: d.Port, KnownHosts: d.KnownHosts, HostCA: d.HostCA, JumpHost: d.JumpHost,
	}
	if o.Agent != nil {
		r.Agent = o.Agent
	}
	if o.PrivateIP != nil {
		r.PrivateIP = o.PrivateIP
	}
	if o.Port != 0 {
		r.Port = o.Port
	}
	if o.KnownHosts != nil {
		r.KnownHosts = o.KnownHosts
	}
	if o.HostCA != nil {
		r.HostCA = o.HostCA
	}
	if o.JumpHost != nil {
		r.JumpHost = o.JumpHost
	}
	if r.JumpHost != nil {
		// Each target gets its own copy: check fills in the bastion's known_hosts per target.
		j := *r.JumpHost
		r.JumpHost = &j
	}
	return r
}

// check validates an SSH table; final says the defaults are merged in, so what is required
// must be there.
func (s *SSH) check(key string, final bool) error {
	if s.User != "" && !reUser.MatchString(s.User) {
		return bad(key+".user", "%q is not a user name", s.User)
	}
	for k, p := range map[string]string{".key": s.Key, ".agent_socket": s.AgentSocket} {
		if err := checkPath(key+k, p); err != nil {
			return err
		}
	}
	for k, ps := range map[string][]string{".known_hosts": s.KnownHosts, ".host_ca": s.HostCA} {
		for _, p := range ps {
			if p == "" {
				return bad(key+k, "empty path")
			}
			if err := checkPath(key+k, p); err != nil {
				return err
			}
		}
	}
	if s.Port < 0 || s.Port > 65535 {
		return bad(key+".port", "%d: want 1..65535", s.Port)
	}
	if s.Address != "" {
		if key == "ssh" {
			return bad(key+".address", "an address is per target: put it in [target.ssh]")
		}
		if err := checkAddr(key+".address", s.Address); err != nil {
			return err
		}
	}
	if s.Command != "" && !reCommand.MatchString(s.Command) {
		// sshd runs it through the user's shell when no forced command stands in for it:
		// nothing a shell would expand or split on.
		return bad(key+".command", "%q: only letters, digits, spaces and _ . / = : , - are allowed", s.Command)
	}
	if j := s.JumpHost; j != nil {
		jk := key + ".jump_host"
		switch {
		case j.Address == "":
			return bad(jk+".address", "required")
		case !reUser.MatchString(j.User):
			return bad(jk+".user", "%q is not a user name", j.User)
		case j.Key == "" && !j.Agent:
			return bad(jk, "needs key or agent = true")
		}
		if err := checkAddr(jk+".address", j.Address); err != nil {
			return err
		}
		if err := checkPath(jk+".key", j.Key); err != nil {
			return err
		}
		for k, ps := range map[string][]string{".known_hosts": j.KnownHosts, ".host_ca": j.HostCA} {
			for _, p := range ps {
				if p == "" {
					return bad(jk+k, "empty path")
				}
				if err := checkPath(jk+k, p); err != nil {
					return err
				}
			}
		}
	}
	if !final {
		return nil
	}
	switch {
	case s.User == "":
		return bad(key+".user", "required (here or in [ssh])")
	case s.Key == "" && !s.UsesAgent():
		return bad(key, "needs key or agent = true (here or in [ssh])")
	case s.UsesPrivateIP() && s.Address != "":
		return bad(key+".private_ip", "address and private_ip exclude each other")
	case s.JumpHost != nil && len(s.JumpHost.KnownHosts) == 0 && len(s.JumpHost.HostCA) == 0:
		// The bastion's host key is pinned in the same files as the target's by default.
		// An empty list stays nil: Jump's lists are omitempty, an empty one would not
		// survive being written back.
		s.JumpHost.KnownHosts = nilIfEmpty(s.KnownHosts)
		s.JumpHost.HostCA = nilIfEmpty(s.HostCA)
	}
	return nil
}

func nilIfEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

func checkAddr(key, addr string) error {
	host, port := addr, ""
	if h, p, err := net.SplitHostPort(addr); err == nil {
		host, port = h, p
	} else if strings.Contains(strings.Trim(addr, "[]"), ":") && net.ParseIP(strings.Trim(addr, "[]")) == nil {
		return bad(key, "%q: want HOST or HOST:PORT", addr)
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return bad(key, "%q: port: want 1..65535", addr)
		}
	}
	if host == "" || strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '/' || r == '@' }) {
		return bad(key, "%q: want HOST or HOST:PORT", addr)
	}
	return nil
}

func checkPath(key, p string) error {
	switch {
	case p == "":
		return nil
	case !filepath.IsAbs(p):
		return bad(key, "%q: want an absolute path", p)
	case strings.ContainsRune(p, 0) || strings.ContainsFunc(p, unicode.IsControl):
		return bad(key, "control characters in the path")
	case filepath.Clean(p) != p:
		return bad(key, "%q: want the clean path %q", p, filepath.Clean(p))
	}
	return nil
}

func intDefault(set given, v *int, key string, def, lo, hi int) error {
	if *v == 0 && !set.top(key) {
		*v = def
	}
	if *v < lo || *v > hi {
		return bad(key, "%d: want %d..%d", *v, lo, hi)
	}
	return nil
}

func durDefault(set given, v *Duration, key string, def, lo, hi time.Duration) error {
	if v.Duration == 0 && !set.top(key) {
		v.Duration = def
	}
	if v.Duration < lo || v.Duration > hi {
		return bad(key, "%v: want %v..%v", v.Duration, lo, hi)
	}
	return nil
}
