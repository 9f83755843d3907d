package testenv

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// Masked is a secret a test holds only XORed with a mask byte, so that scanning the process's
// memory for the secret does not find the test's own copy. Plain materialises the secret in a
// new buffer (to hand to the code under test, which must wipe it); the caller clears it too.
type Masked struct {
	b    []byte
	mask byte
}

// Mask returns secret held as secret XOR mask (mask must not be 0); secret is not retained.
func Mask(secret []byte, mask byte) Masked {
	m := Masked{b: make([]byte, len(secret)), mask: mask}
	for i, c := range secret {
		m.b[i] = c ^ mask
	}
	return m
}

// Plain returns the secret itself in a new buffer.
func (m Masked) Plain() []byte {
	p := make([]byte, len(m.b))
	for i, c := range m.b {
		p[i] = c ^ m.mask
	}
	return p
}

// MemCount counts the places in this process's private writable mappings whose bytes, XORed
// with xor, are the secret followed by tail bytes equal to xor (an HMAC pad of a short key:
// key XOR 0x36 then 0x36 0x36 …). xor 0 and tail 0 look for the secret itself. The needle is
// never materialised, so the scan does not find itself.
func MemCount(t testing.TB, secret Masked, xor byte, tail int) int {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatalf("memory scan: %v", err)
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatalf("memory scan: %v", err)
	}
	defer mem.Close()
	s := secret.b
	k := secret.mask ^ xor // b ^ xor == s ^ mask  ⇔  b == s ^ k
	need := len(s) + tail
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
		for off := start; off < end; off += uint64(len(buf) - need) {
			n, _ := mem.ReadAt(buf[:min(uint64(len(buf)), end-off)], int64(off))
			b := buf[:n]
			for i := 0; i+need <= len(b); i++ {
				if b[i] != s[0]^k {
					continue
				}
				match := true
				for j := 1; j < len(s) && match; j++ {
					match = b[i+j] == s[j]^k
				}
				for j := len(s); j < need && match; j++ {
					match = b[i+j] == xor
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
