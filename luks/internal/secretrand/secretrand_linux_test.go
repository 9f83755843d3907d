package secretrand

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

func TestRandReadFillsAndDiffers(t *testing.T) {
	// 40 MiB is more than one getrandom call returns (32 MiB - 1): the short-read loop runs
	// against the real kernel.
	for _, n := range []int{1, 32, 64, 4096, 40 << 20} {
		a, b := make([]byte, n), make([]byte, n)
		require.NoError(t, Read(a))
		require.NoError(t, Read(b))
		if n >= 32 {
			assert.NotEqual(t, a, b, "%d bytes: two reads gave the same bytes", n)
			// A zero 64-byte run means a part of the buffer was never written.
			for off := 0; off+64 <= n; off += 64 {
				if bytes.Equal(a[off:off+64], make([]byte, 64)) {
					t.Fatalf("%d bytes: 64 zero bytes at %d", n, off)
				}
			}
		}
	}
	assert.NoError(t, Read(nil))
	k := make([]byte, 64)
	n, err := Reader.Read(k)
	require.NoError(t, err)
	assert.Equal(t, 64, n)
	assert.NotEqual(t, make([]byte, 64), k)
}

// fakeGetrandom replaces the system call with a script of results, each writing a pattern
// that tells which byte of the caller's buffer came from which call.
func fakeGetrandom(t *testing.T, script ...func(b []byte) (int, error)) *int {
	t.Helper()
	calls := 0
	old := getrandom
	t.Cleanup(func() { getrandom = old })
	getrandom = func(b []byte) (int, error) {
		if calls >= len(script) {
			t.Fatalf("getrandom called %d times, script has %d", calls+1, len(script))
		}
		calls++
		return script[calls-1](b)
	}
	return &calls
}

func fill(n int, v byte) func([]byte) (int, error) {
	return func(b []byte) (int, error) {
		n := min(n, len(b))
		for i := range n {
			b[i] = v
		}
		return n, nil
	}
}

func fail(err error) func([]byte) (int, error) { return func([]byte) (int, error) { return 0, err } }

// TestRandReadRetriesInterruptedAndShortReads: a signal before the first byte is EINTR (retry
// the same span), a signal later is a short read (go on after it); every byte is written
// exactly once and the loop ends.
func TestRandReadRetriesInterruptedAndShortReads(t *testing.T) {
	calls := fakeGetrandom(t, fail(unix.EINTR), fill(3, 1), fail(unix.EINTR), fill(5, 2), fill(100, 3))
	b := make([]byte, 16)
	require.NoError(t, Read(b))
	assert.Equal(t, []byte{1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3}, b)
	assert.Equal(t, 5, *calls)
}

func TestRandReadErrors(t *testing.T) {
	fakeGetrandom(t, fill(2, 1), fail(unix.EFAULT))
	err := Read(make([]byte, 8))
	assert.ErrorIs(t, err, unix.EFAULT)

	// A call that returns nothing would loop for ever: it is an error instead.
	fakeGetrandom(t, fill(0, 1))
	assert.Error(t, Read(make([]byte, 8)))

	// No getrandom (Linux before 3.17): crypto/rand fills the rest.
	fakeGetrandom(t, fail(unix.ENOSYS))
	b := make([]byte, 64)
	require.NoError(t, Read(b))
	assert.NotEqual(t, make([]byte, 64), b)
	assert.False(t, errors.Is(Read(nil), unix.ENOSYS))
}

const childEnv = "SECRETRAND_TEST_CHILD"

// TestRandReadIsTheSystemCall checks with strace that Read reaches the kernel as getrandom(buf,
// 77, 0) = 77. crypto/rand and unix.Getrandom on a kernel with the vDSO getrandom make no
// such call: their bytes are generated in user space, which is what the package avoids.
func TestRandReadIsTheSystemCall(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		if err := Read(make([]byte, 77)); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	strace := testenv.LookPath(t, "strace", "apt-get install strace")
	out := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command(strace, "-f", "-e", "trace=getrandom", "-o", out, os.Args[0], "-test.run=^TestRandReadIsTheSystemCall$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	trace, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Regexp(t, regexp.MustCompile(`getrandom\(.*, 77, 0\) += 77`), string(trace))
}
