package luks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// oomChildEnv names the image the re-executed test binary unlocks under an address-space limit.
const oomChildEnv = "CLOUDLUKS_OOM_CHILD_IMAGE"

// TestUnlock2ArgonOutOfMemory: an argon2 cost of 3 GiB under a 512 MiB address-space limit
// is refused with ErrOutOfMemory, as cryptsetup 2.6.1 refuses it ("Not enough available
// memory to open a keyslot.", exit 3), instead of the Go runtime aborting the process.
// The limit is set with setrlimit in a re-executed copy of this test binary.
func TestUnlock2ArgonOutOfMemory(t *testing.T) {
	if p := os.Getenv(oomChildEnv); p != "" {
		oomChild(p)
		return
	}
	im := newL2Image(baseImage2(t))
	im.edit(t, func(m map[string]any) {
		kdf := obj(m, "keyslots", "0", "kdf")
		kdf["memory"] = jsonNum(3 << 20)
		kdf["time"] = jsonNum(1)
	})
	im.sealBoth()
	p := filepath.Join(t.TempDir(), "big.img")
	require.NoError(t, os.WriteFile(p, im.b, 0o600))

	// cryptsetup under the same kind of limit: exit 3 and its message.
	cmd := exec.Command("prlimit", fmt.Sprintf("--as=%d", 1<<30), cryptsetupBin(t),
		"open", "--test-passphrase", "--key-slot", "0", "--key-file", "-", p)
	cmd.Stdin = strings.NewReader("pass0")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "cryptsetup: %s", out)
	assert.Equal(t, 3, ee.ExitCode())
	assert.Contains(t, string(out), ErrOutOfMemory.Error())

	cmd = exec.Command(os.Args[0], "-test.run=^TestUnlock2ArgonOutOfMemory$", "-test.count=1")
	cmd.Env = append(os.Environ(), oomChildEnv+"="+p)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "child: %s", out)
	assert.Contains(t, string(out), "child: out of memory refused")
}

func oomChild(p string) {
	b, err := os.ReadFile(p)
	if err != nil {
		fmt.Println("child:", err)
		os.Exit(1)
	}
	used, _ := procField("/proc/self/status", "VmSize:")
	lim := used*1024 + 512<<20
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: lim, Max: lim}); err != nil {
		fmt.Println("child: setrlimit:", err)
		os.Exit(1)
	}
	_, _, _, err = Unlock2(context.Background(), bytes.NewReader(b), []byte("pass0"), UnlockOptions{Keyslot: Slot(0)})
	if !errors.Is(err, ErrOutOfMemory) {
		fmt.Println("child: unexpected result:", err)
		os.Exit(1)
	}
	fmt.Println("child: out of memory refused:", err)
	os.Exit(0)
}
