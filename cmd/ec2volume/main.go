// Command ec2volume manages the EBS volume of the instance it runs on: create, attach at a
// free device name, find the local block device, detach, delete, list. It is the first two
// steps of the encrypted-volume walkthrough (ec2-create-volume, ec2-attach-volume) with the
// waiting and the failure handling done for you.
//
//	ec2volume [-o text|json] [-v] COMMAND [ARGS]
//	ec2volume --version
//	ec2volume help COMMAND          (or COMMAND --help: what it does, an example, its flags)
//
//	create --size GiB [--availability-zone AZ] [--type T] [--iops N] [--throughput N]
//	       [--tag k=v]… [--name TOKEN] [--snapshot snap-…] [--encrypted] [--no-wait]
//	attach VOLUME_ID [--instance-id I] [--device /dev/sdX]
//	detach VOLUME_ID [--force]
//	delete VOLUME_ID [--detach] [--force]
//	list [VOLUME_ID…] [--tag k=v]…
//	device VOLUME_ID [--sys-root DIR] [--dev-root DIR] [--wait D]
//
// Text output is one TAB-separated line per object, as the EC2 API tools print them
// (VOLUME, ATTACHMENT, TAG); -o json prints JSON. Configuration is the AWS SDK's: profiles,
// AWS_REGION, credentials, AWS_ENDPOINT_URL_EC2, AWS_EC2_METADATA_SERVICE_ENDPOINT. The
// availability zone, instance ID and (if unset) region default to the instance's own, from
// instance metadata (IMDSv2).
//
// Warnings go to stderr always: a busy device, a forced detach, every request the SDK
// retries ("retrying DetachVolume: InternalError (attempt 2 of 8)"; AWS_MAX_ATTEMPTS sets
// the attempts), and what the SDK warns about (credentials from instance metadata kept past
// their expiry while the service is unavailable). A server error that outlasts the retries
// ends the command with EC2's error; inside a wait, server errors are ridden out for two
// minutes before they do, and throttling and EC2's "Unavailable" until the timeout. With -v,
// state changes and the fallback to IMDSv1 when the metadata service refuses a session token
// are shown too.
//
// Exit codes are those of every cloudluks program: 0 success, 1 usage error or other
// failure (EC2 server errors and timeouts included), 4 no such volume, instance or device,
// 5 volume in use or device name taken.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/internal/cli"
)

// verbs is the subcommand table, in the order the usage lists it.
var verbs = cli.Verbs[func(ctx context.Context, g *globals, args []string) error]{
	{Name: "attach", Args: "VOLUME_ID [--instance-id I] [--device /dev/sdX]", Summary: "attach a volume to this (or another) instance at a free device name and wait until it is in use", Example: "attach vol-0123456789abcdef0 --device /dev/sdf", Run: cmdAttach},
	{Name: "create", Args: "--size GiB [--availability-zone AZ] [--type T] [--iops N] [--throughput N] [--tag k=v]… [--name TOKEN] [--snapshot ID] [--no-wait]", Summary: "create a volume in this instance's zone and wait until it is available", Example: "create --size 10 --name mysql-data", Run: cmdCreate},
	{Name: "delete", Args: "VOLUME_ID [--detach] [--force]", Summary: "delete a volume (with --detach, detach it first)", Example: "delete vol-0123456789abcdef0 --detach", Run: cmdDelete},
	{Name: "detach", Args: "VOLUME_ID [--force]", Summary: "detach a volume and wait until it is available", Example: "detach vol-0123456789abcdef0", Run: cmdDetach},
	{Name: "device", Args: "VOLUME_ID [--sys-root DIR] [--dev-root DIR] [--wait D]", Summary: "print the local block device of an attached volume", Example: "device vol-0123456789abcdef0 --wait 2m", Run: cmdDevice},
	{Name: "list", Args: "[VOLUME_ID…] [--tag k=v]… [--instance-id I]", Summary: "list volumes with their attachments and tags", Example: "list -o json --tag Name=mysql-data", Run: cmdList},
}

