package testenv

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// Needle is one thing MemFind looks for: Secret XOR Xor followed by Tail bytes equal to Xor
// (Xor 0x36 and Tail 4: the start of an HMAC inner pad of a short key). Name labels the hits.
type Needle struct {
	Name   string
	Secret Masked
	Xor    byte
	Tail   int
}

// MemHit is one place MemFind found a needle.
type MemHit struct {
	Needle string
	Addr   uintptr
	// Mapping is the line of /proc/self/maps holding Addr, Offset the distance from its start.
	Mapping string
	Offset  uint64
	// Kind is "stack" (the main thread's [stack]), "brk" ([heap]: C malloc), "file:PATH" (a
	// private writable file mapping: a binary's .data/.bss), a kernel-named mapping such as
	// "[vdso]", or "anon": the Go heap, the goroutine and signal stacks carved from it and
	// the runtime's other memory all lie in anonymous mappings, told apart by Around.
	Kind string
	// Around is the 64 bytes before and after the hit (the needle itself shown as "**"), to
	// recognise what holds it: a struct's neighbouring fields, a signal frame's fpstate…
	Around string
}

func (h MemHit) String() string {
	return fmt.Sprintf("%s at %#x: %s+%#x in %q\n%s", h.Needle, h.Addr, h.Kind, h.Offset, h.Mapping, h.Around)
}

// MemFind scans this process's private writable mappings for every needle and reports where
// each hit lies. Like MemCount it never holds a needle whole, not even in a register (a
// signal arriving then would write it into the signal frame, where the scan would find it):
// it looks for the needle's first byte with bytes.IndexByte and compares the rest one
// masked byte at a time. The read buffer is a mapping of its own, skipped by the scan.
func MemFind(t testing.TB, needles ...Needle) []MemHit {
	t.Helper()
	return memFind(t, "/proc/self", needles)
}

// MemFindPID is MemFind over another process's memory, read through /proc/PID/mem: the way
// to scan a child that stopped itself after the code under test ran, for a secret the
// scanner learns only once the child is stopped (a key the child generated). The caller
// must be allowed to ptrace pid (root, or its parent under Yama scope 1 only if it traces).
func MemFindPID(t testing.TB, pid int, needles ...Needle) []MemHit {
	t.Helper()
	return memFind(t, "/proc/"+strconv.Itoa(pid), needles)
}

func memFind(t testing.TB, proc string, needles []Needle) []MemHit {
	t.Helper()
	maps, err := os.ReadFile(proc + "/maps")
	if err != nil {
		t.Fatalf("memory scan: %v", err)
	}
	mem, err := os.Open(proc + "/mem")
	if err != nil {
		t.Fatalf("memory scan: %v", err)
	}
	defer mem.Close()
	const size = 1 << 20
	buf, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatalf("memory scan: mmap: %v", err)
	}
	defer func() {
		clear(buf)
		_ = syscall.Munmap(buf)
	}()
	bufLo := uint64(uintptr(unsafe.Pointer(&buf[0])))
	bufHi := bufLo + size
	if proc != "/proc/self" { // the buffer is in this process; the same address there is another mapping
		bufLo, bufHi = 0, 0
	}
	maxLen := 0
	for _, n := range needles {
		maxLen = max(maxLen, len(n.Secret.b)+n.Tail)
	}
	var hits []MemHit
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
		if err1 != nil || err2 != nil || start < bufHi && end > bufLo {
			continue
		}
		kind := "anon"
		switch {
		case len(f) >= 6 && f[5] == "[stack]":
			kind = "stack"
		case len(f) >= 6 && f[5] == "[heap]":
			kind = "brk"
		case len(f) >= 6 && strings.HasPrefix(f[5], "["):
			kind = f[5]
		case len(f) >= 6:
			kind = "file:" + f[5]
		}
		// Chunks overlap by maxLen-1 bytes; a hit wholly inside the overlap was counted in
		// the chunk before.
		for off := start; off < end; {
			n, _ := mem.ReadAt(buf[:min(uint64(len(buf)), end-off)], int64(off))
			b := buf[:n]
			for i, nd := range needles {
				k := nd.Secret.mask ^ nd.Xor
				s := nd.Secret.b
				need := len(s) + nd.Tail
				for from := 0; from+need <= len(b); {
					j := bytes.IndexByte(b[from:len(b)-need+1], s[0]^k)
					if j < 0 {
						break
					}
					at := from + j
					from = at + 1
					match := true
					for x := 1; x < len(s) && match; x++ {
						match = b[at+x] == s[x]^k
					}
					for x := len(s); x < need && match; x++ {
						match = b[at+x] == nd.Xor
					}
					if match && (off == start || at+need > maxLen-1) {
						hits = append(hits, MemHit{
							Needle: needles[i].Name, Addr: uintptr(off) + uintptr(at), Mapping: line,
							Offset: off + uint64(at) - start, Kind: kind,
							Around: around(b, at, need),
						})
					}
				}
			}
			if n < len(buf) || off+uint64(n) >= end {
				break
			}
			off += uint64(n - (maxLen - 1))
		}
	}
	return hits
}

// around renders b[at-64 : at+n+64] in hex with the needle's bytes replaced by "**".
func around(b []byte, at, n int) string {
	var s strings.Builder
	lo, hi := max(0, at-64), min(len(b), at+n+64)
	for i := lo; i < hi; i++ {
		if i > lo && (i-lo)%32 == 0 {
			s.WriteByte('\n')
		}
		if i >= at && i < at+n {
			s.WriteString("**")
		} else {
			fmt.Fprintf(&s, "%02x", b[i])
		}
	}
	return s.String()
}
