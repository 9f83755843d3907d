package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cloudluks/cloudluks/keeper"
	"github.com/cloudluks/cloudluks/keeper/config"
	"github.com/cloudluks/cloudluks/keeper/vault"
)

// statusEvery is how often run rewrites (or touches) the status file; a file not touched for
// staleAfter is a dead keeper's.
const (
	statusEvery = 2 * time.Second
	staleAfter  = 15 * statusEvery
)

// errStale: the status file is not kept current by a running keeper.
var errStale = errors.New("status is stale")

// runEnv is what the engine is made from: everything checked before the first connection.
type runEnv struct {
	c      *config.Config
	api    keeper.EC2API
	v      *vault.Vault
	audit  io.Writer
	closer io.Closer
	// pairs are the (instance, volume) pairs each configured target resolved to last
	// time, by label: a group whose resolution fails on an EC2 error keeps them.
	pairs map[string][][2]string
}

func (e *runEnv) Close() {
	e.v.Close()
	e.closer.Close()
}

// setup loads the configuration, opens the audit log and the vault.
func (a *app) setup(ctx context.Context) (*runEnv, error) {
	c, err := config.Load(a.config)
	if err != nil {
		return nil, err
	}
	if a.vault == "" {
		a.vault = c.Vault
	}
	if a.identity == "" {
		a.identity = c.Identity
	}
	for _, t := range c.Targets {
		for _, f := range append(slices.Clone(t.SSH.KnownHosts), t.SSH.HostCA...) {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("target %s: %w (pin its host key first: keeper trust INSTANCE)", t.Label(), err)
			}
		}
	}
	api, err := a.ec2(ctx, c.Region)
	if err != nil {
		return nil, err
	}
	e := &runEnv{c: c, api: api, audit: a.stderr, closer: io.NopCloser(nil)}
	if c.AuditLog != "" {
		f, err := os.OpenFile(c.AuditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		e.audit, e.closer = f, f
	}
	if e.v, err = a.openVault(false, nil); err != nil {
		e.closer.Close()
		return nil, err
	}
	return e, nil
}

// resolve turns the configuration into targets now, warning about each one left out.
func (a *app) resolve(ctx context.Context, e *runEnv) ([]keeper.Target, []problem) {
	ts, probs, pairs := resolveTargets(ctx, e.c, e.api, e.v, e.pairs)
	e.pairs = pairs
	for _, p := range probs {
		fmt.Fprintf(a.stderr, "%s: warning: not served for now: %v\n", program, p.err)
	}
	return ts, probs
}

func (e *runEnv) keeper(ts []keeper.Target) (*keeper.Keeper, error) {
	return keeper.New(keeper.Options{
		EC2: e.api, Secrets: e.v, Audit: e.audit, Program: program,
		MaxAttemptsPerBoot: e.c.AttemptsPerBoot, Concurrency: e.c.Concurrency,
		Keepalive: e.c.Keepalive.Duration, PollEvery: e.c.PollInterval.Duration,
		RescueProbes: e.c.RescueProbes, RescueProbeEvery: e.c.RescueProbeInterval.Duration,
	}, ts)
}

// statusRows are the engine's rows and one refused row per target not served.
func statusRows(k *keeper.Keeper, probs []problem) []keeper.TargetStatus {
	rows := k.Status()
	for _, p := range probs {
		if !p.kept {
			rows = append(rows, p.status)
		}
	}
	slices.SortStableFunc(rows, func(a, b keeper.TargetStatus) int { return strings.Compare(a.Name, b.Name) })
	return rows
}

func cmdRun(a *app, args []string) error {
	fs := a.flags("run")
	once := fs.Bool("once", false, "one unlock pass over every target, then exit (0 when all are unlocked)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErr("run takes no argument")
	}
	e, err := a.setup(a.ctx)
	if err != nil {
		return err
	}
	defer e.Close()
	ts, probs := a.resolve(a.ctx, e)
	if *once {
		k, err := e.keeper(ts)
		if err != nil {
			return err
		}
		var failed error
		for _, t := range k.Targets() {
			res, err := k.UnlockOnce(a.ctx, t)
			fmt.Fprintf(a.stdout, "%s\t%s\t%s\t%s\n", res.Target, res.InstanceID, res.Outcome, oneLine(res.Reason))
			if err != nil && failed == nil {
				failed = err
			}
		}
		for _, p := range probs {
			fmt.Fprintf(a.stdout, "%s\t%s\t%s\t%s\n", p.status.Name, p.status.InstanceID, keeper.OutcomeRefused, p.status.Reason)
			if failed == nil {
				failed = p.err
			}
		}
		if err := writeStatus(e.c.StatusFile, statusRows(k, probs)); err != nil {
			fmt.Fprintf(a.stderr, "%s: warning: status file: %v\n", program, err)
		}
		return failed
	}
	// Tag groups change (instances launched, terminated, retagged, scaled to zero): they are
	// resolved again every poll_interval, and when the fleet differs the running engine is
	// given the new set in place (SetTargets): the targets that stay keep what the engine
	// knows of them (attempts, boot ids unlocked, rate-limit window, last unlock). SIGHUP
	// does the same at once (after `keeper vault add|remove`).
	resolveEvery := time.NewTicker(e.c.PollInterval.Duration)
	defer resolveEvery.Stop()
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	again := make(chan time.Time, 1)
	go func() {
		for {
			select {
			case <-a.ctx.Done():
				return
			case t := <-resolveEvery.C:
				again <- t
			case <-hup:
				again <- time.Now()
			}
		}
	}()
	return a.serve(e, ts, probs, again, tick.C)
}

