package sector

import (
	"bytes"
	"crypto/rand"
	"encoding"
	"encoding/hex"
	"hash"
	"math/big"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// TestSM3Vectors checks the two examples of GB/T 32905-2016 appendix A, through every
// name the hash answers to.
func TestSM3Vectors(t *testing.T) {
	vectors := []struct{ in, want string }{
		{"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"},
		{strings.Repeat("abcd", 16), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"},
	}
	news := map[string]func() (func() hash.Hash, error){
		"NewHash sm3":      func() (func() hash.Hash, error) { return NewHash("sm3") },
		"NewHash SM3":      func() (func() hash.Hash, error) { return NewHash("SM3") },
		"NewHashLUKS2 sm3": func() (func() hash.Hash, error) { return NewHashLUKS2("sm3") },
		"NewHashLUKS2 OID": func() (func() hash.Hash, error) { return NewHashLUKS2("1.2.156.10197.1.401") },
		"NewHashLUKS2 SM3": func() (func() hash.Hash, error) { return NewHashLUKS2("Sm3") },
	}
	for name, nf := range news {
		f, err := nf()
		require.NoError(t, err, name)
		for _, v := range vectors {
			h := f()
			assert.Equal(t, 32, h.Size())
			assert.Equal(t, 64, h.BlockSize())
			h.Write([]byte(v.in))
			assert.Equal(t, v.want, hex.EncodeToString(h.Sum(nil)), "%s(%q)", name, v.in)
			// Sum leaves the state alone; byte-by-byte writes give the same digest.
			assert.Equal(t, v.want, hex.EncodeToString(h.Sum(nil)))
			h.Reset()
			for i := 0; i < len(v.in); i++ {
				h.Write([]byte{v.in[i]})
			}
			assert.Equal(t, v.want, hex.EncodeToString(h.Sum(nil)))
		}
	}
	sz, ok := hashSize("sm3")
	assert.True(t, ok)
	assert.Equal(t, 32, sz)
}

// TestSM3MatchesOpenSSL hashes random inputs of random lengths (every padding case around
// the 56- and 64-byte boundaries included) here and with `openssl dgst -sm3`, and checks
// that a saved state resumes to the same digest.
func TestSM3MatchesOpenSSL(t *testing.T) {
	bin := testenv.LookPath(t, "openssl", "apt-get install openssl")
	lengths := []int{0, 1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 4096 + 17}
	for i := 0; i < 12; i++ {
		n, err := rand.Int(rand.Reader, big.NewInt(5000))
		require.NoError(t, err)
		lengths = append(lengths, int(n.Int64()))
	}
	for _, n := range lengths {
		msg := make([]byte, n)
		rand.Read(msg)
		cmd := exec.Command(bin, "dgst", "-sm3", "-r")
		cmd.Stdin = bytes.NewReader(msg)
		out, err := cmd.Output()
		require.NoError(t, err, "openssl dgst -sm3")
		want := strings.Fields(string(out))[0]
		h := newSM3()
		cut := n / 3
		h.Write(msg[:cut])
		state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		require.NoError(t, err)
		h.Write(msg[cut:])
		require.Equal(t, want, hex.EncodeToString(h.Sum(nil)), "length %d", n)
		r := newSM3()
		require.NoError(t, r.(encoding.BinaryUnmarshaler).UnmarshalBinary(state))
		r.Write(msg[cut:])
		require.Equal(t, want, hex.EncodeToString(r.Sum(nil)), "resumed, length %d", n)
		// A copied state resumes to the same digest and leaves its source alone.
		src := newSM3()
		src.Write(msg[:cut])
		c := newSM3()
		require.True(t, c.(interface{ CopyState(hash.Hash) bool }).CopyState(src))
		c.Write(msg[cut:])
		require.Equal(t, want, hex.EncodeToString(c.Sum(nil)), "copied, length %d", n)
		src.Write(msg[cut:])
		require.Equal(t, want, hex.EncodeToString(src.Sum(nil)), "source after the copy, length %d", n)
	}
	assert.False(t, newSM3().(interface{ CopyState(hash.Hash) bool }).CopyState(mustHash(t, "sha256")))
	assert.Error(t, newSM3().(encoding.BinaryUnmarshaler).UnmarshalBinary([]byte("sha\x03")))
}

// TestSM3SumShortTail: Sum of a state whose buffered tail leaves room for the padding
// (under 56 bytes, every PBKDF2 iteration) is one compression on the stack: no allocation
// beyond the caller's slice, and the same digest as the general path, around the edge.
func TestSM3SumShortTail(t *testing.T) {
	msg := make([]byte, 200)
	rand.Read(msg)
	for n := 0; n <= len(msg); n++ {
		h := newSM3()
		h.Write(msg[:n])
		got := h.Sum(nil)
		// Byte-at-a-time writes reach the same buffered state by another route; a second
		// Sum must not have changed it.
		r := newSM3()
		for i := 0; i < n; i++ {
			r.Write(msg[i : i+1])
		}
		require.Equal(t, got, r.Sum(nil), "length %d", n)
		require.Equal(t, got, h.Sum(nil), "second Sum, length %d", n)
	}
	h := newSM3()
	h.Write(msg[:96])
	out := make([]byte, 0, 32)
	assert.Zero(t, testing.AllocsPerRun(100, func() { out = h.Sum(out[:0]) }))
}

func mustHash(t *testing.T, name string) hash.Hash {
	t.Helper()
	f, err := NewHash(name)
	require.NoError(t, err)
	return f()
}

func BenchmarkSM3(b *testing.B) {
	h := newSM3()
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		h.Write(buf)
	}
}
