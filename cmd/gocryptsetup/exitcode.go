package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"
	"syscall"

	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/luks"
)

// Exit codes of cryptsetup(8) ("RETURN CODES").
const (
	exitOK         = cli.ExitOK
	exitParams     = cli.ExitUsage      // wrong parameters, not LUKS, operation aborted
	exitPermission = cli.ExitPermission // no permission or bad passphrase
	exitNoMemory   = cli.ExitNoMemory   // out of memory (an argon2 cost beyond the memory available, checked before allocating)
	exitDevice     = cli.ExitNoDevice   // wrong device or file specified
	exitBusy       = cli.ExitBusy       // device already exists or device is busy
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
	var kce *luks.KeyslotCipherError
	if errors.As(err, &kce) {
		return exitParams, []string{fmt.Sprintf("Cannot use %s-%s cipher for keyslot encryption.", kce.Cipher, kce.Mode)}
	}
	if errors.Is(err, luks.ErrKeyslotCipherIncompatible) {
		// crypt_keyslot_set_encryption's -EINVAL, which nothing reports.
		return exitParams, nil
	}
	var re *luks.RequirementError
	if errors.As(err, &re) {
		// -ETXTBSY (unknown requirement) and -EINVAL both end as exit code 1.
		return exitParams, re.Messages()
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
	case errors.Is(err, luks.ErrKeyslotOpenFailed):
		return exitParams, []string{"Keyslot open failed."}
	case errors.Is(err, luks.ErrOutOfMemory):
		return exitNoMemory, []string{"Not enough available memory to open a keyslot."}
	case errors.Is(err, luks.ErrKeyslotInactive):
		return exitParams, []string{"No usable keyslot is available."}
	case errors.Is(err, luks.ErrNoFreeKeyslot):
		return exitParams, []string{"All key slots full."}
	case errors.Is(err, errNoDeviceMapper):
		return exitParams, []string{"Cannot initialize device-mapper. Is dm_mod kernel module loaded?"}
	case errors.Is(err, context.Canceled):
		return exitParams, []string{"Operation interrupted."}
	case errors.Is(err, syscall.EBUSY), errors.Is(err, syscall.EEXIST):
		return exitBusy, []string{sentence(dev, err.Error())}
	case errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		return exitDevice, []string{sentence(dev, err.Error())}
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return exitPermission, []string{sentence(dev, err.Error())}
	}
	// Unsupported cipher or hash, corrupt key slot, work limit, invalid parameter, I/O errors:
	// cryptsetup reports these as wrong parameters with its own text; ours names the object.
	return exitParams, []string{sentence(dev, err.Error())}
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
// A text that starts with the device path (a deviceError: "img: cipher …") keeps the path
// as the user typed it: "Img: cipher …" would name another file.
func sentence(dev, s string) string {
	if s == "" {
		return s
	}
	if dev == "" || !strings.HasPrefix(s, dev) {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

var (
	slotInError = regexp.MustCompile(`keyslot (\d+):`)
	sizeInError = regexp.MustCompile(`requires at least (\d+) bytes`)
)

// loadError words a header that fails to load the way cryptsetup's LUKS_read_phdr does: the
// specific complaint, then "Device X is not a valid LUKS device.". The details (slot number,
// required size) come from the luks error text, which names them.
func loadError(path string, f io.ReaderAt, err error) error {
	var raw [luks.HeaderSize]byte
	n, _ := f.ReadAt(raw[:], 0)
	notValid := fmt.Sprintf("Device %s is not a valid LUKS device.", path)
	var first string
	switch {
	case errors.Is(err, luks.ErrUnsupportedVersion) && n >= 8:
		// Version 2 is LUKS2, which cryptsetup parses (and here rejects) as such, silently.
		if v := binary.BigEndian.Uint16(raw[6:8]); v != 2 {
			first = fmt.Sprintf("Unsupported LUKS version %d.", v)
		}
	case errors.Is(err, luks.ErrUnsupportedHash) && n >= 104:
		first = fmt.Sprintf("Requested LUKS hash %s is not supported.", cString(raw[72:104]))
	case errors.Is(err, luks.ErrCorruptKeyslot):
		if m := slotInError.FindStringSubmatch(err.Error()); m != nil {
			first = fmt.Sprintf("LUKS keyslot %s is invalid.", m[1])
		}
	case errors.Is(err, luks.ErrDeviceTooSmall):
		first = fmt.Sprintf("Device %s is too small.", path)
		if m := sizeInError.FindStringSubmatch(err.Error()); m != nil {
			first = fmt.Sprintf("Device %s is too small. (LUKS1 requires at least %s bytes.)", path, m[1])
		}
	case errors.Is(err, luks.ErrNotLUKS), errors.Is(err, luks.ErrCorruptHeader), errors.Is(err, luks.ErrUnsupportedVersion):
	default:
		return onDevice(path, err)
	}
	msg := notValid
	if first != "" {
		msg = first + "\n" + notValid
	}
	return onDevice(path, &loadFailure{cliError: cliError{code: exitParams, msg: msg}, detail: first, err: err})
}

// loadFailure keeps the luks sentinel matchable under the cryptsetup wording. detail is the
// line libcryptsetup logs whatever the verb; "Device X is not a valid LUKS device." is added
// by the verbs that report it (luksDump, open, key-slot verbs), not by luksUUID,
// luksHeaderBackup or isLuks.
type loadFailure struct {
	cliError
	detail string
	err    error
}

func (e *loadFailure) Unwrap() []error { return []error{&e.cliError, e.err} }

// detailOnly reduces a header-load failure to libcryptsetup's own line (possibly none); other
// errors pass through. With keepNotLUKS, a device without a LUKS signature still gets "Device X
// is not a valid LUKS device." (luksHeaderBackup prints it; luksUUID does not).
func detailOnly(err error, keepNotLUKS bool) error {
	var lf *loadFailure
	if !errors.As(err, &lf) {
		return err
	}
	if keepNotLUKS && errors.Is(lf.err, luks.ErrNotLUKS) {
		return &lf.cliError
	}
	return &cliError{code: exitParams, msg: lf.detail}
}

// cString is a NUL-terminated header string field.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
