package sector

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/cpu"
	//lint:ignore SA1019 the reference the SIMD Twofish is tested against.
	"golang.org/x/crypto/twofish"
)

// The table schedule (newTwofishKey, which the assembly uses) against x/crypto/twofish, block
// by block, on random keys of every size.
func TestTwofishKeyAgainstXCrypto(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 2))
	for _, kl := range []int{16, 24, 32} {
		for range 20 {
			key := make([]byte, kl)
			for i := range key {
				key[i] = byte(rng.Uint32())
			}
			ref, err := twofish.NewCipher(key)
			require.NoError(t, err)
			tk, err := newTwofishKey(key)
			require.NoError(t, err)
			var src, want, got [16]byte
			for i := range src {
				src[i] = byte(rng.Uint32())
			}
			ref.Encrypt(want[:], src[:])
			tk.Encrypt(got[:], src[:])
			require.Equal(t, want, got, "encrypt, %d-byte key", kl)
			ref.Decrypt(want[:], src[:])
			tk.Decrypt(got[:], src[:])
			require.Equal(t, want, got, "decrypt, %d-byte key", kl)
		}
	}
	for _, kl := range []int{0, 15, 20, 33} {
		_, err := newTwofishKey(make([]byte, kl))
		require.ErrorIs(t, err, ErrInvalidKeySize)
	}
}

// twofishPaths runs f once per SIMD path this machine has, AVX-512 first, with
// twofishUseAVX512 set accordingly (restored afterwards): the AVX2 code runs here too.
func twofishPaths(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	if !haveTwofishAVX2 {
		t.Skip("no AVX2 on this machine (or a purego build): x/crypto/twofish is what runs here")
	}
	defer func(old bool) { twofishUseAVX512 = old }(twofishUseAVX512)
	paths := []bool{false}
	if twofishUseAVX512 {
		paths = []bool{true, false}
	}
	for _, wide := range paths {
		twofishUseAVX512 = wide
		name := "avx2"
		if wide {
			name = "avx512"
		}
		t.Run(name, f)
	}
}

// The SIMD block code against x/crypto/twofish, block by block, for every key size, several
// steps per call and in place.
func TestTwofishSIMDAgainstXCrypto(t *testing.T) {
	twofishPaths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(13, 3))
		for _, kl := range []int{16, 24, 32} {
			key := make([]byte, kl)
			for i := range key {
				key[i] = byte(rng.Uint32())
			}
			ref, err := twofish.NewCipher(key)
			require.NoError(t, err)
			tk, err := newTwofishKey(key)
			require.NoError(t, err)
			for _, n := range []int{32, 64, 96} {
				src := make([]byte, 16*n)
				for i := range src {
					src[i] = byte(rng.Uint32())
				}
				want := make([]byte, len(src))
				wantDec := make([]byte, len(src))
				for i := 0; i < len(src); i += 16 {
					ref.Encrypt(want[i:i+16], src[i:i+16])
					ref.Decrypt(wantDec[i:i+16], src[i:i+16])
				}
				got := make([]byte, len(src))
				twofishBlocks(tk, &got[0], &src[0], n, true)
				require.Equal(t, want, got, "encrypt key %d n %d", kl, n)
				twofishBlocks(tk, &got[0], &src[0], n, false)
				require.Equal(t, wantDec, got, "decrypt key %d n %d", kl, n)
				copy(got, want)
				twofishBlocks(tk, &got[0], &got[0], n, false)
				require.Equal(t, src, got, "decrypt in place key %d n %d", kl, n)
			}
		}
	})
}

