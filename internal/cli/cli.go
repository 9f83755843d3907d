// Package cli holds what every cloudluks program shares at its command line: one exit-code
// table, the --version line, the behaviour with no arguments, terminal prompts, passphrase
// and key-file input, and the verb table with per-verb help. Wording and semantics are
// cryptsetup 2.6.1's, so a cryptsetup user meets nothing new.
//
// # Exit codes
//
// Exit codes are cryptsetup(8)'s RETURN CODES, extended by one, and mean the same in every
// program, so a script can treat gocryptsetup, encrypted-volume, ec2volume and noautomount
// alike:
//
//	0  ExitOK          success
//	1  ExitUsage       wrong parameters / usage error, or a failure with no more specific code
//	2  ExitPermission  no permission or wrong passphrase
//	3  ExitNoMemory    out of memory
//	4  ExitNoDevice    wrong device specified: no such device, volume, instance or file
//	5  ExitBusy        device already exists or is busy: mapping exists, volume in use, name taken
//	6  ExitNeedsUnlock the volume is attached but not mapped/mounted (encrypted-volume status)
//
// # Version and no arguments
//
// Version builds "PROGRAM VERSION[ rev REV[-dirty]] (EXTRA)" from the build information the
// Go linker embeds: the module version for `go install ...@v0.2.0`; for a build from a
// checkout, the pseudo-version Go derives from the commit (v0.0.0-DATE-REV[+dirty]), or
// "(devel)" and the VCS revision when the build has no version (go run, -buildvcs=false
// gives "(devel)" alone). NoArgs prints the usage on stderr and returns ExitUsage: a bare
// invocation never acts on the live system.
//
// # Prompts
//
// A Terminal is standard input when it is a terminal; TTY is the real one (with DevTTY the
// prompt and the answer go through /dev/tty, as cryptsetup's, so captured output never holds
// a prompt). ReadPassphrase asks without echo, with verify a second time ("Verify
// passphrase: ", ErrPassphraseMismatch "Passphrases do not match."). Confirm asks
//
//	WARNING!
//	========
//	MSG
//
//	Are you sure? (Type 'yes' in capital letters):
//
// and accepts only the line "YES"; the caller decides whether to ask (cryptsetup asks only
// at a terminal and without -q/--batch-mode).
//
// # Passphrase and key-file input
//
// KeyInput.Read takes a KeySource (--key-file/-d, --keyfile-offset, --keyfile-size/-l):
//
//	-d FILE      the file from the offset, at most -l bytes, newlines included (8 MiB at most)
//	-d -         all of stdin, the same way
//	(none)       at a terminal: a prompt without echo (512 characters at most, no offset);
//	             piped: the first line of stdin, without its newline
//
// Secrets are []byte; every buffer a reader grows is zeroed (AppendSecret), and the caller
// zeroes the result. Errors are this package's Error constants or the luks package's
// key-file errors, for errors.Is; the texts are cryptsetup's messages.
//
// # Verbs
//
// Verbs[R] is a program's verb table; R is the program's own run-function type. Each Verb
// has a synopsis, a one-line Summary and an Example. Lookup finds a verb by name or alias;
// Verb.WriteHelp is the text of "PROGRAM help VERB" and "PROGRAM VERB --help"
//
//	Usage: gocryptsetup luksAddKey <device> [<new key file>]
//
//	add key to LUKS device
//
//	Example:
//	  gocryptsetup luksAddKey disk.img
//
// and Verbs.Help answers "PROGRAM help [VERB]" with the right exit code. IsHelpFlag is for
// programs whose -h means help (gocryptsetup's -h is --hash, as cryptsetup's).
package cli

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// The exit-code table; see the package documentation.
const (
	ExitOK          = 0
	ExitUsage       = 1
	ExitFailure     = 1 // a failure with no more specific code shares cryptsetup's 1
	ExitPermission  = 2
	ExitNoMemory    = 3
	ExitNoDevice    = 4
	ExitBusy        = 5
	ExitNeedsUnlock = 6
)

// readBuildInfo is replaced in tests: a test binary has no module version or VCS stamp.
var readBuildInfo = debug.ReadBuildInfo

// Version is the --version line of program; extra, if not empty, is appended in
// parentheses (e.g. "cryptsetup 2.6.1 compatible").
func Version(program, extra string) string {
	s := program + " " + versionOf(readBuildInfo())
	if extra != "" {
		s += " (" + extra + ")"
	}
	return s
}

func versionOf(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return "(unknown)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return v
	}
	// Since Go 1.24 a build from a checkout gets a pseudo-version that already holds the
	// revision (v0.0.0-20261204132447-4714fc3894a5, "+dirty" for local changes).
	if len(rev) >= 12 && strings.Contains(v, rev[:12]) {
		return v
	}
	if len(rev) > 7 {
		rev = rev[:7]
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return v + " rev " + rev
}

// NoArgs is what every program does when called with no arguments at all: the usage on
// stderr and ExitUsage, so that a bare invocation never acts on the live system.
func NoArgs(stderr io.Writer, usage func(io.Writer)) int {
	usage(stderr)
	return ExitUsage
}

// PrintVersion writes the --version line to stdout and returns ExitOK.
func PrintVersion(stdout io.Writer, program, extra string) int {
	fmt.Fprintln(stdout, Version(program, extra))
	return ExitOK
}
