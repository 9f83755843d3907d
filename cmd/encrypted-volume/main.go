package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/cloudluks/cloudluks/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// verbs is the command table; each verb parses its own flags.
var verbs = map[string]struct {
	summary string
	run     func(a *app, ctx context.Context, c *config) error
}{
	"setup":    {"create/attach a volume, LUKS-format, open, mkfs, mount, disable boot-time unlock", (*app).setup},
	"teardown": {"unmount, close the mapping, optionally detach and delete the volume", (*app).teardown},
	"unlock":   {"after a reboot: resolve the device, open, mount, run post-mount hooks", (*app).unlock},
	"status":   {"show what is attached, opened and mounted, and whether boot-time unlock is off", (*app).status},
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
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		a.usage(a.stdout)
		return 0
	}
	v, ok := verbs[args[0]]
	if !ok {
		fmt.Fprintf(a.stderr, "encrypted-volume: unknown verb %q\n", args[0])
		a.usage(a.stderr)
		return exitUsage
	}
	c, err := parseFlags(args[0], args[1:], a.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "encrypted-volume %s: %v\n", args[0], err)
		return exitUsage
	}
	if err := v.run(a, ctx, c); err != nil {
		if errors.Is(err, errNeedsUnlock) {
			return exitCode(err) // status printed the answer; no error message
		}
		fmt.Fprintf(a.stderr, "encrypted-volume %s: %v\n", args[0], err)
		return exitCode(err)
	}
	return 0
}

func (a *app) usage(w io.Writer) {
	fmt.Fprintln(w, "usage: encrypted-volume <verb> [flags]   (encrypted-volume <verb> -h for the flags)")
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, verbs[n].summary)
	}
}
