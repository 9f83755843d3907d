package keeper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/keeper/wire"
	"github.com/cloudluks/cloudluks/luks"
)

// targetState is the keeper's memory of one target; it lives only in memory.
type targetState struct {
	status TargetStatus
	// unlocked holds the boot ids seen unlocked (by this keeper or another: mapped in a
	// State, or an already-unlocked answer), oldest first, at most maxBootsRemembered.
	unlocked []string
	attempts map[string]int // key derivations per boot id (the same boots remembered)
	recent   []time.Time    // key derivations for this target, whatever the boot id
	stuck    bool           // the console showed a prompt since the last connection
	// mapped is the boot id of the last State that showed the volume mapped, "" once a
	// later State showed it unmapped: Rescue never detaches on the strength of
	// unreachability alone what was last seen in use.
	mapped string
	// uuid is the LUKS UUID the memory is about: a vault entry given a new one (the volume
	// reformatted, a new header restored) is another volume as far as the guards go.
	uuid string
}

// UnlockOnce makes one pass over t: check EC2, dial, check the instance, and unlock if
// needed. A refusal returns a Result with OutcomeRefused and an error matching ErrRefused
// and the check's sentinel; an instance already unlocked returns OutcomeAlreadyUnlocked
// and no error. t need not be one of the targets served; the keeper remembers the boot ids
// and attempts of every target by its instance ID and volume either way.
func (k *Keeper) UnlockOnce(ctx context.Context, t Target) (Result, error) {
	if err := k.validate(&t); err != nil {
		return Result{Target: t.label(), Outcome: OutcomeFailed, Reason: err.Error()}, err
	}
	select {
	case k.sem <- struct{}{}:
	case <-ctx.Done():
		return Result{Target: t.label(), Outcome: OutcomeFailed, Reason: ctx.Err().Error()}, ctx.Err()
	}
	defer func() { <-k.sem }()
	// Keepalives even for one pass: a peer silent after the handshake must not hold it.
	c, res, err := k.connect(ctx, &t, true)
	if err != nil {
		return res, err
	}
	defer c.Close()
	return k.pass(ctx, &t, c, res)
}

// connect runs the EC2 checks, then dials. The EC2 checks come first because the address
// comes from EC2, and because a volume attached elsewhere should not even be dialled.
func (k *Keeper) connect(ctx context.Context, t *Target, keepalive bool) (*sshConn, Result, error) {
	res := Result{Target: t.label(), InstanceID: t.InstanceID, VolumeID: t.VolumeID, Outcome: OutcomeFailed}
	addr := t.SSH.Addr
	if k.opts.NoEC2 {
		k.decide(t, "", "ec2", "skipped", "NoEC2")
	} else {
		ec2Addr, err := k.checkEC2(ctx, t)
		if err != nil {
			return nil, k.finish(t, res, "", "ec2", err), targetErr(t, err)
		}
		if addr == "" {
			addr = ec2Addr
		}
	}
	res.Addr = addr
	tr := transport{dialTimeout: k.opts.DialTimeout}
	if keepalive {
		tr.keepalive = k.opts.Keepalive
	}
	c, err := tr.dial(ctx, &t.SSH, addr, t.InstanceID)
	if err != nil {
		return nil, k.finish(t, res, "", "connect", err), targetErr(t, err)
	}
	k.decide(t, "", "connect", "ok", "host key pinned, "+addr)
	k.mu.Lock()
	k.stateOf(t).stuck = false
	k.mu.Unlock()
	return c, res, nil
}

