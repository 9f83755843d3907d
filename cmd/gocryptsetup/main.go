// Command gocryptsetup is a cryptsetup-compatible command line over the cloudluks luks
// package: the same verbs, options, prompts, messages, stdout text and exit codes as
// cryptsetup 2.6 for LUKS1 and LUKS2 (luksFormat makes LUKS2 by default, as cryptsetup 2.6
// does), with no cgo and no cryptsetup binary.
//
// Usage:
//
//	gocryptsetup [OPTION...] <action> <action-specific>
//	gocryptsetup help <action>                (or <action> --help: synopsis, summary, example)
//
// Actions (LUKS1 and LUKS2):
//
//	luksFormat <device> [<new key file>]
//	luksDump <device> [--dump-volume-key [--volume-key-file FILE]]
//	luksDump --dump-json-metadata <device>    (LUKS2: the JSON metadata, as cryptsetup prints it)
//	open --test-passphrase <device>           (alias luksOpen)
//	open <device> <name>                      (alias luksOpen; needs device-mapper and root)
//	close <name>                              (alias luksClose)
//	status <name>
//	luksAddKey <device> [<new key file>]      (-S or --new-key-slot: the new slot)
//	luksRemoveKey <device> [<key file>]
//	luksChangeKey <device> [<new key file>]
//	luksKillSlot <device> <key slot>
//	luksUUID <device> [--uuid UUID]
//	isLuks <device>
//	luksHeaderBackup <device> --header-backup-file FILE
//	luksHeaderRestore <device> --header-backup-file FILE
//	config <device> --label L --subsystem S   (LUKS2; the one not given is cleared)
//	config <device> --priority prefer|normal|ignore -S N   (LUKS2)
//	benchmark
//
// Two extensions for rootless use read and write the decrypted payload of an image without
// device-mapper:
//
//	read <device> [--offset-bytes N] [--size-bytes N]   decrypted payload bytes to stdout
//	write <device> [--offset-bytes N]                   encrypt stdin into the payload
//
// Options are cryptsetup's: --type luks1|luks2, -c/--cipher, -s/--key-size, -h/--hash,
// -i/--iter-time, --pbkdf-force-iterations, -d/--key-file (- = stdin), --keyfile-offset,
// -l/--keyfile-size, -S/--key-slot, --uuid, --align-payload, --header, -q/--batch-mode,
// -v/--verbose, -T/--tries, and for LUKS2 --pbkdf, --pbkdf-memory, --pbkdf-parallel,
// --new-key-slot, --new-keyfile, --label, --subsystem, --priority, --sector-size,
// --luks2-metadata-size, --luks2-keyslots-size. They may come before or after the action,
// as in cryptsetup.
//
// Passphrases: from a key file (-d, or the positional key-file argument), else a prompt on
// the terminal without echo (luksFormat asks twice), else one line of stdin (see
// internal/cli). At a terminal only open asks again after a wrong passphrase (-T/--tries,
// default 3); the key-management actions ask once and exit 2, as cryptsetup does.
//
// Exit codes: 0 success, 1 wrong parameters or not LUKS, 2 no permission or bad passphrase,
// 3 out of memory, 4 wrong device, 5 device busy or exists.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/luks"
)

