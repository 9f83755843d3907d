package ebs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/logging"
)

// The SDK retries quietly: a persistent 5xx on DetachVolume is minutes of silence with the
// default budget. retries makes each of those retries a progress Event about the object
// the call concerns.

// retries returns a per-call option that reports every retry the SDK makes for action as a
// warning Event based on ev ("retrying DetachVolume: InternalError (attempt 2 of 8)").
func (c *Client) retries(ev Event, action string) func(*ec2.Options) {
	return func(o *ec2.Options) {
		if c.opts.Progress == nil || o.Retryer == nil {
			return
		}
		inner := asRetryerV2(o.Retryer)
		o.Retryer = &noticeRetryer{RetryerV2: inner, notice: func(attempt int, err error) {
			e := ev
			e.Warning = true
			e.Message = fmt.Sprintf("retrying %s: %s (attempt %d of %d)", action, reason(err), attempt+1, inner.MaxAttempts())
			c.progress(e)
		}}
	}
}

// noticeRetryer reports each retry decision of the retryer it wraps.
type noticeRetryer struct {
	aws.RetryerV2
	notice func(attempt int, err error)
}

// RetryDelay is asked only when the SDK is about to retry: the failed attempt and its error.
func (r *noticeRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, derr := r.RetryerV2.RetryDelay(attempt, err)
	if derr == nil {
		r.notice(attempt, err)
	}
	return d, derr
}

type retryerV1 struct{ aws.Retryer }

func (r retryerV1) GetAttemptToken(context.Context) (func(error) error, error) {
	return r.GetInitialToken(), nil
}

func asRetryerV2(r aws.Retryer) aws.RetryerV2 {
	if v2, ok := r.(aws.RetryerV2); ok {
		return v2
	}
	return retryerV1{r}
}

// reason is the short name of what went wrong: the EC2 error code, else the HTTP status,
// else the error text.
func reason(err error) string {
	if code := errorCode(err); code != "" {
		return code
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return fmt.Sprintf("HTTP %d", re.HTTPStatusCode())
	}
	return err.Error()
}

// WithProgress is a config.LoadOptions option for LoadDefaultConfig (or
// config.LoadDefaultConfig): the SDK's log lines become Events instead of lines on stderr.
// The one an operator meets is the IMDS client's "falling back to IMDSv1" warning (the
// metadata service refused the IMDSv2 session token with 403/404/405); it arrives as a
// warning Event with Op "metadata".
//
// The SDK may log from a goroutine of its own (the credentials cache retrieves in one), so
// progress is called with a lock held, one line at a time. A Client from NewFromConfig with
// this configuration takes the same lock for its Options.Progress: the two callbacks never
// run at the same time.
func WithProgress(progress func(Event)) func(*config.LoadOptions) error {
	return config.WithLogger(eventLogger{sink: newSink(progress)})
}

// sink calls a progress callback under a lock, so that the callback never runs twice at
// once: the operations of a Client may run in parallel, and the SDK logs from its own
// goroutines.
type sink struct {
	mu *sync.Mutex
	fn func(Event)
}

func newSink(fn func(Event)) sink { return sink{mu: new(sync.Mutex), fn: fn} }

func (s sink) send(e Event) {
	if s.fn == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fn(e)
}

// eventLogger is a logging.Logger that hands each SDK log line to a progress callback.
type eventLogger struct{ sink sink }

func (l eventLogger) Logf(class logging.Classification, format string, v ...any) {
	if l.sink.fn == nil {
		return
	}
	op := "sdk"
	msg := fmt.Sprintf(format, v...)
	if strings.Contains(msg, "IMDS") {
		op = "metadata"
	}
	l.sink.send(Event{Op: op, Warning: class == logging.Warn, Message: msg})
}

// quietLogger is the logger LoadDefaultConfig installs when the caller sets none: the SDK's
// default writes to stderr in its own format. NewFromConfig replaces it with one that feeds
// Options.Progress.
type quietLogger struct{ logging.Nop }
