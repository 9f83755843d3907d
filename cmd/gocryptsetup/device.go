package main

import (
	"fmt"
	"io/fs"
	"os"

	"github.com/cloudluks/cloudluks/internal/cli"
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

// confirm asks cryptsetup's yes/no question. Like cryptsetup's yesDialog it asks only when
// stdin is a terminal and -q/--batch-mode is absent, prints the question on stdout, and accepts
// exactly "YES". Any other answer returns fail.
func (a *app) confirm(msg string, fail *cliError) error {
	if a.opts.batch || !a.term.IsTerminal() {
		return nil
	}
	if cli.ConfirmContext(a.ctx, a.stdout, a.stdin, msg) != nil {
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
