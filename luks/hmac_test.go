package luks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/luks/sector"
)

// TestPRFMatchesHMAC: prfHMAC is crypto/hmac for every LUKS hash and key lengths around the
// block size (keys longer than a block are hashed first), and stays correct across reuse.
func TestPRFMatchesHMAC(t *testing.T) {
	for _, hn := range []string{"sha1", "sha224", "sha256", "sha384", "sha512", "ripemd160", "whirlpool", "wp256", "wp384", "sha3-256", "blake2b-512", "sm3"} {
		nh, err := sector.NewHash(hn)
		require.NoError(t, err)
		for _, kl := range []int{0, 1, 20, 63, 64, 65, 128, 129, 144, 200, 1000} {
			t.Run(fmt.Sprintf("%s-%d", hn, kl), func(t *testing.T) {
				key := bytes.Repeat([]byte{byte(kl), 0x5a}, kl)[:kl]
				p := newPRF(nh, key)
				defer p.wipe()
				for _, msg := range []string{"", "salt\x00\x00\x00\x01", strings.Repeat("u", 64), strings.Repeat("m", 300)} {
					want := hmac.New(nh, key)
					want.Write([]byte(msg))
					got := p.mac(nil, []byte(msg[:len(msg)/2]), []byte(msg[len(msg)/2:]))
					assert.Equal(t, want.Sum(nil), got, "message %q", msg)
				}
			})
		}
	}
}

// TestPRFSM3CopiesState: for SM3 the keyed states are kept in two hashes of the package's
// own and restored by copy (no marshalled state to parse, no pads kept), an iteration
// allocates nothing, and wipe leaves the saved hashes in their initial state.
func TestPRFSM3CopiesState(t *testing.T) {
	nh, err := sector.NewHash("sm3")
	require.NoError(t, err)
	key := []byte("passphrase")
	p := newPRF(nh, key)
	require.NotNil(t, p.iSaved)
	require.NotNil(t, p.oSaved)
	assert.Nil(t, p.iState)
	assert.Nil(t, p.ipad)
	assert.Nil(t, p.opad)
	u := make([]byte, 0, p.Size())
	u = p.mac(u, []byte("salt"), nil)
	assert.Zero(t, testing.AllocsPerRun(100, func() { u = p.mac(u[:0], u, nil) }))
	p.wipe()
	empty := nh().Sum(nil)
	assert.Equal(t, empty, p.iSaved.Sum(nil))
	assert.Equal(t, empty, p.oSaved.Sum(nil))
}

// TestPBKDF2LeavesNoPads: after a derivation returns, no copy of the passphrase XOR 0x36 or
// XOR 0x5c (the HMAC pads crypto/hmac keeps and never clears) is left anywhere in this
// process's writable memory. The audit recovered passphrases from exactly these bytes.
func TestPBKDF2LeavesNoPads(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/mem (Linux only)")
	}
	for _, hn := range []string{"sha1", "sha256", "sha512", "whirlpool", "sm3"} {
		t.Run(hn, func(t *testing.T) {
			nh, err := sector.NewHash(hn)
			require.NoError(t, err)
			pass := make([]byte, 24)
			_, err = rand.Read(pass)
			require.NoError(t, err)
			dk, err := pbkdf2Key(context.Background(), nh, pass, []byte("salt"), 1000, 64)
			require.NoError(t, err)
			clear(dk)
			for _, pad := range []byte{0x36, 0x5c} {
				assert.Zero(t, countXored(t, pass, pad), "passphrase XOR %#x found in memory", pad)
			}
			// The scan itself is trustworthy: crypto/hmac leaves its pads behind.
			if hn == "sha256" {
				m := hmac.New(nh, pass)
				m.Write([]byte("x"))
				runtime.KeepAlive(m)
				assert.NotZero(t, countXored(t, pass, 0x36), "the scan finds crypto/hmac's inner pad")
				runtime.KeepAlive(m)
			}
			clear(pass)
		})
	}
}

// countXored counts the places in this process's private writable mappings where the bytes
// equal secret XOR pad followed by at least four pad bytes (the zero padding of a short
// key, XORed). The needle is never materialised, so the scan does not find itself.
func countXored(t *testing.T, secret []byte, pad byte) int {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	mem, err := os.Open("/proc/self/mem")
	require.NoError(t, err)
	defer mem.Close()
	found := 0
	buf := make([]byte, 1<<20)
	for _, line := range strings.Split(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[1], "rw") {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		need := len(secret) + 4
		for off := start; off < end; off += uint64(len(buf) - need) {
			n, _ := mem.ReadAt(buf[:min(uint64(len(buf)), end-off)], int64(off))
			b := buf[:n]
			for i := 0; i+need <= len(b); i++ {
				if b[i]^pad != secret[0] {
					continue
				}
				match := true
				for j := 1; j < len(secret) && match; j++ {
					match = b[i+j]^pad == secret[j]
				}
				for j := len(secret); j < need && match; j++ {
					match = b[i+j] == pad
				}
				if match {
					found++
				}
			}
			if n < len(buf) {
				break
			}
		}
	}
	clear(buf)
	return found
}
