package ebs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// EC2API is the part of the EC2 client the package calls. *ec2.Client satisfies it; tests and
// callers with their own middleware can pass anything else that does.
type EC2API interface {
	CreateVolume(context.Context, *ec2.CreateVolumeInput, ...func(*ec2.Options)) (*ec2.CreateVolumeOutput, error)
	DescribeVolumes(context.Context, *ec2.DescribeVolumesInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
	AttachVolume(context.Context, *ec2.AttachVolumeInput, ...func(*ec2.Options)) (*ec2.AttachVolumeOutput, error)
	DetachVolume(context.Context, *ec2.DetachVolumeInput, ...func(*ec2.Options)) (*ec2.DetachVolumeOutput, error)
	DeleteVolume(context.Context, *ec2.DeleteVolumeInput, ...func(*ec2.Options)) (*ec2.DeleteVolumeOutput, error)
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// MetadataAPI is the part of the IMDS client the package calls; *imds.Client satisfies it.
type MetadataAPI interface {
	GetInstanceIdentityDocument(context.Context, *imds.GetInstanceIdentityDocumentInput, ...func(*imds.Options)) (*imds.GetInstanceIdentityDocumentOutput, error)
}

// SDK retry defaults used by NewFromConfig. EC2 throttles per account and region with
// RequestLimitExceeded; a command-line tool makes few calls, so it can afford to retry more
// often than the SDK's default of 3 attempts before giving up.
const (
	DefaultMaxAttempts = 8
	DefaultMaxBackoff  = 20 * time.Second
)

// RetryOptions configure the SDK retryer NewFromConfig installs.
type RetryOptions struct {
	// MaxAttempts: 0 = DefaultMaxAttempts. AWS_MAX_ATTEMPTS (or max_attempts in the
	// profile, aws.Config.RetryMaxAttempts) overrides it, as in any SDK program.
	MaxAttempts int
	MaxBackoff  time.Duration        // 0 = DefaultMaxBackoff
	Backoff     retry.BackoffDelayer // nil = the SDK's exponential jitter (1 s base for throttles)
}

// Event is a progress report: a state change seen while waiting, a retry, a skipped device
// name, a roll-back. Warning marks events an operator should read (force detach, a busy
// device, a throttled call).
type Event struct {
	Op         string
	VolumeID   string
	InstanceID string
	Device     string
	State      string
	Message    string
	Warning    bool
}

// Options configure a Client. The zero value is usable: defaults everywhere, no progress
// reports, no instance metadata.
type Options struct {
	// Progress receives state changes and warnings; nil discards them. It is called from the
	// goroutine running an operation or from one of the SDK's (a log line of the
	// credentials cache), but never twice at once: the Client holds a lock around each call
	// (shared with the SDK log lines, see NewFromConfig). So it must not wait for another
	// operation of the same Client to report something.
	Progress func(Event)
	// Wait overrides the wait policies (zero fields keep the defaults).
	Wait WaitOptions
	// Resolve configures local device resolution (sysfs and /dev roots, NVMe identify).
	Resolve ResolveOptions
	// Metadata supplies the instance context (instance ID, AZ) used as defaults. nil = no
	// defaults: the caller must name the AZ and instance.
	Metadata MetadataAPI
	// Retry configures the SDK retryer (NewFromConfig only).
	Retry RetryOptions
}

// Client runs EBS operations. It remembers the device names its own attachments have
// reserved until EC2 reports them, so concurrent Attach calls never pick the same name. Safe
// for concurrent use.
type Client struct {
	api  EC2API
	opts Options
	sink sink // opts.Progress under a lock

	mu       sync.Mutex
	inflight map[string]map[string]string    // instance ID → device name → volume ID
	bad      map[string]map[string]time.Time // instance ID → device name → refused at
	instance *Instance                       // cached metadata
}

// New returns a Client over api.
func New(api EC2API, opts Options) *Client {
	return newClient(api, opts, newSink(opts.Progress))
}

// newClient is New with the lock the progress callback is called under.
func newClient(api EC2API, opts Options, s sink) *Client {
	opts.Wait = opts.Wait.withDefaults()
	opts.Resolve = opts.Resolve.withDefaults(opts.Wait)
	return &Client{api: api, opts: opts, sink: s, inflight: map[string]map[string]string{}, bad: map[string]map[string]time.Time{}}
}

// NewRetryer returns the SDK retryer NewFromConfig installs: standard mode with
// ro.MaxAttempts attempts and no client-side retry quota (a burst of throttling answers
// must not make later calls fail without even being sent).
func NewRetryer(ro RetryOptions) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = ro.MaxAttempts
		if o.MaxAttempts <= 0 {
			o.MaxAttempts = DefaultMaxAttempts
		}
		o.MaxBackoff = ro.MaxBackoff
		if o.MaxBackoff <= 0 {
			o.MaxBackoff = DefaultMaxBackoff
		}
		if ro.Backoff != nil {
			o.Backoff = ro.Backoff
		}
		o.RateLimiter = ratelimit.None
	})
}