// Every Twofish mode the SIMD code serves against the portable Cipher (twofishKey in Go) on
// random keys of each size, random run lengths (across the 32-sector IV batch) and random
// sector numbers, in place and out of place, in both SIMD paths.
func TestTwofishSIMDMatchesPortable(t *testing.T) {
	twofishPaths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(13, 4))
		for _, spec := range []string{"twofish-xts-plain64", "twofish-cbc-plain64", "twofish-cbc-essiv:sha256",
			"twofish-ecb", "twofish-xts-essiv:sha256", "twofish-cbc-plain", "twofish-xts-benbi",
			"twofish-cbc-eboiv", "twofish-xts-eboiv", "twofish-xts-plain64be", "twofish-cbc-plain64be"} {
			name, mode, err := SplitSpec(spec)
			require.NoError(t, err)
			s, err := ParseSpec(name, mode)
			require.NoError(t, err)
			for _, bits := range []int{128, 192, 256} {
				kl := bits / 8
				if s.Chain == "xts" {
					kl *= 2
				}
				key := make([]byte, kl)
				for i := range key {
					key[i] = byte(rng.Uint32())
				}
				ref, err := newCipher(s, key, implPortable)
				require.NoError(t, err)
				require.Nil(t, ref.tf)
				c, err := newCipher(s, key, bestImpl())
				require.NoError(t, err)
				require.NotNil(t, c.tf, "%s: the SIMD schedule must be built", spec)
				require.Equal(t, s.IV == "essiv", c.tf.essiv != nil)
				for run := range 6 + len(wrapRuns) {
					nsec := 1 + rng.IntN(70)
					first := rng.Uint64()
					if rng.IntN(2) == 0 {
						first = uint64(rng.IntN(1 << 20))
					}
					if run >= 6 {
						nsec, first = wrapRuns[run-6].nsec, wrapRuns[run-6].first
					}
					pt := make([]byte, nsec*SectorSize)
					for i := range pt {
						pt[i] = byte(rng.Uint32())
					}
					want := make([]byte, len(pt))
					ref.Encrypt(want, pt, first)
					got := make([]byte, len(pt))
					c.Encrypt(got, pt, first)
					require.Equal(t, want, got, "%s %d-bit %d sectors from %d: encrypt", spec, bits, nsec, first)
					ref.Decrypt(want, pt, first)
					c.Decrypt(got, pt, first)
					require.Equal(t, want, got, "%s %d-bit %d sectors from %d: decrypt", spec, bits, nsec, first)
					c.Decrypt(pt, pt, first)
					require.Equal(t, want, pt, "%s in-place decrypt", spec)
				}
			}
		}
	})
}

// The published vectors (the Twofish paper's 128-, 192- and 256-bit ECB results, as in
// TestTwofishVectors) through each SIMD path: the block repeated over a sector, each copy
// must come out as published, and back.
func TestTwofishSIMDVectors(t *testing.T) {
	twofishPaths(t, func(t *testing.T) {
		for _, tc := range []struct{ key, pt, ct string }{
			{"00000000000000000000000000000000", "00000000000000000000000000000000", "9f589f5cf6122c32b6bfec2f2ae8c35a"},
			{"0123456789abcdeffedcba98765432100011223344556677", "00000000000000000000000000000000", "cfd1d2e5a9be9cdf501f13b892bd2248"},
			{"0123456789abcdeffedcba987654321000112233445566778899aabbccddeeff", "00000000000000000000000000000000", "37527be0052334b89f0cfccae87cfa20"},
			// The paper's 128-bit table, second and third steps (the plaintext is the
			// previous ciphertext).
			{"00000000000000000000000000000000", "9f589f5cf6122c32b6bfec2f2ae8c35a", "d491db16e7b1c39e86cb086b789f5419"},
			{"9f589f5cf6122c32b6bfec2f2ae8c35a", "d491db16e7b1c39e86cb086b789f5419", "019f9809de1711858faac3a3ba20fbc3"},
		} {
			c, err := New("twofish", "ecb", unhex(t, tc.key))
			require.NoError(t, err)
			require.NotNil(t, c.tf)
			pt := unhex(t, tc.pt)
			buf := make([]byte, SectorSize)
			for i := 0; i < SectorSize; i += 16 {
				copy(buf[i:], pt)
			}
			c.Encrypt(buf, buf, 0)
			for i := 0; i < SectorSize; i += 16 {
				require.Equal(t, tc.ct, hex.EncodeToString(buf[i:i+16]), "key %s block %d", tc.key, i/16)
			}
			c.Decrypt(buf, buf, 0)
			for i := 0; i < SectorSize; i += 16 {
				require.Equal(t, pt, buf[i:i+16], "key %s block %d back", tc.key, i/16)
			}
		}
	})
}

// The assembly addresses the schedule by fixed offsets (_asm/twofish.go): the S-box words at
// 0, the subkeys at 4096, the byte S-boxes at 4352.
func TestTwofishKeyLayout(t *testing.T) {
	var k twofishKey
	require.Equal(t, uintptr(0), unsafe.Offsetof(k.s))
	require.Equal(t, uintptr(4096), unsafe.Offsetof(k.k))
	require.Equal(t, uintptr(4352), unsafe.Offsetof(k.b))
}

// schedules are the key-dependent objects c holds (data, tweak and ESSIV ciphers, the SIMD
// Twofish schedules), whatever their type, each as the bytes of the struct it points to.
func schedules(c *Cipher) map[string][]byte {
	out := map[string][]byte{}
	add := func(name string, x any) {
		v := reflect.ValueOf(x)
		if !v.IsValid() || v.Kind() != reflect.Pointer || v.IsNil() {
			return
		}
		out[fmt.Sprintf("%s (%T)", name, x)] = unsafe.Slice((*byte)(v.UnsafePointer()), v.Elem().Type().Size())
	}
	add("data", c.block)
	add("tweak", c.tweak)
	add("essiv", c.essiv)
	if c.tf != nil {
		add("simd data", c.tf.data)
		add("simd tweak", c.tf.tweak)
		add("simd essiv", c.tf.essiv)
	}
	return out
}

