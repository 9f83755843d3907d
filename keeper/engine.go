package keeper

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// targetState is the keeper's memory of one target; it lives only in memory.
type targetState struct {
	status   TargetStatus
	unlocked string         // boot id this keeper unlocked last
	attempts map[string]int // key sends per boot id
}

// RescueOptions say how far Rescue may go.
type RescueOptions struct {
	// Force rescues even when the console shows no passphrase prompt (the instance must
	// still be unreachable over SSH).
	Force bool
	// Device is the device name to re-attach the volume as ("" = the one it had).
	Device string
	// Timeout bounds the whole rescue (0 = 15 minutes).
	Timeout time.Duration
}

// UnlockOnce makes one pass over t: dial, check, and unlock if needed. A refusal returns
// a Result with OutcomeRefused and an error matching ErrRefused and the check's sentinel;
// an instance already unlocked returns OutcomeAlreadyUnlocked and no error.
func (k *Keeper) UnlockOnce(ctx context.Context, t Target) (Result, error) {
	if err := k.validate(&t); err != nil {
		return Result{Target: t.label(), Outcome: OutcomeFailed, Reason: err.Error()}, err
	}
	return k.unlockOnce(ctx, &t)
}

func (k *Keeper) unlockOnce(ctx context.Context, t *Target) (Result, error) {
	res := Result{Target: t.label(), InstanceID: t.InstanceID, VolumeID: t.VolumeID, Outcome: OutcomeFailed}
	err := errors.New("not implemented yet")
	res.Reason = err.Error()
	return res, targetErr(t, err)
}

// Run serves every target until ctx ends, then closes its connections and returns
// ctx.Err().
func (k *Keeper) Run(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// Rescue frees an instance stuck at a boot-time passphrase prompt: it detaches the
// encrypted volume, reboots the instance, waits for it to come up, re-attaches the volume
// and unlocks it. It refuses (ErrNotStuck) unless the instance is unreachable over SSH and
// its console shows a passphrase prompt (or opts.Force), and it never detaches a volume
// mounted on an instance it can reach (ErrInUse).
func (k *Keeper) Rescue(ctx context.Context, t Target, opts RescueOptions) (Result, error) {
	if err := k.validate(&t); err != nil {
		return Result{Target: t.label(), Outcome: OutcomeFailed}, err
	}
	return Result{Target: t.label(), Outcome: OutcomeFailed}, targetErr(&t, fmt.Errorf("rescue: not implemented yet"))
}
