package keeper

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/cloudluks/cloudluks/keeper/wire"
	"github.com/cloudluks/cloudluks/luks"
)

// The test binary doubles as the instance side when sshd's forced command runs it with
// KEEPER_TEST_INSTANCE set: a stand-in for `encrypted-volume serve` that answers from a
// JSON file and a LUKS image made by luks.Format, speaking the real keeper/wire protocol
// over the real SSH session's stdin and stdout.
func TestMain(m *testing.M) {
	if cfg := os.Getenv("KEEPER_TEST_INSTANCE"); cfg != "" {
		os.Exit(fakeInstance(cfg))
	}
	os.Exit(m.Run())
}

type fakeInstanceConfig struct {
	State      wire.State `json:"state"`
	Image      string     `json:"image"`       // LUKS image
	MappedFile string     `json:"mapped_file"` // exists = mapped and mounted
	KeySHA256  string     `json:"key_sha256"`  // the volume key the image needs
	DelayMS    int        `json:"delay_ms"`    // Unlock takes this long (mount, hooks)
	Trace      string     `json:"trace"`       // Unlock appends "start NS" and "end NS" lines
	NotMounted bool       `json:"not_mounted"`
}

type fakeHandler struct{ cfg fakeInstanceConfig }

func fakeInstance(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var h fakeHandler
	if err := json.Unmarshal(b, &h.cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := wire.Serve(context.Background(), struct {
		io.Reader
		io.Writer
	}{os.Stdin, os.Stdout}, &h); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}

func (h *fakeHandler) Hello(context.Context, wire.Hello) (string, error) {
	return "keeper-test-instance", nil
}

func (h *fakeHandler) mapped() bool { _, err := os.Stat(h.cfg.MappedFile); return err == nil }

func (h *fakeHandler) State(context.Context) (wire.State, error) {
	st := h.cfg.State
	st.Mapped, st.Mounted = h.mapped(), h.mapped() && !h.cfg.NotMounted
	return st, nil
}

func (h *fakeHandler) Header(context.Context) ([]byte, error) {
	f, err := os.Open(h.cfg.Image)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := luks.Load(f)
	if err != nil {
		return nil, err
	}
	seg, err := m.DataSegment()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, seg.Offset) // header, key material / keyslots area: up to the data
	if _, err = f.ReadAt(buf, 0); err != nil {
		return nil, err
	}
	return buf, nil
}

func (h *fakeHandler) trace(what string) {
	if h.cfg.Trace == "" {
		return
	}
	f, err := os.OpenFile(h.cfg.Trace, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %d\n", what, time.Now().UnixNano())
}

func (h *fakeHandler) Unlock(_ context.Context, req wire.UnlockRequest, key []byte) (wire.Result, error) {
	// As serve does: one unlock at a time per mapping, the second sees the first's result.
	lock, err := os.OpenFile(h.cfg.MappedFile+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return wire.Result{}, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return wire.Result{}, err
	}
	h.trace("start")
	defer h.trace("end")
	time.Sleep(time.Duration(h.cfg.DelayMS) * time.Millisecond)
	if h.mapped() && h.cfg.NotMounted {
		return wire.Result{Status: wire.StatusRefused, Reason: "mapping exists but is not mounted"}, nil
	}
	if h.mapped() {
		return wire.Result{Status: wire.StatusAlreadyUnlocked, Mounted: h.cfg.State.MountPoint, HooksOK: true,
			Reason: "mapped and mounted before this request"}, nil
	}
	if req.BootID != h.cfg.State.BootID || req.LUKSUUID != h.cfg.State.LUKSUUID {
		return wire.Result{Status: wire.StatusRefused, Reason: "boot id or UUID changed"}, nil
	}
	sum := sha256.Sum256(key)
	if hex.EncodeToString(sum[:]) != h.cfg.KeySHA256 {
		return wire.Result{Status: wire.StatusRefused, Reason: "wrong volume key"}, nil
	}
	if err := os.WriteFile(h.cfg.MappedFile, nil, 0o600); err != nil {
		return wire.Result{}, err
	}
	return wire.Result{Status: wire.StatusUnlocked, Mounted: h.cfg.State.MountPoint, HooksOK: true}, nil
}
