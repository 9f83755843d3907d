package wire

import (
	"errors"
	"fmt"
	"strings"
)

// Hello opens the conversation in both directions.
type Hello struct {
	Protocol int    `json:"protocol"` // Version
	Program  string `json:"program"`  // "keeper 0.3", "encrypted-volume 0.3": for logs only
}

// State is the instance's answer to a StateRequest: public facts only.
type State struct {
	BootID   string `json:"boot_id"`   // /proc/sys/kernel/random/boot_id
	VolumeID string `json:"volume_id"` // the volume this serve command is configured for ("" with --device)
	Device   string `json:"device"`    // the local block device it resolved to ("" if not found)
	// Serial is the NVMe controller serial of Device as the instance reads it ("vol0123…"),
	// "" when the device is not NVMe or the serial cannot be read.
	Serial      string `json:"serial"`
	LUKSVersion int    `json:"luks_version"` // 0: no LUKS header found on Device
	LUKSUUID    string `json:"luks_uuid"`
	Mapping     string `json:"mapping"`     // the configured mapping name
	Mapped      bool   `json:"mapped"`      // /dev/mapper/<Mapping> exists
	MountPoint  string `json:"mount_point"` // the configured mount point
	Mounted     bool   `json:"mounted"`     // the mapping is mounted at MountPoint
	// BootUnlockDisabled reports that the boot configuration will not prompt for this
	// volume (no crypttab line that unlocks it at boot, noauto in fstab).
	BootUnlockDisabled bool `json:"boot_unlock_disabled"`
	// Problem, when not "", says why a field could not be filled ("device not found", …).
	Problem string `json:"problem,omitempty"`
}

// UnlockRequest precedes the Key frame. BootID and LUKSUUID are what the keeper saw in
// State and Header; the instance refuses if either changed since.
type UnlockRequest struct {
	BootID   string `json:"boot_id"`
	LUKSUUID string `json:"luks_uuid"`
	KeySize  int    `json:"key_size"` // the length of the Key frame that follows
}

func (r *UnlockRequest) validate() error {
	switch {
	case r.BootID == "" || len(r.BootID) > 64:
		return fmt.Errorf("%w: Unlock: boot_id must be 1..64 bytes", ErrMalformed)
	case r.LUKSUUID == "" || len(r.LUKSUUID) > 64:
		return fmt.Errorf("%w: Unlock: luks_uuid must be 1..64 bytes", ErrMalformed)
	case r.KeySize <= 0 || r.KeySize > MaxKeySize:
		return fmt.Errorf("%w: Unlock: key_size %d not in 1..%d", ErrKeySize, r.KeySize, MaxKeySize)
	}
	return nil
}

// Status is a Result's outcome.
type Status string

// The outcomes of an Unlock.
const (
	StatusUnlocked        Status = "unlocked"         // this request mapped and mounted the volume
	StatusAlreadyUnlocked Status = "already-unlocked" // it was mapped before (another keeper won)
	StatusRefused         Status = "refused"          // nothing was mapped; Reason says why
)

// Result answers an Unlock.
type Result struct {
	Status  Status `json:"status"`
	Reason  string `json:"reason,omitempty"`  // why refused, or what went wrong after mapping
	Mounted string `json:"mounted,omitempty"` // the mount point, when the volume is mounted
	HooksOK bool   `json:"hooks_ok"`          // unlocked: services and hooks all succeeded (or none were configured)
}

func (r *Result) validate() error {
	switch r.Status {
	case StatusUnlocked, StatusAlreadyUnlocked, StatusRefused:
		return nil
	}
	return fmt.Errorf("%w: Result: unknown status %q", ErrMalformed, r.Status)
}

// Code classifies an Error frame.
type Code string

// The error codes.
const (
	CodeBadRequest Code = "bad-request" // a malformed or out-of-order frame
	CodeVersion    Code = "version"     // unsupported protocol version
	CodeRefused    Code = "refused"     // the request was understood and declined
	CodeInternal   Code = "internal"    // the instance failed to answer (I/O, device, …)
)

// Error is an Error frame, and the error value a Client returns for one (wrapped so that
// errors.Is(err, ErrRemote) holds; errors.As gives the *Error). A Handler may return one
// to choose the code; any other handler error is sent as CodeInternal.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Is makes errors.Is(err, ErrRemote) true for an *Error, and errors.Is(err, ErrVersion) true
// for a CodeVersion one.
func (e *Error) Is(target error) bool {
	return target == ErrRemote || (target == ErrVersion && e.Code == CodeVersion)
}

func (e *Error) validate() error {
	switch e.Code {
	case CodeBadRequest, CodeVersion, CodeRefused, CodeInternal:
		return nil
	}
	return fmt.Errorf("%w: Error: unknown code %q", ErrMalformed, e.Code)
}

// errorFrame builds the Error frame for err; the message is cut to fit the frame.
func errorFrame(err error) *Error {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: CodeInternal, Message: err.Error()}
	}
	out := *e
	if len(out.Message) > 2048 {
		out.Message = strings.ToValidUTF8(out.Message[:2048], "") + "…"
	}
	return &out
}
