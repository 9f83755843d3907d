package sector

import (
	"context"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// wipeIterations is how many times each spec and path of TestWipeLeavesNoKeySchedule runs,
// each with a fresh random key: a remnant that depends on timing (a signal arriving, a
// goroutine stack being reused) shows in some runs only.
const wipeIterations = 10

// simdWipeIterations is the same for the SIMD Serpent and Twofish paths, whose remnants do not
// depend on timing (each iteration also scans three times before Wipe).
const simdWipeIterations = 3

// TestWipeLeavesNoKeySchedule: after a Cipher has been used and wiped, no 16-byte part of its
// key, no first or last round key of its AES schedules and no ESSIV salt is left anywhere in
// this process's writable memory, for every spec family on every implementation and every
// call shape (a single sector, a whole batch, batches with a tail, 4096-byte sectors). The
// audit found half a volume key after every CLI path: a crypto/aes block was built beside
// the package's own schedules. After that fix the key still showed in about 6 of 10 CBC
// runs: the assembly left round keys in the vector registers when it returned, and the
// kernel writes all vector registers into the signal frame on the goroutine's signal stack
// (Go memory, never cleared) whenever a signal — the runtime's preemption SIGURG, say —
// arrives while they are live. Each hit is reported with its mapping and neighbourhood.
func TestWipeLeavesNoKeySchedule(t *testing.T) {
	// Signals are how register contents reach memory: the kernel copies all vector
	// registers into the frame of every signal, and Go 1.26's asynchronous preemption saves
	// them into the P's register save area; neither is ever cleared. Preemption arrives at
	// random — during a call too, which no code can help (about 1 probe in 300 then finds
	// the round key in use, 7 of 1590 measured) — so the scan runs in a child without
	// asynchronous preemption, and signalSelf delivers a signal at a fixed point after every
	// call instead: a key left in a register after a call returned is then found each time.
	if testing.Short() {
		t.Skip("530 scans of the process's memory in a child process; not in -short")
	}
	if !strings.Contains(os.Getenv("GODEBUG"), "asyncpreemptoff=1") {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestWipeLeavesNoKeySchedule$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "GODEBUG=asyncpreemptoff=1")
		out, err := cmd.CombinedOutput()
		t.Logf("child with GODEBUG=asyncpreemptoff=1:\n%s", out)
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		return
	}
	type spec struct {
		cipher, mode string
		keyLen       int
	}
	aesSpecs := []spec{
		{"aes", "cbc-plain", 32}, {"aes", "cbc-plain64", 32}, {"aes", "cbc-plain64", 16},
		{"aes", "cbc-essiv:sha256", 32}, {"aes", "cbc-essiv:sha256", 16}, {"aes", "cbc-benbi", 32},
		{"aes", "cbc-eboiv", 32}, {"aes", "xts-plain64", 32}, {"aes", "xts-plain64", 64},
		{"aes", "xts-essiv:sha256", 64}, {"aes", "xts-eboiv", 64}, {"aes", "ecb", 32},
		{"aes", "lrw-benbi", 48}, {"aes", "lrw-plain64", 32},
	}
	otherSpecs := []spec{
		{"serpent", "xts-plain64", 64}, {"serpent", "cbc-plain64", 32}, {"serpent", "cbc-essiv:sha256", 32},
		{"serpent", "ecb", 32}, {"twofish", "xts-plain64", 64}, {"twofish", "cbc-plain64", 32},
		{"twofish", "cbc-essiv:sha256", 32}, {"twofish", "lrw-benbi", 48},
	}
	// LRW runs the portable code on every path.
	serpentSpecs, twofishSpecs := otherSpecs[:4], otherSpecs[4:7]
	type impl struct {
		name    string
		impl    int
		avxXTS  bool // haveAESNIAVX: the fused AES-NI XTS-plain64 calls
		ciphers []spec
		// The SIMD Serpent and Twofish: serpentUseAVX512 and twofishUseAVX512 while it runs,
		// and fewer iterations, each with a scan for register remnants after some calls.
		simd, avx512 bool
	}
	var impls []impl
	impls = append(impls, impl{name: "portable", impl: implPortable, avxXTS: haveAESNIAVX, ciphers: otherSpecs})
	if bestImpl() >= implAESNI {
		impls = append(impls, impl{name: "aesni-sse", impl: implAESNI, ciphers: aesSpecs})
		if haveAESNIAVX {
			impls = append(impls, impl{name: "aesni-avx", impl: implAESNI, avxXTS: true, ciphers: aesSpecs})
		}
	}
	if bestImpl() >= implVAES {
		impls = append(impls, impl{name: "vaes", impl: implVAES, avxXTS: true, ciphers: aesSpecs})
	}
	simd := func(name string, have, avx512 bool, specs []spec) {
		if have {
			impls = append(impls, impl{name: name, impl: bestImpl(), avxXTS: haveAESNIAVX, ciphers: specs, simd: true, avx512: avx512})
		}
	}
	simd("serpent-avx512", haveSerpentAVX512, true, serpentSpecs)
	simd("serpent-avx2", haveSerpentAVX2, false, serpentSpecs)
	simd("twofish-avx512", twofishUseAVX512, true, twofishSpecs)
	simd("twofish-avx2", haveTwofishAVX2, false, twofishSpecs)
	// Buffer shapes: the single-sector calls, one full batch (aesniCBCEnc8, the fused
	// calls), batches with a tail, and CryptLarge.
	shapes := []struct {
		name         string
		bytes, large int
	}{{"1x512", SectorSize, 0}, {"8x512", 8 * SectorSize, 0}, {"19x512", 19 * SectorSize, 0}, {"2x4096", 2 * 4096, 4096}}

	probes, remnants := 0, 0
	for _, im := range impls {
		for _, sp := range im.ciphers {
			name := fmt.Sprintf("%s/%s-%s-%d", im.name, sp.cipher, sp.mode, sp.keyLen*8)
			t.Run(name, func(t *testing.T) {
				runtime.LockOSThread() // signalSelf must reach the thread that ran the cipher
				defer runtime.UnlockOSThread()
				defer func(old bool) { haveAESNIAVX = old }(haveAESNIAVX)
				haveAESNIAVX = im.avxXTS
				defer func(s, t bool) { serpentUseAVX512, twofishUseAVX512 = s, t }(serpentUseAVX512, twofishUseAVX512)
				if im.simd {
					serpentUseAVX512, twofishUseAVX512 = im.avx512, im.avx512
				}
				s, err := ParseSpec(sp.cipher, sp.mode)
				require.NoError(t, err)
				iterations := wipeIterations
				if im.simd {
					iterations = simdWipeIterations
				}
				bad := 0
				for it := 0; it < iterations; it++ {
					c, needles, regs := keyNeedles(t, s, sp.keyLen, im.impl)
					if im.simd {
						require.True(t, c.sp != nil || c.tf != nil, "%s: the SIMD code must run", name)
					}
					// Key-derived words the assembly broadcast into registers: looked for
					// before Wipe (whose wipeRegisters would hide them), after a full batch
					// each way and after the last call, each time just after signalSelf
					// wrote the registers into the signal frame.
					regScan := func(what string) {
						if len(regs) == 0 {
							return
						}
						probes++
						for _, h := range testenv.MemFind(t, regs...) {
							bad++
							remnants++
							t.Errorf("iteration %d, after %s: %v", it, what, h)
						}
					}
					for _, sh := range shapes {
						if sh.large != 0 && s.IV == "eboiv" {
							continue
						}
						buf := make([]byte, sh.bytes)
						for _, enc := range []bool{true, false} {
							if sh.large == 0 {
								c.crypt(buf, buf, 7, enc)
								signalSelf(t)
							} else {
								require.NoError(t, c.CryptLarge(buf, buf, sh.large, 7, enc))
								signalSelf(t)
							}
							if sh.name == "8x512" {
								regScan(fmt.Sprintf("%s enc=%v", sh.name, enc))
							}
						}
					}
					regScan("the last call")
					c.Wipe()
					signalSelf(t)
					hits := testenv.MemFind(t, needles...)
					probes++
					if len(hits) > 0 {
						bad++
						remnants++
						for _, h := range hits {
							t.Errorf("iteration %d: %v", it, h)
						}
					}
				}
				if bad > 0 {
					t.Errorf("key material left in memory in %d probes of %d runs", bad, iterations)
				}
			})
		}
	}
	t.Logf("%d probes, %d with a remnant", probes, remnants)
}