// NewFromConfig returns a Client using ec2.NewFromConfig(cfg) with the retryer from
// opts.Retry, and IMDS (imds.NewFromConfig) for the instance context unless opts.Metadata is
// set. Endpoints, credentials and region come from cfg, so AWS_ENDPOINT_URL_EC2,
// AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_MAX_ATTEMPTS, profiles and the rest work as in any
// SDK program. When cfg comes from LoadDefaultConfig without a logger of the caller's, the
// SDK's log lines (the IMDSv1 fallback warning) go to opts.Progress as Events. Both kinds
// of Event are delivered under one lock, also when cfg's logger is WithProgress's.
func NewFromConfig(cfg aws.Config, opts Options, ec2Opts ...func(*ec2.Options)) *Client {
	s := newSink(opts.Progress)
	switch l := cfg.Logger.(type) {
	case quietLogger, nil:
		cfg.Logger = eventLogger{sink: s}
	case eventLogger:
		s.mu = l.sink.mu
	}
	retryer := NewRetryer(opts.Retry)
	fns := append([]func(*ec2.Options){func(o *ec2.Options) { o.Retryer = retryer }}, ec2Opts...)
	if opts.Metadata == nil {
		opts.Metadata = imds.NewFromConfig(cfg)
	}
	return newClient(ec2.NewFromConfig(cfg, fns...), opts, s)
}

// LoadDefaultConfig loads the SDK configuration the standard way and, when no region is
// configured, takes it from instance metadata (a program on an instance needs no setup).
// The SDK's own logger, which writes to stderr, is replaced: pass WithProgress to receive
// its lines as Events here, or leave it to NewFromConfig to route them to Options.Progress.
func LoadDefaultConfig(ctx context.Context, optFns ...func(*config.LoadOptions) error) (aws.Config, error) {
	optFns = append([]func(*config.LoadOptions) error{config.WithLogger(quietLogger{})}, optFns...)
	cfg, err := config.LoadDefaultConfig(ctx, optFns...)
	if err != nil {
		return cfg, fmt.Errorf("ebs: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		inst, err := InstanceFromMetadata(ctx, imds.NewFromConfig(cfg))
		if err != nil {
			return cfg, fmt.Errorf("ebs: no AWS region configured (set AWS_REGION) and %w", err)
		}
		cfg.Region = inst.Region
	}
	return cfg, nil
}

// Instance is the context of the instance the program runs on.
type Instance struct {
	ID               string `json:"instanceId"`
	AvailabilityZone string `json:"availabilityZone"`
	Region           string `json:"region"`
}

// InstanceFromMetadata reads the instance identity document through IMDS (the SDK client
// speaks IMDSv2: a session token first, then the GET).
func InstanceFromMetadata(ctx context.Context, api MetadataAPI) (Instance, error) {
	if api == nil {
		return Instance{}, errors.New("instance metadata: not configured")
	}
	out, err := api.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		return Instance{}, fmt.Errorf("instance metadata: %w", err)
	}
	inst := Instance{ID: out.InstanceID, AvailabilityZone: out.AvailabilityZone, Region: out.Region}
	if inst.ID == "" || inst.AvailabilityZone == "" {
		return Instance{}, errors.New("instance metadata: identity document lacks instance ID or availability zone")
	}
	return inst, nil
}

// Instance returns the instance context from the configured metadata service (cached after
// the first success).
func (c *Client) Instance(ctx context.Context) (Instance, error) {
	c.mu.Lock()
	cached := c.instance
	c.mu.Unlock()
	if cached != nil {
		return *cached, nil
	}
	inst, err := InstanceFromMetadata(ctx, c.opts.Metadata)
	if err != nil {
		return Instance{}, err
	}
	c.mu.Lock()
	c.instance = &inst
	c.mu.Unlock()
	return inst, nil
}

func (c *Client) progress(e Event) { c.sink.send(e) }

// API returns the EC2 client the Client calls.
func (c *Client) API() EC2API { return c.api }
