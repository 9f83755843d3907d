// Command keeper runs at the operator's site, outside the cloud: it watches the EC2
// instances of its configuration file, notices when one has booted with its encrypted
// volume locked, and unlocks it over SSH. The passphrase stays in the keeper's age vault;
// only the volume key reaches the instance (see package keeper).
//
//	keeper [-c CONFIG] VERB [ARGS]
//	keeper --version
//	keeper help VERB                 (or VERB --help: what it does, an example, its flags)
//
//	vault add VOLUME_ID --uuid UUID|--header FILE [--label L] [--key-file F] [--recipient age1…]…
//	vault list [--json]
//	vault remove VOLUME_ID
//	trust INSTANCE [--fingerprint SHA256:…] [--no-console] [--yes] [--replace]
//	run [--once]
//	status [--json]
//	rescue INSTANCE [--force] [--device /dev/sdX] [--timeout D]
//
// The configuration (-c, default /etc/keeper/keeper.toml, or $KEEPER_CONFIG) is described in
// package keeper/config. The vault verbs need only its vault (and identity) setting, and
// --vault/--identity replace even that.
//
// Passphrases: the vault's, unless the configuration or --identity names an age identity
// file; then each volume's for vault add. At a terminal they are asked for without echo (a
// new one twice); piped, each is one line of standard input; --key-file reads a volume's
// passphrase from a file, whole. Passphrases never appear on the command line.
//
// The audit log (one JSON line per decision, never a secret) goes to the configuration's
// audit_log, mode 0600, else to standard error. `keeper run` rewrites the status file
// (status_file) every two seconds when something changed, and touches it otherwise (its
// modification time is the heartbeat); `keeper status` prints it.
//
// A target that cannot be served (a tag group with no instance now, an instance without its
// volume, a volume without a vault entry) is reported refused in the status and the rest of
// the fleet is served. Every poll_interval, and at once on SIGHUP, `keeper run` re-reads the
// vault if its file changed (so `keeper vault add|remove` takes effect) and resolves the tag
// groups again; when the targets differ its engine serves the new fleet in place: a target
// that stays (the same instance and volume, even renamed by a retag) keeps its attempt
// counts, the boot ids it unlocked, its rate-limit window and last unlock, and a target gone
// is forgotten. An instance and volume matched by two targets is served by the first.
//
// A rescue (`keeper rescue`, or `keeper run` for a target with auto_rescue) detaches a volume
// and reboots, so it first checks that the instance is unreachable: rescue_probes dials
// (default 3, 2..20), rescue_probe_interval apart (default "10s", 1s..10m, whole seconds),
// must all fail to make a TCP connection, and the probes must end inside the 15 minutes a
// rescue may take. Both are settings of the configuration file, checked when it is read: a
// value out of range stops the command before anything is dialled.
//
// EC2 is reached with the AWS SDK's configuration (profiles, AWS_REGION, credentials,
// AWS_ENDPOINT_URL_EC2); the configuration's region setting wins.
//
// Exit codes are those of every cloudluks program: 0 success, 1 usage error or other
// failure, 2 wrong passphrase or identity, a host key refused, an unlock refused by a check,
// 4 no such volume entry, instance target, vault or status file, 5 an entry exists already /
// a volume in use, 6 (status) a target is not unlocked.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/cloudluks/cloudluks/internal/cli"
)

const program = "keeper"

// DefaultConfig is where the configuration lives unless -c or $KEEPER_CONFIG says otherwise.
const DefaultConfig = "/etc/keeper/keeper.toml"

type runFunc func(a *app, args []string) error

var verbs = cli.Verbs[runFunc]{
	{Name: "vault", Args: "add|list|remove …", MinArgs: 1, Summary: "manage the passphrases in the age vault: add VOLUME_ID --uuid UUID|--header FILE [--label L] [--key-file F], list [--json], remove VOLUME_ID", Example: "vault add vol-0123456789abcdef0 --uuid 6e0a6d4c-9c1b-4c3e-8a5d-1f2e3d4c5b6a --label web-1/data", Run: cmdVault},
	{Name: "trust", Args: "INSTANCE [--fingerprint SHA256:…] [--no-console] [--yes] [--replace]", MinArgs: 1, Summary: "pin an instance's SSH host key in the keeper's known_hosts, checked against the fingerprints cloud-init printed on its EC2 console, a fingerprint given by hand, or your yes", Example: "trust i-0123456789abcdef0", Run: cmdTrust},
	{Name: "run", Args: "[--once]", Summary: "serve the configured targets: unlock each instance's volume after every boot, until interrupted (--once: one pass, then exit)", Example: "run", Run: cmdRun},
	{Name: "status", Args: "[--json]", Summary: "show each target's instance, boot id, state and last unlock, as the running keeper last saw them", Example: "status --json", Run: cmdStatus},
	{Name: "rescue", Args: "INSTANCE [--force] [--device /dev/sdX] [--timeout D]", MinArgs: 1, Summary: "unstick an instance waiting at a boot passphrase prompt: detach its encrypted volume, reboot, re-attach, unlock; first the instance must fail rescue_probes TCP dials (default 3) rescue_probe_interval apart (default 10s), settings of the configuration file that keeper run's auto_rescue uses too", Example: "rescue i-0123456789abcdef0", Run: cmdRescue},
}

