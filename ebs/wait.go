package ebs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// Wait policies. EC2 reports most state changes within seconds, but a busy region can take
// minutes; the timeouts are generous so that a slow success is not reported as a failure,
// and the polling backs off so that waiting never causes throttling.
const (
	// DefaultPollInitial is the first delay between two DescribeVolumes calls.
	DefaultPollInitial = 1 * time.Second
	// DefaultPollMax caps the delay between two DescribeVolumes calls.
	DefaultPollMax = 15 * time.Second
	// DefaultPollFactor multiplies the delay after each poll.
	DefaultPollFactor = 1.5

	// DefaultAvailableTimeout bounds the wait for a new volume to become available.
	DefaultAvailableTimeout = 5 * time.Minute
	// DefaultNotFoundGrace is how long InvalidVolume.NotFound is tolerated after a create
	// (EC2 is eventually consistent: the volume ID is returned before every endpoint knows it).
	DefaultNotFoundGrace = 60 * time.Second
	// DefaultAttachTimeout bounds the whole attach wait.
	DefaultAttachTimeout = 10 * time.Minute
	// DefaultAttachingTimeout is how long an attachment may stay "attaching" (or invisible)
	// before it is rolled back; the CSI driver uses the same 90 s.
	DefaultAttachingTimeout = 90 * time.Second
	// DefaultDetachTimeout bounds the wait for "detached". A device still in use on the
	// instance keeps the attachment "busy" for as long as it is used.
	DefaultDetachTimeout = 10 * time.Minute
	// DefaultDeleteTimeout bounds the wait for a deleted volume to disappear.
	DefaultDeleteTimeout = 5 * time.Minute
	// DefaultDeviceTimeout bounds the wait for the local block device node after attach.
	DefaultDeviceTimeout = 2 * time.Minute
	// DefaultDevicePoll is the interval between two looks for the device node.
	DefaultDevicePoll = 250 * time.Millisecond
	// DefaultBadDeviceTTL is how long a device name EC2 refused as "already in use" is
	// tried last on that instance (AMI instance-store and other mappings DescribeInstances
	// does not show stay taken; the CSI driver remembers such names for an hour too).
	DefaultBadDeviceTTL = time.Hour
	// DefaultCreateAttempts is how often Create sends CreateVolume when the answer is lost
	// (connection dropped, throttled, 5xx). Each resend uses the same ClientToken.
	DefaultCreateAttempts = 5
	// DefaultServerErrorBudget is how long a wait tolerates server errors (HTTP 5xx other
	// than throttling and the 503 overload answer) after the SDK's own retries, counted from
	// the last poll that got any other answer (or from the start of the wait). A short
	// outage is ridden out; a server still broken after that is reported with ErrServer
	// instead of being waited on for the whole timeout. Throttling and dropped connections
	// are ridden out until the timeout.
	DefaultServerErrorBudget = 2 * time.Minute
)

// WaitOptions override the wait policies; zero fields mean the defaults above.
type WaitOptions struct {
	PollInitial      time.Duration
	PollMax          time.Duration
	PollFactor       float64
	AvailableTimeout time.Duration
	NotFoundGrace    time.Duration
	AttachTimeout    time.Duration
	AttachingTimeout time.Duration
	DetachTimeout    time.Duration
	DeleteTimeout    time.Duration
	DeviceTimeout    time.Duration
	DevicePoll       time.Duration
	BadDeviceTTL     time.Duration
	CreateAttempts   int
	// ServerErrorBudget: see DefaultServerErrorBudget.
	ServerErrorBudget time.Duration
}

func (w WaitOptions) withDefaults() WaitOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&w.PollInitial, DefaultPollInitial)
	def(&w.PollMax, DefaultPollMax)
	if w.PollFactor < 1 {
		w.PollFactor = DefaultPollFactor
	}
	def(&w.AvailableTimeout, DefaultAvailableTimeout)
	def(&w.NotFoundGrace, DefaultNotFoundGrace)
	def(&w.AttachTimeout, DefaultAttachTimeout)
	def(&w.AttachingTimeout, DefaultAttachingTimeout)
	def(&w.DetachTimeout, DefaultDetachTimeout)
	def(&w.DeleteTimeout, DefaultDeleteTimeout)
	def(&w.DeviceTimeout, DefaultDeviceTimeout)
	def(&w.DevicePoll, DefaultDevicePoll)
	def(&w.BadDeviceTTL, DefaultBadDeviceTTL)
	if w.CreateAttempts <= 0 {
		w.CreateAttempts = DefaultCreateAttempts
	}
	def(&w.ServerErrorBudget, DefaultServerErrorBudget)
	return w
}

// backoff yields the delays between polls: PollInitial, ×PollFactor, capped at PollMax.
type backoff struct {
	next, max time.Duration
	factor    float64
}

func (w WaitOptions) backoff() *backoff {
	return &backoff{next: w.PollInitial, max: w.PollMax, factor: w.PollFactor}
}

func (b *backoff) delay() time.Duration {
	d := b.next
	// Compared in floating point: a large factor would overflow time.Duration (a negative
	// delay, so a loop polling without pause until its deadline).
	if next := float64(b.next) * b.factor; next < float64(b.max) {
		b.next = time.Duration(next)
	} else {
		b.next = b.max
	}
	return d
}

// errWaitTimeout is returned by poll when the deadline passes; callers wrap it in their
// own sentinel.
var errWaitTimeout = errors.New("deadline passed")

// poll calls check until it reports done or an error, sleeping with backoff in between, for
// at most timeout. A context error ends the wait at once.
func (c *Client) poll(ctx context.Context, timeout time.Duration, check func(elapsed time.Duration) (done bool, err error)) error {
	start := time.Now()
	deadline := start.Add(timeout)
	bo := c.opts.Wait.backoff()
	for {
		done, err := check(time.Since(start))
		if err != nil || done {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return errWaitTimeout
		}
		d := bo.delay()
		if d > left {
			d = left
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// serverErrors tracks how long one wait has seen nothing but server errors. Time, not a
// count of polls: a poll is anything from one request (AWS_MAX_ATTEMPTS=1) to minutes of SDK
// retries, so a count would end a wait after a few seconds of 5xx or ride out far more than
// intended.
type serverErrors struct {
	since  time.Time // the last poll with another answer, or the start of the wait
	budget time.Duration
}

func (c *Client) serverErrors() *serverErrors {
	return &serverErrors{since: time.Now(), budget: c.opts.Wait.ServerErrorBudget}
}

// note records the outcome of one poll; once server errors have lasted longer than the budget
// it returns the error that ends the wait (the last server error, so the caller sees what EC2
// said).
func (s *serverErrors) note(err error) error {
	if !errors.Is(err, ErrServer) {
		s.since = time.Now()
		return nil
	}
	if d := time.Since(s.since); d >= s.budget {
		return fmt.Errorf("server errors for %v: %w", d.Round(time.Millisecond), err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

var sdkRetryables = retry.IsErrorRetryables(retry.DefaultRetryables)

// transient reports whether err is worth another try later: what the SDK's own retryer
// would retry (throttling, 5xx, dropped connections), after it has given up.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return sdkRetryables.IsErrorRetryable(err).Bool()
}
