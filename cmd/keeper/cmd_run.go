package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/cloudluks/cloudluks/keeper"
	"github.com/cloudluks/cloudluks/keeper/config"
	"github.com/cloudluks/cloudluks/keeper/vault"
)

// statusEvery is how often run rewrites the status file.
const statusEvery = 2 * time.Second

// engine loads the configuration, opens the vault and makes the Keeper: everything checked
// before the first connection.
func (a *app) engine(ctx context.Context) (*keeper.Keeper, *config.Config, *vault.Vault, io.Closer, error) {
	c, err := config.Load(a.config)
	if err != nil {
		return nil, nil, nil, nil, err
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
				return nil, nil, nil, nil, fmt.Errorf("target %s: %w (pin its host key first: keeper trust INSTANCE)", t.Label(), err)
			}
		}
	}
	api, err := a.ec2(ctx, c.Region)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var audit io.Writer = a.stderr
	var closer io.Closer = io.NopCloser(nil)
	if c.AuditLog != "" {
		f, err := os.OpenFile(c.AuditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		audit, closer = f, f
	}
	v, err := a.openVault(false, nil)
	if err != nil {
		closer.Close()
		return nil, nil, nil, nil, err
	}
	ts, err := targets(ctx, c, api, v)
	if err != nil {
		v.Close()
		closer.Close()
		return nil, nil, nil, nil, err
	}
	k, err := keeper.New(keeper.Options{
		EC2: api, Secrets: v, Audit: audit, Program: program,
		MaxAttemptsPerBoot: c.AttemptsPerBoot, Concurrency: c.Concurrency,
		Keepalive: c.Keepalive.Duration, PollEvery: c.PollInterval.Duration,
	}, ts)
	if err != nil {
		v.Close()
		closer.Close()
		return nil, nil, nil, nil, err
	}
	return k, c, v, closer, nil
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
	k, c, v, closer, err := a.engine(a.ctx)
	if err != nil {
		return err
	}
	defer closer.Close()
	defer v.Close()
	if *once {
		var failed error
		for _, t := range k.Targets() {
			res, err := k.UnlockOnce(a.ctx, t)
			fmt.Fprintf(a.stdout, "%s\t%s\t%s\t%s\n", res.Target, res.InstanceID, res.Outcome, oneLine(res.Reason))
			if err != nil && failed == nil {
				failed = err
			}
		}
		if err := writeStatus(c.StatusFile, k.Status()); err != nil {
			fmt.Fprintf(a.stderr, "%s: warning: status file: %v\n", program, err)
		}
		return failed
	}
	fmt.Fprintf(a.stderr, "%s: serving %d target(s); status in %s\n", program, len(k.Targets()), c.StatusFile)
	done := make(chan error, 1)
	go func() { done <- k.Run(a.ctx) }()
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	var last []byte
	for {
		select {
		case err := <-done:
			_ = writeStatus(c.StatusFile, k.Status())
			if errors.Is(err, context.Canceled) || a.ctx.Err() != nil {
				fmt.Fprintf(a.stderr, "%s: stopped\n", program)
				return nil
			}
			return err
		case <-tick.C:
			rows := k.Status()
			var b bytes.Buffer
			_ = keeper.WriteStatusJSON(&b, rows)
			if !bytes.Equal(b.Bytes(), last) {
				if err := writeStatus(c.StatusFile, rows); err != nil {
					fmt.Fprintf(a.stderr, "%s: warning: status file: %v\n", program, err)
				}
				last = b.Bytes()
			}
		}
	}
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
	if st, err := os.Stat(c.StatusFile); err == nil {
		if age := time.Since(st.ModTime()); age > 2*c.PollInterval.Duration+time.Minute {
			fmt.Fprintf(a.stderr, "%s: warning: %s was written %s ago: is keeper run still running?\n", program, c.StatusFile, age.Round(time.Second))
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
	device := fs.String("device", "", "re-attach the volume as this device (default: the one it had)")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up after this long")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("rescue INSTANCE")
	}
	k, _, v, closer, err := a.engine(a.ctx)
	if err != nil {
		return err
	}
	defer closer.Close()
	defer v.Close()
	i := slices.IndexFunc(k.Targets(), func(t keeper.Target) bool { return t.InstanceID == pos[0] })
	if i < 0 {
		return fmt.Errorf("%s: %w", pos[0], errNoTarget)
	}
	res, err := k.Rescue(a.ctx, k.Targets()[i], keeper.RescueOptions{Force: *force, Device: *device, Timeout: *timeout})
	fmt.Fprintf(a.stdout, "%s\t%s\t%s\t%s\n", res.Target, res.InstanceID, res.Outcome, oneLine(res.Reason))
	return err
}
