package luks

import (
	"context"
	"encoding/binary"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/blake2b"
)

// TestArgon2LanesCancelWipesSeedBlock: a derivation cancelled before its first slice
// leaves no copy of the last initial block B[l][1] = H'(H0 || 1 || l) (derived from the
// passphrase) in this process's memory. The test keeps the block only XORed with 0x5c,
// so the scan does not find the test's own copy.
func TestArgon2LanesCancelWipesSeedBlock(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/mem (Linux only)")
	}
	const lanes, memory, passes, keyLen = 2, 64, 1, 32
	pass := []byte("cancelled passphrase")
	salt := []byte("0123456789abcdef")
	needle := func() []byte {
		h0in := make([]byte, 0, 128)
		for _, v := range []uint32{lanes, keyLen, memory, passes, 0x13, argon2TypeID, uint32(len(pass))} {
			h0in = binary.LittleEndian.AppendUint32(h0in, v)
		}
		h0in = append(h0in, pass...)
		h0in = binary.LittleEndian.AppendUint32(h0in, uint32(len(salt)))
		h0in = append(h0in, salt...)
		h0in = append(h0in, make([]byte, 8)...)
		h0 := blake2b.Sum512(h0in)
		seed := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(h0[:], 1), lanes-1)
		blk := make([]byte, argon2BlockSize)
		argon2Hprime(blk, seed)
		// 32 bytes from the middle of the block: H' writes them through a 64-byte
		// vector it clears, so only the 1 KiB buffer holds them.
		n := make([]byte, 32)
		for i := range n {
			n[i] = blk[512+i] ^ 0x5c
		}
		clear(blk)
		clear(h0[:])
		clear(seed)
		return n
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := argon2Lanes(ctx, "argon2id", pass, salt, passes, memory, lanes, keyLen)
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, countPattern(t, needle, 0x5c), "the key-derived initial block is left in memory")
}

// countPattern counts the places in this process's private writable mappings where the
// bytes XOR x equal needle (the needle is kept XORed, so the scan does not find itself).
func countPattern(t *testing.T, needle []byte, x byte) int {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	mem, err := os.Open("/proc/self/mem")
	require.NoError(t, err)
	defer mem.Close()
	found := 0
	buf := make([]byte, 1<<20)
	defer clear(buf)
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
		for off := start; off < end; off += uint64(len(buf) - len(needle)) {
			n, _ := mem.ReadAt(buf[:min(uint64(len(buf)), end-off)], int64(off))
			b := buf[:n]
			for i := 0; i+len(needle) <= len(b); i++ {
				match := true
				for j := 0; j < len(needle) && match; j++ {
					match = b[i+j]^x == needle[j]
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
	return found
}

// BenchmarkArgon2G times the compression function G alone (one 1 KiB block, as a pass
// after the first computes it), without the allocation and page faults of a whole run.
func BenchmarkArgon2G(b *testing.B) {
	var out, x, y argon2Block
	for i := range x {
		x[i], y[i] = uint64(i)*0x9e3779b97f4a7c15, ^uint64(i)
	}
	b.SetBytes(argon2BlockSize)
	for b.Loop() {
		argon2G(&out, &x, &y, true)
	}
}
