package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"

	"github.com/cloudluks/cloudluks/luks"
)

// openDevice opens a device or image the way cryptsetup accepts one: a regular file or a block
// device. A missing or unreadable path is "does not exist or access denied" (exit 4); a
// directory, /dev/null or any other special file is "not compatible" (exit 4).
func openDevice(path string, write bool) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, onDevice(path, err)
	}
	m := fi.Mode()
	isBlock := m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0
	if !m.IsRegular() && !isBlock {
		return nil, onDevice(path, errNotCompatible)
	}
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, onDevice(path, err)
	}
	return f, nil
}

// headerPath is the device that holds the LUKS header: --header when given, else the device.
func (a *app) headerPath(device string) string {
	if a.opts.header != "" {
		return a.opts.header
	}
	return device
}

// loadHeader opens the header device of device and parses and validates its header.
func (a *app) loadHeader(device string, write bool) (*os.File, *luks.Header, error) {
	p := a.headerPath(device)
	f, err := openDevice(p, write)
	if err != nil {
		return nil, nil, err
	}
	h, err := luks.ReadHeader(f)
	if err != nil {
		err = loadError(p, f, err)
		f.Close()
		return nil, nil, err
	}
	return f, h, nil
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

// confirm asks cryptsetup's yes/no question. Like cryptsetup's yesDialog it asks only when
// stdin is a terminal and -q/--batch-mode is absent, prints the question on stdout, and accepts
// exactly "YES". Any other answer returns fail.
func (a *app) confirm(msg string, fail *cliError) error {
	if a.opts.batch || !a.term.StdinIsTerminal() {
		return nil
	}
	fmt.Fprintf(a.stdout, "\nWARNING!\n========\n%s\n\nAre you sure? (Type 'yes' in capital letters): ", msg)
	line, err := a.stdin.ReadString('\n')
	if err != nil || line != "YES\n" {
		return fail
	}
	return nil
}

// logVerbose prints a -v line on stdout (cryptsetup's log_verbose).
func (a *app) logVerbose(format string, args ...any) {
	if a.opts.verbose {
		fmt.Fprintf(a.stdout, format+"\n", args...)
	}
}

// logStd prints an informational line on stdout (cryptsetup's log_std).
func (a *app) logStd(format string, args ...any) {
	fmt.Fprintf(a.stdout, format+"\n", args...)
}

// syncClose flushes a device written to and closes it; the first error wins.
func syncClose(f *os.File, err error) error {
	if serr := f.Sync(); err == nil && serr != nil {
		err = onDevice(f.Name(), serr)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = onDevice(f.Name(), cerr)
	}
	return err
}
