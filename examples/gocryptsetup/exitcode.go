package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/cloudluks/cloudluks/luks"
)

// Exit codes of cryptsetup(8) ("RETURN CODES").
const (
	exitOK         = 0
	exitParams     = 1 // wrong parameters, not LUKS, operation aborted
	exitPermission = 2 // no permission or bad passphrase
	exitNoMemory   = 3 // out of memory (never produced: the Go runtime aborts instead)
	exitDevice     = 4 // wrong device or file specified
	exitBusy       = 5 // device already exists or device is busy
)

// cliError is a failure whose exit code and message the command chose itself (cryptsetup
// prints several messages that depend on the verb, such as "Keyslot 5 is not active.").
// An empty msg fails silently, as isLuks and luksUUID do on a non-LUKS device.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string { return e.msg }

// deviceError ties an error to the device path it concerns so the message can name it the
// way the user typed it.
type deviceError struct {
	path string
	err  error
}

func (e *deviceError) Error() string { return e.path + ": " + e.err.Error() }
func (e *deviceError) Unwrap() error { return e.err }

func onDevice(path string, err error) error {
	if err == nil {
		return nil
	}
	var de *deviceError
	if errors.As(err, &de) {
		return err
	}
	return &deviceError{path: path, err: err}
}

var (
	// errNotCompatible: the path exists but is neither a regular file nor a block device
	// (a directory, /dev/null, a socket).
	errNotCompatible = errors.New("device is not compatible")
	// errNoDeviceMapper: the kernel offers no device-mapper, so no mapping can be created.
	errNoDeviceMapper = errors.New("device-mapper is not available")
)

// exitStatus maps an error to cryptsetup's exit code and the stderr lines cryptsetup prints
// for it. This is the only place where errors become exit codes.
func exitStatus(err error) (int, []string) {
	if err == nil {
		return exitOK, nil
	}
	var ce *cliError
	if errors.As(err, &ce) {
		return ce.code, splitMsg(ce.msg)
	}
	dev := ""
	var de *deviceError
	if errors.As(err, &de) {
		dev = de.path
	}
	switch {
	case errors.Is(err, luks.ErrWrongPassphrase):
		return exitPermission, []string{"No key available with this passphrase."}
	case errors.Is(err, errNotCompatible):
		return exitDevice, []string{fmt.Sprintf("Device %s is not compatible.", dev)}
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return exitDevice, []string{fmt.Sprintf("Device %s does not exist or access denied.", dev)}
	case errors.Is(err, luks.ErrDeviceTooSmall):
		return exitParams, []string{fmt.Sprintf("Device %s is too small.", dev)}
	case errors.Is(err, luks.ErrNotLUKS), errors.Is(err, luks.ErrUnsupportedVersion),
		errors.Is(err, luks.ErrCorruptHeader):
		return exitParams, []string{fmt.Sprintf("Device %s is not a valid LUKS device.", dev)}
	case errors.Is(err, luks.ErrKeyslotInactive):
		return exitParams, []string{"No usable keyslot is available."}
	case errors.Is(err, luks.ErrNoFreeKeyslot):
		return exitParams, []string{"All key slots full."}
	case errors.Is(err, errNoDeviceMapper):
		return exitParams, []string{"Cannot initialize device-mapper. Is dm_mod kernel module loaded?"}
	case errors.Is(err, context.Canceled):
		return exitParams, []string{"Operation interrupted."}
	case errors.Is(err, syscall.EBUSY), errors.Is(err, syscall.EEXIST):
		return exitBusy, []string{sentence(err.Error())}
	case errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		return exitDevice, []string{sentence(err.Error())}
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return exitPermission, []string{sentence(err.Error())}
	}
	// Unsupported cipher or hash, corrupt key slot, work limit, invalid parameter, I/O errors:
	// cryptsetup reports these as wrong parameters with its own text; ours names the object.
	return exitParams, []string{sentence(err.Error())}
}

// statusLine is what -v prints on stdout at the end, like cryptsetup's show_status.
func statusLine(code int) string {
	if code == exitOK {
		return "Command successful."
	}
	desc := "unknown error"
	switch code {
	case exitParams:
		desc = "wrong or missing parameters"
	case exitPermission:
		desc = "no permission or bad passphrase"
	case exitNoMemory:
		desc = "out of memory"
	case exitDevice:
		desc = "wrong device or file specified"
	case exitBusy:
		desc = "device already exists or device is busy"
	}
	return fmt.Sprintf("Command failed with code %d (%s).", -code, desc)
}

func splitMsg(msg string) []string {
	if msg == "" {
		return nil
	}
	return strings.Split(msg, "\n")
}

// sentence turns a Go error text into a cryptsetup-style message: capitalised, full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