// checkEC2 asks EC2 whether the instance runs and the volume is attached to it, and
// returns the address to dial.
func (k *Keeper) checkEC2(ctx context.Context, t *Target) (string, error) {
	out, err := k.opts.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{t.InstanceID}})
	if isNotFound(err) {
		return "", fmt.Errorf("%w: EC2 does not know %s", ErrNotRunning, t.InstanceID)
	}
	if err != nil {
		return "", fmt.Errorf("ec2: describe %s: %w", t.InstanceID, err)
	}
	var inst *types.Instance
	for _, r := range out.Reservations {
		for i := range r.Instances {
			if deref(r.Instances[i].InstanceId) == t.InstanceID {
				inst = &r.Instances[i]
			}
		}
	}
	if inst == nil {
		return "", fmt.Errorf("%w: EC2 does not know %s", ErrNotRunning, t.InstanceID)
	}
	if inst.State == nil || inst.State.Name != types.InstanceStateNameRunning {
		st := "unknown"
		if inst.State != nil {
			st = string(inst.State.Name)
		}
		return "", fmt.Errorf("%w: %s is %s", ErrNotRunning, t.InstanceID, st)
	}
	vout, err := k.opts.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{t.VolumeID}})
	if isNotFound(err) {
		return "", fmt.Errorf("%w: EC2 does not know %s", ErrNotAttached, t.VolumeID)
	}
	if err != nil {
		return "", fmt.Errorf("ec2: describe %s: %w", t.VolumeID, err)
	}
	var where []string
	for _, v := range vout.Volumes {
		for _, a := range v.Attachments {
			if deref(a.InstanceId) == t.InstanceID && a.State == types.VolumeAttachmentStateAttached {
				k.decide(t, "", "ec2", "ok", t.InstanceID+" running, "+t.VolumeID+" attached to it")
				return ec2Address(inst, &t.SSH), nil
			}
			where = append(where, deref(a.InstanceId)+" ("+string(a.State)+")")
		}
	}
	if len(where) == 0 {
		where = []string{"nothing"}
	}
	return "", fmt.Errorf("%w: %s is attached to %s, not to %s", ErrNotAttached, t.VolumeID, strings.Join(where, ", "), t.InstanceID)
}

func ec2Address(inst *types.Instance, c *SSHConfig) string {
	ip := deref(inst.PublicIpAddress)
	if ip == "" || c.PrivateIP {
		ip = deref(inst.PrivateIpAddress)
	}
	port := c.Port
	if port == 0 {
		port = DefaultPort
	}
	if ip == "" {
		return ""
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

func isNotFound(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && strings.HasSuffix(ae.ErrorCode(), ".NotFound")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// pass speaks to the instance over c: state, checks, header, local unlock, key. res
// carries what connect learned.
func (k *Keeper) pass(ctx context.Context, t *Target, c *sshConn, res Result) (Result, error) {
	start := k.opts.Now()
	ctx, cancel := context.WithTimeout(ctx, k.opts.RequestTimeout)
	defer cancel()
	sess, cl, err := k.openSession(ctx, t, c)
	if err != nil {
		return k.finish(t, res, "", "session", err), targetErr(t, err)
	}
	defer sess.Close()
	r, err := k.converse(ctx, t, cl, &res)
	r.Duration = k.opts.Now().Sub(start)
	return r, err
}

type session struct {
	close func()
}

func (s *session) Close() { s.close() }

// openSession starts the serve command and greets it. The session's pipes cannot be
// interrupted and closing the session alone does not fail a read that waits for a silent
// peer, so the whole connection is closed when ctx ends before the session is.
func (k *Keeper) openSession(ctx context.Context, t *Target, c *sshConn) (*session, *wire.Client, error) {
	s, err := c.client.NewSession()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: session: %v", ErrUnreachable, err)
	}
	stdin, err1 := s.StdinPipe()
	stdout, err2 := s.StdoutPipe()
	stderr := &tailBuffer{max: 2048}
	s.Stderr = stderr
	if err := errors.Join(err1, err2); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("session: %w", err)
	}
	cmd := t.SSH.Command
	if cmd == "" {
		cmd = DefaultCommand
	}
	if err := s.Start(cmd); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("%w: start %q: %v", ErrUnreachable, cmd, err)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	sess := &session{close: func() { stop(); stdin.Close(); s.Close() }}
	cl := wire.NewClient(pipeRW{stdout, stdin}, k.opts.Program)
	if _, err := cl.Hello(ctx); err != nil {
		// Stdout's EOF can come before the last of stderr: give the command's exit (after
		// which the session has copied all of stderr) a moment.
		exited := make(chan struct{})
		go func() { _ = s.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(time.Second):
		}
		sess.Close()
		return nil, nil, fmt.Errorf("%w: hello: %w%s", ErrProtocol, errOr(ctx, err), stderr.said())
	}
	return sess, cl, nil
}

func errOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// tailBuffer keeps the last max bytes the instance side wrote to stderr: when it refuses
// to speak the protocol (a wrong forced command, a missing binary), that is the only
// explanation there is. serve writes no secret to stderr.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

// said returns ` (instance said: …)` or "".
func (t *tailBuffer) said() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := oneLine(string(t.b)); s != "" {
		return " (instance said: " + s + ")"
	}
	return ""
}

type pipeRW struct {
	io.Reader
	io.Writer
}