// verbTable lists the actions in the order --help shows them; the summaries are cryptsetup's.
// Adding an action is one cmd_<name>.go file with its run function plus one entry here.
func verbTable() cli.Verbs[func(a *app, args []string) error] {
	return cli.Verbs[func(a *app, args []string) error]{
		{Name: "open", Aliases: []string{"luksOpen", "plainOpen", "create"}, Args: "<device> [--type <type>] [<name>]", MinArgs: 1, Summary: "open device as <name> (or only check the passphrase with --test-passphrase)", Example: "open --test-passphrase disk.img", Run: cmdOpen},
		{Name: "close", Aliases: []string{"luksClose", "remove"}, Args: "<name>", MinArgs: 1, Summary: "close device (remove mapping)", Example: "close data", Run: cmdClose},
		{Name: "status", Args: "<name>", MinArgs: 1, Summary: "show device status", Example: "status data", Run: cmdStatus},
		{Name: "luksFormat", Args: "<device> [<new key file>]", MinArgs: 1, Summary: "formats a LUKS device", Example: "luksFormat --type luks1 disk.img", Run: cmdLuksFormat},
		{Name: "luksAddKey", Args: "<device> [<new key file>]", MinArgs: 1, Summary: "add key to LUKS device", Example: "luksAddKey disk.img", Run: cmdLuksAddKey},
		{Name: "luksRemoveKey", Args: "<device> [<key file>]", MinArgs: 1, Summary: "removes supplied key or key file from LUKS device", Example: "luksRemoveKey disk.img", Run: cmdLuksRemoveKey},
		{Name: "luksChangeKey", Args: "<device> [<key file>]", MinArgs: 1, Summary: "changes supplied key or key file of LUKS device", Example: "luksChangeKey disk.img", Run: cmdLuksChangeKey},
		{Name: "luksKillSlot", Args: "<device> <key slot>", MinArgs: 2, Summary: "wipes key with number <key slot> from LUKS device", Example: "luksKillSlot disk.img 1", Run: cmdLuksKillSlot},
		{Name: "luksUUID", Args: "<device>", MinArgs: 1, Summary: "print UUID of LUKS device", Example: "luksUUID disk.img", Run: cmdLuksUUID},
		{Name: "isLuks", Args: "<device>", MinArgs: 1, Summary: "tests <device> for LUKS partition header", Example: "isLuks -v disk.img", Run: cmdIsLuks},
		{Name: "luksDump", Args: "<device>", MinArgs: 1, Summary: "dump LUKS partition information", Example: "luksDump disk.img", Run: cmdLuksDump},
		{Name: "luksHeaderBackup", Args: "<device>", MinArgs: 1, Summary: "Backup LUKS device header and keyslots", Example: "luksHeaderBackup disk.img --header-backup-file disk.hdr", Run: cmdLuksHeaderBackup},
		{Name: "luksHeaderRestore", Args: "<device>", MinArgs: 1, Summary: "Restore LUKS device header and keyslots", Example: "luksHeaderRestore disk.img --header-backup-file disk.hdr", Run: cmdLuksHeaderRestore},
		{Name: "token", Args: "<add|remove|import|export> <device>", MinArgs: 2, Summary: "Manipulate LUKS2 tokens", Example: "token import --json-file token.json disk.img", Run: cmdToken},
		{Name: "config", Args: "<device>", MinArgs: 1, Summary: "set permanent configuration options for LUKS2", Example: "config --label data disk.img", Run: cmdConfig},
		{Name: "convert", Args: "<device>", MinArgs: 1, Summary: "converts LUKS from/to LUKS2 format", Example: "convert --type luks2 disk.img", Run: cmdConvert},
		{Name: "benchmark", Args: "[--cipher <cipher>]", MinArgs: 0, Summary: "benchmark cipher", Example: "benchmark --cipher aes-xts-plain64", Run: cmdBenchmark},
		{Name: "read", Args: "<device>", MinArgs: 1, Summary: readVerbHelp, Example: "read -d key --offset-bytes 4096 --size-bytes 512 disk.img > plain.bin", Run: cmdRead},
		{Name: "write", Args: "<device>", MinArgs: 1, Summary: writeVerbHelp, Example: "write -d key --offset-bytes 4096 disk.img < plain.bin", Run: cmdWrite},
	}
}

// app is one invocation: its streams, terminal, parsed options and cancellation.
type app struct {
	ctx    context.Context
	prog   string           // base name, for the usage text
	argv0  string           // as invoked, for popt-style "PROG: message" lines
	stdin  *cli.StdinReader // wiped when run returns: it buffered the passphrase lines
	rawIn  io.Reader        // what stdin buffers, so write can Stat a regular file
	stdout io.Writer
	stderr io.Writer
	term   cli.Terminal
	opts   *options
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr, cli.TTY{In: os.Stdin, Out: os.Stderr, DevTTY: true, Ctx: ctx})
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code. Everything it prints goes to the
// given writers, so tests can run it in-process.
func run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer, term cli.Terminal) int {
	prog, argv0 := "gocryptsetup", "gocryptsetup"
	if len(argv) > 0 {
		// popt names the program as invoked in its messages, and by base name in the usage.
		prog, argv0 = filepath.Base(argv[0]), argv[0]
		argv = argv[1:]
	}
	a := &app{ctx: ctx, prog: prog, argv0: argv0, stdin: cli.NewStdinReader(stdin), rawIn: stdin, stdout: stdout, stderr: stderr, term: term}
	defer a.stdin.Wipe()

	opts, pos, err := parseArgs(argv)
	if err != nil {
		return a.usageFail(err.(*usageError))
	}
	a.opts = opts
	switch {
	case opts.help && len(pos) > 0 && isVerb(pos[0]):
		// "VERB --help" (options may come anywhere, as in cryptsetup): that verb's help.
		// Anything else with --help ("--help disk.img") is the full help, as cryptsetup
		// prints it.
		return a.verbHelp(pos[0])
	case opts.help:
		a.writeHelp()
		return exitOK
	case opts.usage:
		writeUsage(stdout, prog)
		return exitOK
	case opts.version:
		return cli.PrintVersion(stdout, prog, "cryptsetup 2.6.1 compatible")
	}
	if len(pos) == 0 {
		return a.usageFail(&usageError{msg: "Argument <action> missing."})
	}
	if pos[0] == "help" {
		// An extension: cryptsetup has no help action.
		if len(pos) == 1 {
			a.writeHelp()
			return exitOK
		}
		return a.verbHelp(pos[1])
	}
	v, ok := verbTable().Lookup(pos[0])
	if !ok {
		return a.usageFail(&usageError{msg: "Unknown action."})
	}
	args := pos[1:]
	if t, a := openAliasType(pos[0], args); t != "" {
		opts.typ, args = t, a
	}
	if len(args) < v.MinArgs {
		// cryptsetup names the action canonically (open for luksOpen) with its synopsis.
		return a.usageFail(&usageError{msg: fmt.Sprintf("%s: requires %s as arguments", v.Name, v.Args)})
	}
	if err := opts.checkAllowed(v.Name); err != nil {
		return a.usageFail(err.(*usageError))
	}
	if err := checkType(a, v.Name, args); err != nil && (v.Name != "luksFormat" || !formatsLUKS2(opts)) && v.Name != "convert" {
		return a.finish(err)
	}
	return a.finish(v.Run(a, args))
}