// app is one invocation.
type app struct {
	ctx      context.Context
	stdin    *bufio.Reader
	stdout   io.Writer
	stderr   io.Writer
	term     cli.Terminal
	config   string // -c
	vault    string // --vault
	identity string // --identity
	ec2      ec2Factory
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code; everything goes through the
// given streams, so the tests run it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var term cli.Terminal = noTerminal{}
	if f, ok := stdin.(*os.File); ok {
		// As cryptsetup: prompts and answers through /dev/tty when there is one, so that
		// captured output never holds a prompt.
		// Ctx: Ctrl-C at a passphrase prompt ends the read (the signal context is done).
		term = cli.TTY{In: f, Out: stderr, DevTTY: true, Ctx: ctx}
	}
	return runWith(ctx, args, stdin, stdout, stderr, term)
}

// runWith is run with the terminal given (the pty tests pass one without /dev/tty).
func runWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, term cli.Terminal) int {
	a := &app{ctx: ctx, stdin: bufio.NewReader(stdin), stdout: stdout, stderr: stderr, ec2: defaultEC2, term: term}
	if len(args) == 0 {
		return cli.NoArgs(stderr, usage)
	}
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("KEEPER_CONFIG")
	if def == "" {
		def = DefaultConfig
	}
	fs.StringVar(&a.config, "c", def, "configuration file")
	fs.StringVar(&a.config, "config", def, "configuration file")
	fs.StringVar(&a.vault, "vault", "", "vault file (instead of the configuration's)")
	fs.StringVar(&a.identity, "identity", "", "age identity file that opens the vault (instead of a passphrase)")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { usage(stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cli.ExitOK
		}
		return cli.ExitUsage
	}
	if *version {
		return cli.PrintVersion(stdout, program, "")
	}
	if fs.NArg() == 0 {
		usage(stderr)
		return cli.ExitUsage
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		return verbs.Help(stdout, stderr, program, rest, usage)
	}
	v, ok := verbs.Lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown verb %q\n", program, name)
		usage(stderr)
		return cli.ExitUsage
	}
	if len(rest) > 0 && cli.IsHelpFlag(rest[len(rest)-1]) {
		// "VERB --help": the summary and an example, then the verb's flags, on stdout.
		v.WriteHelp(stdout, program)
		if name != "vault" || len(rest) > 1 {
			fmt.Fprintln(stdout, "\nFlags:")
			a.stderr = stdout
			_ = v.Run(a, append(rest[:len(rest)-1:len(rest)-1], "-help"))
		}
		return cli.ExitOK
	}
	if len(rest) < v.MinArgs {
		fmt.Fprintf(stderr, "%s: %s: missing argument\nusage: %s %s\n", program, name, program, v.Synopsis())
		return cli.ExitUsage
	}
	err := v.Run(a, rest)
	var q quiet
	if err != nil && !errors.Is(err, flag.ErrHelp) && !errors.As(err, &q) {
		switch {
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "%s: %v\nusage: %s %s\n", program, err, program, v.Synopsis())
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			// cryptsetup's words for a signal at a prompt or during the work.
			fmt.Fprintf(stderr, "%s: Operation interrupted.\n", program)
		default:
			fmt.Fprintf(stderr, "%s: %v\n", program, err)
		}
	}
	return exitCode(err)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s [-c CONFIG] [--vault FILE] [--identity FILE] VERB [ARGS]\n", program)
	verbs.WriteList(w)
	fmt.Fprintf(w, "%s help VERB (or VERB --help) shows what it does and an example.\n", program)
}

// errUsage marks command-line mistakes.
var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// flags returns a verb's flag set, printing its errors on the app's stderr.
func (a *app) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(program+" "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = fs.PrintDefaults
	return fs
}

// parse parses a verb's flags, which may come before or after its positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// noTerminal is the Terminal of a standard input that is not a file (tests, pipes).
type noTerminal struct{}

func (noTerminal) IsTerminal() bool { return false }
func (noTerminal) ReadPassword(string) ([]byte, error) {
	return nil, errors.New("no terminal")
}

// oneLine keeps what the keeper prints about remote data on one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