// converse runs the checks of the package doc, steps 3 to 6, and sends the key.
func (k *Keeper) converse(ctx context.Context, t *Target, cl *wire.Client, res *Result) (Result, error) {
	fail := func(boot, step string, err error) (Result, error) {
		return k.finish(t, *res, boot, step, err), targetErr(t, err)
	}
	st, err := cl.State(ctx)
	if err != nil {
		return fail("", "state", fmt.Errorf("%w: state: %w", ErrProtocol, errOr(ctx, err)))
	}
	boot := st.BootID
	res.BootID = boot
	k.seen(t, boot)
	k.noteMapped(t, boot, st.Mapped)
	if st.Mapped && boot != "" {
		// Whoever opened it, this boot has been unlocked: closing it again is on purpose.
		k.markUnlocked(t, boot, false)
	}
	var mism []string
	if st.VolumeID != "" && st.VolumeID != t.VolumeID {
		mism = append(mism, "volume "+st.VolumeID)
	}
	if t.Mapping != "" && st.Mapping != t.Mapping {
		mism = append(mism, "mapping "+strconv.Quote(st.Mapping))
	}
	if t.MountPoint != "" && st.MountPoint != t.MountPoint {
		mism = append(mism, "mount point "+strconv.Quote(st.MountPoint))
	}
	if len(mism) > 0 {
		return fail(boot, "target", fmt.Errorf("%w: instance serves %s", ErrTargetMismatch, strings.Join(mism, ", ")))
	}
	if want := ebs.NVMeSerial(t.VolumeID); st.Serial != want {
		got := st.Serial
		if got == "" {
			got = "no serial (" + st.Problem + ")"
		}
		return fail(boot, "serial", fmt.Errorf("%w: device %s reports %s, want %s", ErrSerialMismatch, st.Device, got, want))
	}
	k.decide(t, boot, "serial", "ok", st.Device+" is "+st.Serial)
	if st.Mapped && st.Mounted {
		res.MountedAt = st.MountPoint
		res.Outcome = OutcomeAlreadyUnlocked
		return k.finish(t, *res, boot, "state", nil), nil
	}
	if st.Mapped {
		// Mapped, not mounted: an unlock cut short. The instance mounts the existing
		// mapping once the key checks out, so the pass goes on; whatever stops it is
		// reported as this state, not as unlocked.
		k.decide(t, boot, "state", "mapped-not-mounted", "mapped but not mounted at "+st.MountPoint)
		inner := fail
		fail = func(boot, step string, err error) (Result, error) {
			return inner(boot, step, fmt.Errorf("%w at %s: %w", ErrNotMounted, st.MountPoint, err))
		}
	}
	if !strings.EqualFold(st.LUKSUUID, t.LUKSUUID) {
		return fail(boot, "uuid", fmt.Errorf("%w: instance reports %q, vault has %q", ErrUUIDMismatch, st.LUKSUUID, t.LUKSUUID))
	}
	if err := k.checkBoot(t, boot, st.Mapped); err != nil {
		return fail(boot, "boot", err)
	}
	k.decide(t, boot, "boot", "ok", "")

	raw, err := cl.Header(ctx)
	if err != nil {
		return fail(boot, "header", fmt.Errorf("%w: header: %w", ErrProtocol, errOr(ctx, err)))
	}
	// The header bytes end at the last key slot's material, not at the device's end:
	// hide the size so that the device-size check does not refuse them.
	hdrDev := struct{ io.ReaderAt }{bytes.NewReader(raw)}
	// LUKS1 or LUKS2 (what current distributions make): the header is loaded, validated
	// and unlocked here, at the keeper's site, either way.
	h, err := luks.Load(hdrDev)
	if err != nil {
		return fail(boot, "header", fmt.Errorf("%w: header: %w", ErrProtocol, err))
	}
	seg, err := h.DataSegment()
	if err != nil {
		return fail(boot, "header", fmt.Errorf("%w: header: %w", ErrProtocol, err))
	}
	if !strings.EqualFold(seg.UUID, t.LUKSUUID) {
		return fail(boot, "uuid", fmt.Errorf("%w: header has %q, vault has %q", ErrUUIDMismatch, seg.UUID, t.LUKSUUID))
	}
	k.decide(t, boot, "uuid", "ok", seg.UUID)

	k.countAttempt(t, boot)
	pass, err := k.opts.Secrets.Passphrase(t.VolumeID)
	if err != nil || len(pass) == 0 {
		clear(pass)
		switch {
		case err == nil:
			err = fmt.Errorf("%w %s: the vault entry is empty", ErrNoPassphrase, t.VolumeID)
		case !errors.Is(err, ErrNoPassphrase):
			err = fmt.Errorf("%w %s: %w", ErrNoPassphrase, t.VolumeID, err)
		}
		return fail(boot, "passphrase", err)
	}
	_, vk, _, err := luks.UnlockAny(ctx, hdrDev, pass, luks.UnlockOptions{})
	clear(pass)
	if err != nil {
		if errors.Is(err, luks.ErrWrongPassphrase) {
			err = fmt.Errorf("%w: %w", ErrWrongPassphrase, err)
		}
		return fail(boot, "passphrase", err)
	}
	k.decide(t, boot, "passphrase", "ok", "header opened locally")
	// The audit log says the key left before it does: a crash or a cut connection in
	// the middle must not leave a key sent that no line accounts for.
	k.decide(t, boot, "send", "sending", "volume key for "+seg.UUID+" to "+res.Addr)
	r, err := cl.Unlock(ctx, wire.UnlockRequest{BootID: boot, LUKSUUID: seg.UUID}, vk.Bytes())
	vk.Wipe()
	if err != nil {
		return fail(boot, "send", fmt.Errorf("%w: unlock: %w", ErrProtocol, errOr(ctx, err)))
	}
	res.MountedAt, res.HooksOK = r.Mounted, r.HooksOK
	switch r.Status {
	case wire.StatusUnlocked:
		res.Outcome = OutcomeUnlocked
		k.markUnlocked(t, boot, true)
		k.noteMapped(t, boot, true)
		res.Reason = oneLine(r.Reason)
		if !r.HooksOK {
			res.Reason = "hooks or services failed: " + res.Reason
		}
	case wire.StatusAlreadyUnlocked:
		res.Outcome = OutcomeAlreadyUnlocked
		res.Reason = oneLine(r.Reason)
		k.markUnlocked(t, boot, false)
		k.noteMapped(t, boot, true)
	default:
		return fail(boot, "result", fmt.Errorf("%w: %s", ErrInstanceRefused, oneLine(r.Reason)))
	}
	return k.finish(t, *res, boot, "result", nil), nil
}

