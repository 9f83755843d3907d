package keeper

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// State is what the keeper last learned about a target.
type State string

// The states of a target, as `keeper status` prints them.
const (
	StateUnknown     State = "unknown"      // not contacted yet
	StateUnlocked    State = "unlocked"     // mapped and mounted on the current boot
	StateNeedsUnlock State = "needs-unlock" // reachable, locked, checks pending or passed
	StateUnreachable State = "unreachable"  // no SSH session (down, booting, network)
	StateStuck       State = "stuck"        // unreachable and its console shows a passphrase prompt
	StateRefused     State = "refused"      // a check failed; Reason says which
	// StateMappedNotMounted: the volume is mapped on the instance but not mounted (an
	// unlock cut short) and the keeper could not finish it; Reason says why.
	StateMappedNotMounted State = "mapped-not-mounted"
)

// Outcome is how one unlock pass ended.
type Outcome string

// The outcomes of UnlockOnce.
const (
	OutcomeUnlocked        Outcome = "unlocked"         // this keeper sent the key and the instance mounted
	OutcomeAlreadyUnlocked Outcome = "already-unlocked" // mapped already (another keeper, or earlier)
	OutcomeRefused         Outcome = "refused"          // a check failed; nothing was sent
	OutcomeFailed          Outcome = "failed"           // unreachable, protocol or EC2 error
	// OutcomeMappedNotMounted: mapped but not mounted, and this pass could not finish it.
	OutcomeMappedNotMounted Outcome = "mapped-not-mounted"
)

// Result is the account of one UnlockOnce pass.
type Result struct {
	Target     string
	InstanceID string
	VolumeID   string
	Addr       string // the address dialled
	BootID     string // the instance's boot id ("" if not reached)
	Outcome    Outcome
	Reason     string // refusal or failure, no secret in it
	MountedAt  string // mount point reported by the instance
	HooksOK    bool
	Duration   time.Duration // from opening the session to the instance's last answer
}

// TargetStatus is one row of `keeper status`.
type TargetStatus struct {
	Name       string    `json:"name"`
	InstanceID string    `json:"instance_id"`
	VolumeID   string    `json:"volume_id"`
	Addr       string    `json:"addr,omitempty"`
	BootID     string    `json:"boot_id,omitempty"`
	State      State     `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	LastUnlock time.Time `json:"last_unlock,omitzero"`
	Attempts   int       `json:"attempts"` // for the current boot
}

// Status returns one row per target, sorted by name.
func (k *Keeper) Status() []TargetStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]TargetStatus, 0, len(k.state))
	for _, s := range k.state {
		out = append(out, s.status)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// WriteStatusTable prints rows as `keeper status` does: aligned columns NAME, INSTANCE, VOLUME,
// BOOT ID (first 8 characters), STATE (with the refusal reason), LAST UNLOCK (UTC, or "-").
func WriteStatusTable(w io.Writer, rows []TargetStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tINSTANCE\tVOLUME\tBOOT ID\tSTATE\tLAST UNLOCK")
	for _, r := range rows {
		boot := r.BootID
		if len(boot) > 8 {
			boot = boot[:8]
		}
		if boot == "" {
			boot = "-"
		}
		state := string(r.State)
		if r.Reason != "" && (r.State == StateRefused || r.State == StateUnreachable || r.State == StateStuck || r.State == StateMappedNotMounted) {
			state += ": " + oneLine(r.Reason)
		}
		last := "-"
		if !r.LastUnlock.IsZero() {
			last = r.LastUnlock.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.InstanceID, r.VolumeID, boot, state, last)
	}
	return tw.Flush()
}

// WriteStatusJSON prints rows as one indented JSON array (`keeper status --json`).
func WriteStatusJSON(w io.Writer, rows []TargetStatus) error {
	if rows == nil {
		rows = []TargetStatus{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