// Wipe zeroes every Twofish schedule a Cipher built — the [4][256]uint32 tables are
// key-derived — on the portable path and the SIMD one, for every chain mode: pointers to them
// are kept across Wipe and must then read all zero. x/crypto/twofish, which the portable path
// once used, keeps tables Wipe cannot clear.
func TestWipeZeroesTwofishTables(t *testing.T) {
	for _, impl := range []int{implPortable, bestImpl()} {
		for _, spec := range []string{"twofish-xts-plain64", "twofish-cbc-essiv:sha256", "twofish-cbc-plain64",
			"twofish-ecb", "twofish-lrw-benbi", "twofish-xts-essiv:sha256"} {
			name, mode, err := SplitSpec(spec)
			require.NoError(t, err)
			s, err := ParseSpec(name, mode)
			require.NoError(t, err)
			key := make([]byte, 64)
			for i := range key {
				key[i] = byte(i + 1)
			}
			kl := 32
			switch s.Chain {
			case "xts":
				kl = 64
			case "lrw":
				kl = 48
			}
			c, err := newCipher(s, key[:kl], impl)
			require.NoError(t, err)
			buf := make([]byte, 4*SectorSize)
			c.Encrypt(buf, buf, 3)
			c.Decrypt(buf, buf, 3)
			sch := schedules(c)
			require.NotEmpty(t, sch)
			for n, b := range sch {
				require.NotZero(t, nonzero(b), "%s %s: %s is empty before Wipe", implNames[impl], spec, n)
			}
			c.Wipe()
			for n, b := range sch {
				require.Zero(t, nonzero(b), "%s %s: nonzero bytes of %s after Wipe", implNames[impl], spec, n)
			}
		}
	}
}

func nonzero(b []byte) int {
	n := 0
	for _, c := range b {
		if c != 0 {
			n++
		}
	}
	return n
}

// The AVX-512 Twofish where the CPU has AVX-512 F, BW, VBMI and GFNI, the AVX2 one where it
// has AVX2 but not all of those; both run here, and a child with GODEBUG=cpu.avx512vbmi=off
// (a CPU without VBMI: Skylake-SP, Cascade Lake) must fall back to AVX2, not to the portable
// code.
func TestTwofishPathSelection(t *testing.T) {
	full := cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VBMI && cpu.X86.HasAVX512GFNI
	if haveTwofishAVX2 {
		require.True(t, cpu.X86.HasAVX2)
	}
	require.Equal(t, haveTwofishAVX2 && full, twofishUseAVX512)
	if strings.Contains(os.Getenv("GODEBUG"), "cpu.avx512vbmi=off") {
		require.True(t, haveTwofishAVX2, "the child runs only where the parent had AVX2")
		require.False(t, twofishUseAVX512, "AVX-512 Twofish chosen without VBMI")
		require.Equal(t, 16, twofishStep())
		c, err := New("twofish", "xts-plain64", make([]byte, 64))
		require.NoError(t, err)
		require.NotNil(t, c.tf, "no VBMI: the AVX2 code, not the portable one")
		return
	}
	twofishPaths(t, func(t *testing.T) {
		require.Equal(t, map[bool]int{true: 32, false: 16}[twofishUseAVX512], twofishStep())
		c, err := New("twofish", "xts-plain64", make([]byte, 64))
		require.NoError(t, err)
		require.NotNil(t, c.tf)
	})
	if !twofishUseAVX512 || testing.Short() {
		return // no AVX-512 path to turn off, or -short: no child
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestTwofishPathSelection$", "-test.v", "-test.count=1")
	// golang.org/x/sys/cpu honours the option; the runtime's own feature list does not know
	// it and says so on stderr ("unknown cpu feature"), harmlessly.
	cmd.Env = append(os.Environ(), "GODEBUG=cpu.avx512vbmi=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child with GODEBUG=cpu.avx512vbmi=off: %v\n%s", err, out)
	}
	t.Logf("child with GODEBUG=cpu.avx512vbmi=off:\n%s", out)
	require.Contains(t, string(out), "--- PASS: TestTwofishPathSelection")
}

// wrapRuns are runs whose sector numbers wrap around 2⁶⁴ (plain64, essiv, the XTS tweak
// batch) or 2³² (plain): the batched IV code must count as the per-sector code does.
var wrapRuns = []struct {
	nsec  int
	first uint64
}{
	{70, 1<<64 - 41}, {1, 1<<64 - 1}, {3, 1<<64 - 1}, {33, 1<<64 - 1}, {40, 1<<32 - 5},
}