// serve runs one engine until a.ctx ends (nil) or it fails; each resolveEvery it resolves
// the fleet again and hands the engine the targets when they changed.
func (a *app) serve(e *runEnv, ts []keeper.Target, probs []problem, resolveEvery, tick <-chan time.Time) error {
	k, err := e.keeper(ts)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "%s: serving %d target(s); status in %s\n", program, len(ts), e.c.StatusFile)
	done := make(chan error, 1)
	go func() { done <- k.Run(a.ctx) }()
	var last []byte
	for {
		select {
		case err := <-done:
			_ = writeStatus(e.c.StatusFile, statusRows(k, probs))
			if errors.Is(err, context.Canceled) || a.ctx.Err() != nil {
				fmt.Fprintf(a.stderr, "%s: stopped\n", program)
				return nil
			}
			if err == nil {
				err = errors.New("the engine stopped")
			}
			return err
		case <-tick:
			rows := statusRows(k, probs)
			var b bytes.Buffer
			_ = keeper.WriteStatusJSON(&b, rows)
			if !bytes.Equal(b.Bytes(), last) {
				if err := writeStatus(e.c.StatusFile, rows); err != nil {
					fmt.Fprintf(a.stderr, "%s: warning: status file: %v\n", program, err)
				}
				last = b.Bytes()
			} else {
				heartbeat(e.c.StatusFile)
			}
		case <-resolveEvery:
			// The vault too: entries added or removed by `keeper vault` since.
			if err := e.v.Reload(); err != nil {
				fmt.Fprintf(a.stderr, "%s: warning: vault not re-read, serving its earlier entries: %v\n", program, err)
			}
			rctx, rcancel := context.WithTimeout(a.ctx, e.c.PollInterval.Duration)
			nts, nprobs := a.resolve(rctx, e)
			rcancel()
			probs = nprobs
			if reflect.DeepEqual(nts, ts) {
				continue
			}
			if err := k.SetTargets(nts); err != nil {
				fmt.Fprintf(a.stderr, "%s: warning: the fleet changed but cannot be served as resolved, serving the earlier one: %v\n", program, err)
				continue
			}
			ts = nts
			fmt.Fprintf(a.stderr, "%s: the fleet changed: serving %d target(s) now\n", program, len(ts))
		}
	}
}

// heartbeat marks the status file as written now although nothing in it changed, so that
// `keeper status` can tell a running keeper's file from a dead one's.
func heartbeat(path string) {
	now := time.Now()
	_ = os.Chtimes(path, now, now)
}

func writeStatus(path string, rows []keeper.TargetStatus) error {
	var b bytes.Buffer
	if err := keeper.WriteStatusJSON(&b, rows); err != nil {
		return err
	}
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return err
	}
	return writeAtomic(path, b.Bytes(), 0o644)
}

func dirOf(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}

func cmdStatus(a *app, args []string) error {
	fs := a.flags("status")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErr("status takes no argument")
	}
	c, err := config.Load(a.config)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(c.StatusFile)
	if err != nil {
		return fmt.Errorf("%w (is keeper run running?)", err)
	}
	var rows []keeper.TargetStatus
	if err := json.Unmarshal(data, &rows); err != nil {
		return fmt.Errorf("%s: %v", c.StatusFile, err)
	}
	// keeper run touches the file every statusEvery: older than staleAfter, nobody does.
	var stale error
	if st, err := os.Stat(c.StatusFile); err == nil {
		if age := time.Since(st.ModTime()); age > staleAfter {
			stale = fmt.Errorf("%s: %w: last written %s ago; keeper run is not running, the states below are as it last saw them", c.StatusFile, errStale, age.Round(time.Second))
		}
	}
	if *asJSON {
		err = keeper.WriteStatusJSON(a.stdout, rows)
	} else {
		err = keeper.WriteStatusTable(a.stdout, rows)
	}
	if err != nil {
		return err
	}
	if stale != nil {
		return stale
	}
	if slices.ContainsFunc(rows, func(r keeper.TargetStatus) bool { return r.State != keeper.StateUnlocked }) {
		return errNotUnlockedQuiet
	}
	return nil
}

// errNotUnlockedQuiet is status's exit code 6 without a message: the table says it.
var errNotUnlockedQuiet = quiet{errNotUnlocked}

type quiet struct{ error }

func (q quiet) Unwrap() error { return q.error }

func cmdRescue(a *app, args []string) error {
	fs := a.flags("rescue")
	force := fs.Bool("force", false, "rescue even when the console shows no passphrase prompt (the instance must still be unreachable)")
	device := fs.String("device", "", "re-attach the volume as this device (default: the one it had); required to resume a rescue that stopped after its detach, when EC2 no longer knows the device")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up after this long")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("rescue INSTANCE")
	}
	e, err := a.setup(a.ctx)
	if err != nil {
		return err
	}
	defer e.Close()
	ts, _ := a.resolve(a.ctx, e)
	k, err := e.keeper(ts)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(k.Targets(), func(t keeper.Target) bool { return t.InstanceID == pos[0] })
	if i < 0 {
		return fmt.Errorf("%s: %w", pos[0], errNoTarget)
	}
	res, err := k.Rescue(a.ctx, k.Targets()[i], keeper.RescueOptions{Force: *force, Device: *device, Timeout: *timeout})
	fmt.Fprintf(a.stdout, "%s\t%s\t%s\t%s\n", res.Target, res.InstanceID, res.Outcome, oneLine(res.Reason))
	return err
}