// keyNeedles makes a random keyLen-byte key for s, keys a Cipher with it and returns the
// Cipher and what must not be found after its Wipe: every 16-byte part of the key and, for
// AES, the first two and the last round keys of each schedule the Cipher built (data, XTS
// tweak, ESSIV salt — the ESSIV schedule's first round keys are the salt itself). They are
// read from the Cipher rather than computed here, so that the test leaves no copy of its
// own (a crypto/sha256 digest of the key, say) on its stack.
//
// regs are the words the Serpent and Twofish assembly broadcast into a register (a Serpent
// subkey word of the first and last rounds, a Twofish whitening word), each four times in a
// row as the low 128 bits of that register hold it: they must not be left in a register
// after a call returns.
func keyNeedles(t *testing.T, s Spec, keyLen, impl int) (*Cipher, []testenv.Needle, []testenv.Needle) {
	raw := heapBytes(keyLen)
	// getrandom(2) itself, not crypto/rand: the vDSO getrandom that crypto/rand uses leaves
	// the bytes it returns on the system stack (seen with this scan), which is not what this
	// test is about.
	_, err := unix.Getrandom(raw, 0)
	require.NoError(t, err)
	c, err := newCipher(s, raw, impl)
	signalSelf(t)
	clear(raw)
	require.NoError(t, err)
	var needles []testenv.Needle
	add := func(name string, b []byte) {
		needles = append(needles, testenv.Needle{Name: name, Secret: testenv.Mask(b, 0x3c)})
	}
	for off := 0; off+16 <= keyLen; off += 16 {
		add(fmt.Sprintf("key[%d:%d]", off, off+16), c.key[off:off+16])
	}
	if keyLen%16 != 0 { // a 24-byte AES or a short serpent key
		add(fmt.Sprintf("key[%d:]", keyLen-16), c.key[keyLen-16:])
	}
	for _, k := range []struct {
		name string
		k    *aesSchedule
	}{{"data", c.ni}, {"tweak", c.niTweak}, {"essiv", c.niEssiv}} {
		if k.k == nil {
			continue
		}
		add(k.name+" round key 0", k.k.enc[:16])
		add(k.name+" round key 1", k.k.enc[16:32])
		add(k.name+" last round key", k.k.enc[16*k.k.rounds:16*k.k.rounds+16])
		add(k.name+" decryption round key 1", k.k.dec[16:32])
	}
	// The Twofish schedules, whatever their type (x/crypto/twofish.Cipher has the layout of
	// twofishKey's first two fields): the first and last words of the key-dependent S-box
	// tables, and the whitening and last round subkeys.
	if s.Cipher == "twofish" {
		for _, k := range []struct {
			name string
			b    cipher.Block
		}{{"data", c.block}, {"tweak", c.tweak}, {"essiv", c.essiv}} {
			v := reflect.ValueOf(k.b)
			if !v.IsValid() {
				continue
			}
			mem := unsafe.Slice((*byte)(v.UnsafePointer()), v.Elem().Type().Size())
			for _, part := range []struct {
				name string
				off  int
			}{{"s[0][0:4]", 0}, {"s[3][252:256]", 4096 - 16}, {"k[0:4]", 4096}, {"k[4:8]", 4096 + 16}, {"k[36:40]", 4096 + 144}} {
				add(fmt.Sprintf("twofish %s %s (%T)", k.name, part.name, k.b), mem[part.off:part.off+16])
			}
		}
	}
	var regs []testenv.Needle
	broadcast := func(name string, w uint32) {
		b := heapBytes(16)
		for i := 0; i < 16; i += 4 {
			binary.LittleEndian.PutUint32(b[i:], w)
		}
		regs = append(regs, testenv.Needle{Name: name, Secret: testenv.Mask(b, 0x3c)})
		clear(b)
	}
	for _, k := range []struct {
		name string
		b    cipher.Block
	}{{"data", c.block}, {"tweak", c.tweak}, {"essiv", c.essiv}} {
		if sb, ok := k.b.(*serpentBlock); ok && c.sp != nil {
			for _, r := range []int{0, 32} {
				for j := 0; j < 4; j++ {
					broadcast(fmt.Sprintf("serpent %s subkey %d word %d, broadcast", k.name, r, j), sb.k[r][j])
				}
			}
		}
	}
	if c.tf != nil {
		for _, k := range []struct {
			name string
			k    *twofishKey
		}{{"data", c.tf.data}, {"tweak", c.tf.tweak}, {"essiv", c.tf.essiv}} {
			if k.k == nil {
				continue
			}
			for j := 0; j < 8; j++ {
				broadcast(fmt.Sprintf("twofish %s whitening word %d, broadcast", k.name, j), k.k.k[j])
			}
		}
	}
	return c, needles, regs
}

// heapBytes returns a new buffer on the heap. A make([]byte, n) that does not escape may live
// on the goroutine's stack (up to 32 bytes, since Go 1.25), and a stack that grows while it
// holds the key is copied and freed without being cleared: the test's own key would then
// stay in memory.
//
//go:noinline
func heapBytes(n int) []byte { return make([]byte, n) }

// signalSelf sends SIGURG to this thread, which the runtime ignores when it has not asked for
// a preemption: the kernel still writes every vector register into the signal frame on the
// thread's signal stack, where the scan finds whatever key material a call left in them.
// The child runs without asynchronous preemption, so this is the only signal it takes, at
// a known point after each call returned rather than by chance during one.
func signalSelf(t *testing.T) {
	require.NoError(t, unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.SIGURG))
}