// maxBootsRemembered bounds the boot ids remembered per target (unlocked ones, and
// attempts): an instance reporting ever new boot ids cannot grow the keeper's memory, and
// the per-target rate limit holds whatever it reports.
const maxBootsRemembered = 64

// checkBoot refuses a boot seen unlocked before whose volume is closed again, a boot
// tried too often, and a target whose key derivations, whatever boot ids it reported,
// exceed the rate limit.
func (k *Keeper) checkBoot(t *Target, boot string, mapped bool) error {
	if boot == "" {
		return fmt.Errorf("%w: the instance reports no boot id", ErrProtocol)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.stateOf(t)
	if !mapped && slices.Contains(s.unlocked, boot) {
		return fmt.Errorf("%w: boot %s, and the volume is closed again", ErrBootUnlocked, boot)
	}
	if n := s.attempts[boot]; n >= k.opts.MaxAttemptsPerBoot {
		return fmt.Errorf("%w: %d of %d for boot %s", ErrAttempts, n, k.opts.MaxAttemptsPerBoot, boot)
	}
	s.recent = k.recentAttempts(s)
	if len(s.recent) >= k.opts.MaxAttemptsPerWindow {
		return fmt.Errorf("%w: %d for this target in the last %v (limit %d, whatever the boot id)",
			ErrAttempts, len(s.recent), k.opts.AttemptWindow, k.opts.MaxAttemptsPerWindow)
	}
	return nil
}

// recentAttempts drops the attempts older than the window; k.mu held.
func (k *Keeper) recentAttempts(s *targetState) []time.Time {
	cut := k.opts.Now().Add(-k.opts.AttemptWindow)
	i := 0
	for i < len(s.recent) && !s.recent[i].After(cut) {
		i++
	}
	return s.recent[i:]
}

func (k *Keeper) countAttempt(t *Target, boot string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.stateOf(t)
	if _, ok := s.attempts[boot]; !ok && len(s.attempts) >= maxBootsRemembered {
		// Forget the boot with the fewest attempts: the rate limit still counts them.
		var drop string
		for b, n := range s.attempts {
			if drop == "" || n < s.attempts[drop] {
				drop = b
			}
		}
		delete(s.attempts, drop)
	}
	s.attempts[boot]++
	s.recent = append(k.recentAttempts(s), k.opts.Now())
	s.status.Attempts = s.attempts[boot]
}

// markUnlocked remembers boot as unlocked; byUs also records the time for the status.
func (k *Keeper) markUnlocked(t *Target, boot string, byUs bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.stateOf(t)
	if !slices.Contains(s.unlocked, boot) {
		s.unlocked = append(s.unlocked, boot)
		if len(s.unlocked) > maxBootsRemembered {
			s.unlocked = s.unlocked[1:]
		}
	}
	if byUs {
		s.status.LastUnlock = k.opts.Now()
	}
}

func (k *Keeper) seen(t *Target, boot string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.stateOf(t)
	s.status.BootID = boot
	s.status.Attempts = s.attempts[boot]
	s.status.LastSeen = k.opts.Now()
}

// noteMapped remembers whether the last State showed the volume mapped.
func (k *Keeper) noteMapped(t *Target, boot string, mapped bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.stateOf(t)
	s.mapped = ""
	if mapped {
		s.mapped = boot
		if s.mapped == "" {
			s.mapped = "?"
		}
	}
}

func (k *Keeper) lastMapped(t *Target) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stateOf(t).mapped
}

