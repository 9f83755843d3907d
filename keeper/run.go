package keeper

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/cloudluks/cloudluks/keeper/consolekeys"
)

// Run serves every target until ctx ends, then closes its connections and returns
// ctx.Err(). Per target it keeps one SSH connection with keepalives; each time a
// connection is made it runs one pass (UnlockOnce's checks; a locked volume on a boot
// not yet unlocked is unlocked), then waits: a dropped connection (a reboot, a stop, the
// network) is redialled with a capped backoff and passed over again, so a new boot id
// with the volume closed is unlocked as soon as sshd answers. Every PollEvery the EC2
// state is checked again (a stop, a detach, a new address after a stop/start) and the
// instance is asked for its state over the open connection. An instance that stays
// unreachable while EC2 runs it has its console read: a passphrase prompt there marks it
// stuck (and, for AutoRescue targets, has it rescued). SetTargets while Run runs changes
// what it serves without a restart (see SetTargets).
func (k *Keeper) Run(ctx context.Context) error {
	type watcher struct {
		t      Target
		cancel context.CancelFunc
		done   chan struct{}
	}
	// A watcher being replaced (its target changed or dropped) is waited for before its
	// key gets a new one, and without holding up the others: a rescue it runs is finished
	// first (see watch).
	watchers, stopping := map[string]*watcher{}, map[string]*watcher{}
	exited, quit := make(chan string), make(chan struct{})
	defer func() {
		close(quit)
		for _, w := range watchers {
			w.cancel()
		}
		for _, w := range watchers {
			<-w.done
		}
		for _, w := range stopping {
			<-w.done
		}
	}()
	for {
		k.mu.Lock()
		targets, changed := slices.Clone(k.targets), k.changed
		k.mu.Unlock()
		want := map[string]Target{}
		for _, t := range targets {
			want[t.key()] = t
		}
		for key, w := range watchers {
			if t, ok := want[key]; ok && sameButName(t, w.t) {
				// A rename (a retag into another group) changes the row's name only,
				// which setTargets did: the watcher's connection and pass go on.
				continue
			}
			w.cancel()
			delete(watchers, key)
			stopping[key] = w
			go func() {
				<-w.done
				select {
				case exited <- key:
				case <-quit:
				}
			}()
		}
		for _, t := range targets {
			key := t.key()
			if watchers[key] != nil || stopping[key] != nil {
				continue
			}
			wctx, cancel := context.WithCancel(ctx)
			w := &watcher{t: t, cancel: cancel, done: make(chan struct{})}
			watchers[key] = w
			go func() {
				defer close(w.done)
				k.watch(wctx, ctx, &w.t)
			}()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case key := <-exited:
			delete(stopping, key)
		}
	}
}

// sameButName reports whether a and b differ in nothing a watcher acts on.
func sameButName(a, b Target) bool {
	a.Name, b.Name = "", ""
	return reflect.DeepEqual(a, b)
}

// watch is Run's loop for one target, until ctx ends. A rescue it starts makes its checks
// under ctx and runs from its detach on under runCtx (Run's own): a rescue stopped between
// its detach and its attach, because SetTargets changed or dropped the target, would
// leave the volume detached; one stopped before its detach has changed nothing.
func (k *Keeper) watch(ctx, runCtx context.Context, t *Target) {
	back := &backoff{min: k.opts.ReconnectMin, max: k.opts.ReconnectMax}
	var lastConsole time.Time
	for ctx.Err() == nil {
		c, err := k.connectAndPass(ctx, t)
		if c == nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, ErrNoConnection) && !errors.Is(err, ErrJumpHost) && !k.opts.NoEC2 && k.opts.Now().Sub(lastConsole) >= k.opts.PollEvery {
				lastConsole = k.opts.Now()
				k.checkStuck(ctx, runCtx, t)
			}
			if sleepCtx(ctx, back.next()) != nil {
				return
			}
			continue
		}
		back.reset()
		k.hold(ctx, t, c)
		c.Close()
		// A connection that just dropped is most often a reboot: give sshd a moment.
		if sleepCtx(ctx, back.next()) != nil {
			return
		}
	}
}