// checkType accepts --type luks1 (and "luks"), luks2 for the verbs that read LUKS2
// (readTypes), and --type plain as cryptsetup 2.6.1 does: open maps a plain device; close,
// status, the header backup actions and benchmark ignore the type; luksFormat refuses it
// without a word; the other LUKS actions load no LUKS header of type plain, so they fail as
// on a device without one (after the device's existence check).
func checkType(a *app, verb string, args []string) error {
	o := a.opts
	switch o.typ {
	case "", "luks", "luks1":
		return nil
	case "luks2":
		if readTypes[verb] {
			return nil
		}
	case "plain":
		return checkPlainType(a, verb, args)
	}
	return &cliError{code: exitParams, msg: fmt.Sprintf("Device type %s is not supported (this program handles LUKS1, LUKS2 and plain).", o.typ)}
}

// finish prints the error (stderr) and, with -v, the status line (stdout), then returns the
// exit code.
func (a *app) finish(err error) int {
	if ue, ok := err.(*usageError); ok {
		return a.usageFail(ue)
	}
	code, lines := exitStatus(err)
	for _, l := range lines {
		fmt.Fprintln(a.stderr, l)
	}
	if a.opts != nil && a.opts.verbose {
		fmt.Fprintln(a.stdout, statusLine(code))
	}
	return code
}

// usageFail prints the usage summary and popt's "SUBJECT: MESSAGE" on stderr; exit 1.
func (a *app) usageFail(e *usageError) int {
	writeUsage(a.stderr, a.prog)
	subject := e.subject
	if subject == "" {
		subject = a.argv0
	}
	fmt.Fprintf(a.stderr, "%s: %s\n", subject, e.msg)
	return exitParams
}

// verbHelp is "help VERB" and "VERB --help"; an unknown verb is cryptsetup's "Unknown action.".
func isVerb(name string) bool {
	_, ok := verbTable().Lookup(name)
	return ok
}

func (a *app) verbHelp(name string) int {
	v, ok := verbTable().Lookup(name)
	if !ok {
		return a.usageFail(&usageError{msg: "Unknown action."})
	}
	v.WriteHelp(a.stdout, a.prog)
	return exitOK
}

func (a *app) writeHelp() {
	w := a.stdout
	fmt.Fprintf(w, "%s 2.6.1 (cloudluks)\n", a.prog)
	writeUsage(w, a.prog)
	fmt.Fprintf(w, "\n<action> is one of:\n")
	for _, v := range verbTable() {
		names := v.Name
		if len(v.Aliases) > 0 {
			names += "|" + strings.Join(v.Aliases, "|")
		}
		fmt.Fprintf(w, "\t%s %s - %s\n", names, v.Args, v.Summary)
	}
	fmt.Fprintf(w, "\n<name> is the device to create under /dev/mapper\n<device> is the encrypted device (or image file)\n<key slot> is the LUKS key slot number to modify\n<key file> optional key file for the new key for luksAddKey action\n")
	fmt.Fprintf(w, "\n%s help <action> (or %s <action> --help) shows the action's help and an example.\n", a.prog, a.prog)
	// cryptsetup 2.6.1's compiled-in defaults, which are this program's too.
	fmt.Fprintf(w, "\nDefault compiled-in metadata format is LUKS2 (for luksFormat action).\n")
	fmt.Fprintf(w, "\nDefault compiled-in key and passphrase parameters:\n"+
		"\tMaximum keyfile size: %dkB, Maximum interactive passphrase length %d (characters)\n"+
		"Default PBKDF for LUKS1: pbkdf2, iteration time: 2000 (ms)\n"+
		"Default PBKDF for LUKS2: argon2id\n"+
		"\tIteration time: 2000, Memory required: 1048576kB, Parallel threads: 4\n", luks.MaxKeyFileSize/1024, cli.MaxPassphrase)
	fmt.Fprintf(w, "\nDefault compiled-in device cipher parameters:\n"+
		"\tplain: %s, Key: %d bits, Password hashing: %s\n"+
		"\tLUKS: aes-xts-plain64, Key: 256 bits, LUKS header hashing: sha256, RNG: /dev/urandom\n"+
		"\tLUKS: Default keysize with XTS mode (two internal keys) will be doubled.\n",
		luks.PlainDefaultCipher, luks.PlainDefaultKeySize*8, luks.PlainDefaultHash)
}
