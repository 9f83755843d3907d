package keeper

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// auditEntry is one line of the audit log. It carries identifiers and decisions only: the
// engine never has a reason to put a passphrase or key into one, and the fields are all
// strings it builds itself.
type auditEntry struct {
	Time     string `json:"time"`
	Target   string `json:"target"`
	Instance string `json:"instance,omitempty"`
	Volume   string `json:"volume,omitempty"`
	BootID   string `json:"boot_id,omitempty"`
	Step     string `json:"step"`     // "connect", "ec2", "serial", "uuid", "boot", "passphrase", "send", "result", …
	Decision string `json:"decision"` // "ok", "refused", "error", "skipped", "unlocked", "already-unlocked"
	Detail   string `json:"detail,omitempty"`
}

type auditLog struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

func newAuditLog(w io.Writer, now func() time.Time) *auditLog { return &auditLog{w: w, now: now} }

func (a *auditLog) log(e auditEntry) {
	e.Time = a.now().UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	b = append(b, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	// An audit writer that fails must not stop unlocks; the caller sees its own writer's errors.
	_, _ = a.w.Write(b)
}