// goneState is the memory of a target not served, and when it stopped being served.
type goneState struct {
	s     *targetState
	since time.Time
}

func newTargetState(t *Target) *targetState {
	return &targetState{status: TargetStatus{Name: t.label(), InstanceID: t.InstanceID, VolumeID: t.VolumeID, State: StateUnknown},
		attempts: map[string]int{}, uuid: t.LUKSUUID}
}

// stateOf returns the memory of t. A pass never renames a row: a target's name is set by
// setTargets, and a pass still holding an earlier name (a rescue under way while the
// target was renamed) files under the current one. A target SetTargets dropped has its
// memory among the gone ones, which no status shows; a target never served (given to
// UnlockOnce or Rescue alone) gets a row under its name. k.mu held.
func (k *Keeper) stateOf(t *Target) *targetState {
	if s, ok := k.state[t.key()]; ok {
		return s
	}
	if g := k.gone[t.key()]; g != nil {
		return g.s
	}
	s := newTargetState(t)
	k.state[t.key()] = s
	return s
}

// finish records the end of a pass in the audit log and the status, and fills res.
func (k *Keeper) finish(t *Target, res Result, boot, step string, err error) Result {
	state := StateUnlocked
	decision := string(res.Outcome)
	switch {
	case err == nil:
		res.Reason = oneLine(res.Reason)
	case errors.Is(err, ErrNotMounted):
		res.Outcome, state, decision = OutcomeMappedNotMounted, StateMappedNotMounted, "mapped-not-mounted"
	case errors.Is(err, ErrNotRunning), errors.Is(err, ErrUnreachable), errors.Is(err, context.DeadlineExceeded):
		res.Outcome, state, decision = OutcomeFailed, StateUnreachable, "error"
	case errors.Is(err, ErrRefused), errors.Is(err, ErrHostKeyUnknown), errors.Is(err, ErrHostKeyChanged),
		errors.Is(err, ErrWrongPassphrase), errors.Is(err, ErrNoPassphrase), errors.Is(err, ErrAuth):
		res.Outcome, state, decision = OutcomeRefused, StateRefused, "refused"
	default:
		res.Outcome, state, decision = OutcomeFailed, StateNeedsUnlock, "error"
	}
	if err != nil {
		res.Reason = oneLine(err.Error())
	}
	k.decide(t, boot, step, decision, res.Reason)
	k.mu.Lock()
	s := k.stateOf(t)
	if state == StateUnreachable && s.stuck {
		// Still unreachable, still at the prompt: stuck says more than unreachable.
		state, res.Reason = StateStuck, "console shows a passphrase prompt; "+res.Reason
	}
	s.status.State = state
	s.status.Reason = res.Reason
	if res.Addr != "" {
		s.status.Addr = res.Addr
	}
	k.mu.Unlock()
	return res
}

func (k *Keeper) decide(t *Target, boot, step, decision, detail string) {
	k.audit.log(auditEntry{Target: k.labelOf(t), Instance: t.InstanceID, Volume: t.VolumeID, BootID: boot,
		Step: step, Decision: decision, Detail: oneLine(detail)})
}

// labelOf is t's name as the keeper serves it now: its status row's (SetTargets renames
// it while a watcher, a pass or a rescue holding an older copy of t goes on), else t's own.
func (k *Keeper) labelOf(t *Target) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.state[t.key()]; ok {
		return s.status.Name
	}
	return t.label()
}
