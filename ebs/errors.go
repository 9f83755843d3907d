package ebs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// Sentinel errors. Every error the package returns for an EC2 object is an *Error wrapping one
// of these (or the SDK's error), so callers test with errors.Is and read the object with
// errors.As.
var (
	// ErrNotFound: the volume or instance does not exist (InvalidVolume.NotFound,
	// InvalidInstanceID.NotFound, …) or no volume matched a search.
	ErrNotFound = errors.New("not found")
	// ErrInUse: the volume is attached (delete without detach, attach to a second instance),
	// or a device name is taken.
	ErrInUse = errors.New("in use")
	// ErrAttachTimeout: the attachment did not reach "attached" in time; it was rolled back.
	ErrAttachTimeout = errors.New("attachment timed out")
	// ErrTimeout: another wait (available, detached, deleted, device node) ran out of time.
	ErrTimeout = errors.New("timed out")
	// ErrInvalidParameter: a request was refused locally before reaching EC2.
	ErrInvalidParameter = errors.New("invalid parameter")
	// ErrNoFreeDevice: every candidate device name is taken.
	ErrNoFreeDevice = errors.New("no free device name")
	// ErrVolumeFailed: the volume went to "error" or "deleted" while we waited for it.
	ErrVolumeFailed = errors.New("volume failed")
	// ErrNameConflict: the creation name was used before with different parameters
	// (IdempotentParameterMismatch).
	ErrNameConflict = errors.New("name already used with different parameters")
	// ErrAmbiguous: a search that should find one volume found several.
	ErrAmbiguous = errors.New("more than one volume matches")
	// ErrDeviceNotFound: no local block device carries the volume.
	ErrDeviceNotFound = errors.New("local block device not found")
	// ErrStaleDevice: a device path names the volume but leads to another disk (a stale
	// symlink, or an NVMe controller reporting another name).
	ErrStaleDevice = errors.New("device path belongs to another volume")
	// ErrUnsupported: the operation needs a Linux kernel interface.
	ErrUnsupported = errors.New("not supported on this platform")
	// ErrServer: EC2 answered with a server error (HTTP 5xx other than throttling and the
	// 503 overload answer, which are waited out) after the SDK's retries, or a wait saw
	// nothing but server errors for WaitOptions.ServerErrorBudget.
	// The SDK's error stays in the chain (errors.As to smithy.APIError for the code and
	// *awshttp.ResponseError for the request ID).
	ErrServer = errors.New("EC2 server error")
)

// Error describes a failed operation on an EBS object. Fields that do not apply are empty.
type Error struct {
	Op         string // "create", "wait-available", "attach", "detach", "delete", "describe", "resolve", …
	VolumeID   string
	InstanceID string
	Device     string
	State      string // last state seen (volume or attachment)
	Err        error
}

// Error renders "ebs: OP VOLUME instance I device D (state S): cause", leaving out the
// parts that are empty.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("ebs: ")
	b.WriteString(e.Op)
	if e.VolumeID != "" {
		b.WriteString(" " + e.VolumeID)
	}
	if e.InstanceID != "" {
		b.WriteString(" instance " + e.InstanceID)
	}
	if e.Device != "" {
		b.WriteString(" device " + e.Device)
	}
	if e.State != "" {
		b.WriteString(" (state " + e.State + ")")
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause: a sentinel of this package and/or the SDK's error.
func (e *Error) Unwrap() error { return e.Err }

// errorCode returns the EC2 error code inside err ("" when err is not an API error).
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

var sdkThrottles = retry.IsErrorThrottles(retry.DefaultThrottles)

// isSlowDown reports an answer that says "slower": throttling, and EC2's overload answer,
// HTTP 503 (Unavailable, ServiceUnavailable, or a body that is not EC2's at all, from a load
// balancer in front of it). Such answers are waited out like RequestLimitExceeded, never
// counted as EC2 failing.
func isSlowDown(err error) bool {
	if err == nil {
		return false
	}
	if sdkThrottles.IsErrorThrottle(err).Bool() {
		return true
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() == 503 {
		return true
	}
	switch errorCode(err) {
	case "ServiceUnavailable", "Unavailable":
		return true
	}
	return false
}

// isServerError reports an answer that says EC2 itself failed: a 5xx status or one of the
// codes EC2 uses for it, unless it only says "slower" (isSlowDown).
func isServerError(err error) bool {
	if err == nil || isSlowDown(err) {
		return false
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return true
	}
	switch errorCode(err) {
	case "InternalError", "InternalFailure":
		return true
	}
	return false
}

func isNotFoundCode(code string) bool { return strings.HasSuffix(code, ".NotFound") }

// classify attaches the package sentinel an EC2 error code stands for, keeping the SDK error
// in the chain for callers that want the request ID.
func classify(err error) error {
	code := errorCode(err)
	switch {
	case isServerError(err):
		return fmt.Errorf("%w: %w", ErrServer, err)
	case code == "":
		return err
	case isNotFoundCode(code):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case strings.HasSuffix(code, ".Malformed"), code == "InvalidParameterValue", code == "InvalidParameterCombination", code == "MissingParameter":
		return fmt.Errorf("%w: %w", ErrInvalidParameter, err)
	case code == "VolumeInUse":
		return fmt.Errorf("%w: %w", ErrInUse, err)
	case code == "IdempotentParameterMismatch":
		return fmt.Errorf("%w: %w", ErrNameConflict, err)
	}
	return err
}