// globals are the options every verb shares.
type globals struct {
	output  string // "text" or "json"
	verbose bool
	timeout time.Duration
	stdout  io.Writer
	stderr  io.Writer
	resolve ebs.ResolveOptions
	client  func(ctx context.Context) (*ebs.Client, error)
}

// errUsage marks command-line mistakes (exit code 1).
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("ec2volume", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&g.output, "o", "text", "output format: text or json")
	fs.StringVar(&g.output, "output", "text", "output format: text or json")
	fs.BoolVar(&g.verbose, "v", false, "report every state change on stderr")
	fs.DurationVar(&g.timeout, "timeout", 30*time.Minute, "give up after this long")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { usage(stderr) }
	if len(args) == 0 {
		return cli.NoArgs(stderr, usage)
	}
	if err := fs.Parse(args); err != nil {
		return exitCode(err)
	}
	if *version {
		return cli.PrintVersion(stdout, "ec2volume", "")
	}
	if fs.NArg() == 0 {
		usage(stderr)
		return exitUsage
	}
	name := fs.Arg(0)
	if name == "help" && fs.NArg() == 1 {
		usage(stdout)
		return exitOK
	}
	if name == "help" {
		name = fs.Arg(1)
		if v, ok := verbs.Lookup(name); ok {
			v.WriteHelp(stdout, "ec2volume")
			return exitOK
		}
	}
	v, ok := verbs.Lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "ec2volume: unknown command %q\n", name)
		usage(stderr)
		return exitUsage
	}
	if rest := fs.Args()[1:]; len(rest) == 1 && cli.IsHelpFlag(rest[0]) {
		// "VERB --help": the summary and an example, then the verb's flags, on stdout.
		v.WriteHelp(stdout, "ec2volume")
		fmt.Fprintln(stdout, "\nFlags:")
		g.stderr = stdout
		v.Run(context.Background(), g, rest)
		return exitOK
	}
	g.client = g.newClient
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	err := v.Run(ctx, g, fs.Args()[1:])
	if err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "ec2volume: %v\nusage: ec2volume [-o text|json] %s\n", err, v.Synopsis())
		} else if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "ec2volume: %v\n", err)
		}
	}
	return exitCode(err)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ec2volume [-o text|json] [-v] [--timeout D] COMMAND [ARGS]")
	for _, v := range verbs {
		fmt.Fprintf(w, "  %s\n", v.Synopsis())
	}
	fmt.Fprintln(w, "ec2volume help COMMAND (or COMMAND --help) shows what it does and an example.")
}

func (g *globals) newClient(ctx context.Context) (*ebs.Client, error) {
	if g.output != "text" && g.output != "json" {
		return nil, fmt.Errorf("%w: -o %q: want text or json", errUsage, g.output)
	}
	cfg, err := ebs.LoadDefaultConfig(ctx, ebs.WithProgress(g.progress))
	if err != nil {
		return nil, err
	}
	return ebs.NewFromConfig(cfg, ebs.Options{Progress: g.progress, Resolve: g.resolve}), nil
}

// progress prints an event on stderr when shown says so.
func (g *globals) progress(e ebs.Event) {
	if !shown(e, g.verbose) {
		return
	}
	parts := []string{"ec2volume:"}
	if e.Warning {
		parts = append(parts, "warning:")
	}
	for _, s := range []string{e.Op, e.VolumeID, e.InstanceID, e.Device, e.State, e.Message} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	fmt.Fprintln(g.stderr, strings.Join(parts, " "))
}

// shown reports whether an event is printed: warnings (a busy device, a retried request, what
// the SDK warns about, such as ec2rolecreds extending expired credentials) always, state
// changes only with -v. The one SDK warning that waits for -v is the IMDSv1 fallback: the
// metadata service refused a session token and the program carries on without one, which
// is how many instances are set up and nothing the operator must act on.
func shown(e ebs.Event, verbose bool) bool {
	if verbose {
		return true
	}
	if !e.Warning {
		return false
	}
	return !(e.Op == "metadata" && strings.Contains(e.Message, "falling back to IMDSv1"))
}