// connectAndPass dials and runs one pass under the concurrency bound. It returns the
// connection if it is still usable (the pass succeeded or refused), nil otherwise.
func (k *Keeper) connectAndPass(ctx context.Context, t *Target) (*sshConn, error) {
	select {
	case k.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-k.sem }()
	c, res, err := k.connect(ctx, t, true)
	if err != nil {
		return nil, err
	}
	_, err = k.pass(ctx, t, c, res)
	if err != nil && !errors.Is(err, ErrRefused) && !errors.Is(err, ErrWrongPassphrase) && !errors.Is(err, ErrNoPassphrase) {
		c.Close()
		return nil, err
	}
	return c, nil
}

// hold waits on an open connection until it drops, ctx ends, or the EC2 backstop says it
// should be redialled; every PollEvery it makes another pass over it.
func (k *Keeper) hold(ctx context.Context, t *Target, c *sshConn) {
	tick := time.NewTicker(k.opts.PollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.Dead():
			k.decide(t, "", "connect", "error", "connection to "+c.addr+" dropped")
			k.mu.Lock()
			s := k.stateOf(t)
			s.status.State, s.status.Reason = StateUnreachable, "connection dropped"
			k.mu.Unlock()
			return
		case <-tick.C:
		}
		if !k.opts.NoEC2 {
			addr, err := k.checkEC2(ctx, t)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil && !errors.Is(err, ErrRefused):
				// An API error (throttling, a 5xx) says nothing about the instance, whose
				// connection is still up: keep it, and ask again at the next poll.
				k.decide(t, "", "ec2", "error", err.Error()+" (connection kept)")
			case err != nil:
				k.finish(t, Result{Target: t.label(), InstanceID: t.InstanceID, VolumeID: t.VolumeID}, "", "ec2", err)
				return
			case t.SSH.Addr == "" && addr != c.addr:
				k.decide(t, "", "ec2", "ok", "address changed from "+c.addr+" to "+addr)
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		res := Result{Target: t.label(), InstanceID: t.InstanceID, VolumeID: t.VolumeID, Addr: c.addr, Outcome: OutcomeFailed}
		select {
		case k.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		_, err := k.pass(ctx, t, c, res)
		<-k.sem
		if err != nil && !errors.Is(err, ErrRefused) && !errors.Is(err, ErrWrongPassphrase) && !errors.Is(err, ErrNoPassphrase) {
			return
		}
	}
}

// checkStuck reads the console of an unreachable instance and marks it stuck if the
// current boot's output ends waiting at a passphrase prompt.
func (k *Keeper) checkStuck(ctx, runCtx context.Context, t *Target) {
	stuck, err := k.consoleStuck(ctx, t)
	if err != nil {
		k.decide(t, "", "console", "error", err.Error())
		return
	}
	if !stuck {
		return
	}
	k.decide(t, "", "console", "stuck", "console shows a passphrase prompt")
	k.mu.Lock()
	s := k.stateOf(t)
	s.status.State, s.status.Reason = StateStuck, "console shows a passphrase prompt"
	s.stuck = true
	k.mu.Unlock()
	// A watcher stopping (its target dropped or changed) starts no rescue; one that stops
	// during the rescue's checks ends it there (see rescue).
	if t.AutoRescue && ctx.Err() == nil {
		_, _ = k.rescue(ctx, runCtx, *t, RescueOptions{})
	}
}

// consoleStuck reads the instance's console through EC2 and applies consolekeys.StuckPrompt,
// the one stuck-prompt rule Run and Rescue share.
func (k *Keeper) consoleStuck(ctx context.Context, t *Target) (bool, error) {
	out, err := k.opts.EC2.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(t.InstanceID), Latest: aws.Bool(true)})
	if err != nil {
		return false, err
	}
	text, err := consolekeys.Decode(aws.ToString(out.Output))
	if err != nil {
		return false, err
	}
	return consolekeys.StuckPrompt(text) != nil, nil
}

// backoff doubles from min up to max; the comparison happens before the doubling, so it
// never overflows whatever max is.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur <= 0 {
		b.cur = b.min
		return b.cur
	}
	if b.cur > b.max/2 {
		b.cur = b.max
	} else {
		b.cur *= 2
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
