package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cloudluks/cloudluks/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// verbs is the command table, in the order the usage lists it; each verb parses its own flags.
var verbs = cli.Verbs[func(a *app, ctx context.Context, c *config) error]{
	{Name: "setup", Args: "[flags]", Summary: "create/attach a volume, LUKS-format, open, mkfs, mount, disable boot-time unlock", Example: "setup --size 10 --mount-point /var/lib/mysql", Run: (*app).setup},
	{Name: "status", Args: "[flags]", Summary: "show what is attached, opened and mounted, and whether boot-time unlock is off", Example: "status --json", Run: (*app).status},
	{Name: "teardown", Args: "[flags]", Summary: "unmount, close the mapping, optionally detach and delete the volume", Example: "teardown --volume-id vol-0123456789abcdef0 --detach", Run: (*app).teardown},
	{Name: "unlock", Args: "[flags]", Summary: "after a reboot: resolve the device, open, mount, run post-mount hooks", Example: "unlock --volume-id vol-0123456789abcdef0 --hook 'systemctl start mysqld'", Run: (*app).unlock},
	{Name: "swap", Args: "[flags]", Summary: "encrypted swap on an instance-store disk or EBS volume, key only in memory", Example: "swap --instance-store", Run: (*app).swap},
	{Name: "tmp", Args: "[flags]", Summary: "encrypted /tmp on an instance-store disk or EBS volume, key only in memory", Example: "tmp --device /dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_AWS1A2B3C4D5E6F7A8B9", Run: (*app).tmp},
	{Name: "serve", Args: "[flags]", Summary: "for the keeper (SSH forced command): state, header, unlock with a volume key from stdin", Example: "serve --volume-id vol-0123456789abcdef0 --name data --mount-point /data", Run: (*app).serve},
}

// run is the whole program behind main, callable from tests: it never calls os.Exit and
// touches only what args name. It returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := newApp(stdin, stdout, stderr)
	return a.main(ctx, args)
}

// app carries the program's I/O and the three outside worlds it drives. Tests replace
// cloud, local and boot with fakes; run uses the real packages.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	term           terminal
	newCloud       func(ctx context.Context, c *config) (cloud, error)
	local          local
	boot           bootConfig
	bootID         string // the boot-id file (bootIDPath; tests point it elsewhere)
}

func (a *app) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		return cli.NoArgs(a.stderr, a.usage)
	}
	if args[0] == "--version" || args[0] == "-version" {
		return cli.PrintVersion(a.stdout, "encrypted-volume", "")
	}
	if args[0] == "help" && len(args) > 1 {
		if _, ok := verbs.Lookup(args[1]); ok {
			return a.verbHelp(args[1])
		}
	}
	if args[0] == "help" {
		// "help" alone is the usage; "help NOSUCHVERB" says so, with the usage, exit 1.
		return verbs.Help(a.stdout, a.stderr, "encrypted-volume", args[1:], a.usage)
	}
	if cli.IsHelpFlag(args[0]) {
		a.usage(a.stdout)
		return 0
	}
	v, ok := verbs.Lookup(args[0])
	if !ok {
		fmt.Fprintf(a.stderr, "encrypted-volume: unknown verb %q\n", args[0])
		a.usage(a.stderr)
		return exitUsage
	}
	if len(args) == 2 && cli.IsHelpFlag(args[1]) {
		return a.verbHelp(args[0])
	}
	c, err := parseFlags(args[0], args[1:], a.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "encrypted-volume %s: %v\n", args[0], err)
		return exitUsage
	}
	if err := v.Run(a, ctx, c); err != nil {
		if errors.Is(err, errNeedsUnlock) {
			return exitCode(err) // status printed the answer; no error message
		}
		fmt.Fprintf(a.stderr, "encrypted-volume %s: %v\n", args[0], err)
		return exitCode(err)
	}
	return 0
}

// verbHelp is "help VERB" and "VERB --help": the summary and an example, then the flags, all
// on stdout.
func (a *app) verbHelp(name string) int {
	v, _ := verbs.Lookup(name)
	v.WriteHelp(a.stdout, "encrypted-volume")
	fmt.Fprintln(a.stdout, "\nFlags:")
	parseFlags(name, []string{"-h"}, a.stdout)
	return 0
}

func (a *app) usage(w io.Writer) {
	fmt.Fprintln(w, "usage: encrypted-volume <verb> [flags]   (encrypted-volume <verb> -h for the flags)")
	verbs.WriteList(w)
}
