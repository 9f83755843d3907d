package sector

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serpentPath is one of the bitsliced Serpents: its assembly, the blocks it takes at a time,
// and whether this machine runs it.
type serpentPath struct {
	name     string
	have     bool
	avx512   bool // the value of serpentUseAVX512 that selects it
	step     int
	enc, dec func(k *uint32, dst, src *byte, n int)
}

// serpentPaths are both bitsliced Serpents; on a machine with AVX-512 both run, the AVX2 one
// forced through serpentUseAVX512 as on a CPU without AVX-512.
func serpentPaths() []serpentPath {
	return []serpentPath{
		{"AVX-512", haveSerpentAVX512, true, 32, serpentEnc32, serpentDec32},
		{"AVX2", haveSerpentAVX2, false, 8, serpentEnc8AVX2, serpentDec8AVX2},
	}
}

// useSerpentPath makes serpentEnc and serpentDec (and so every Cipher) run p until the test
// ends, or skips when this CPU cannot run it.
func useSerpentPath(t testing.TB, p serpentPath) {
	t.Helper()
	if !p.have {
		t.Skipf("no %s on this machine", p.name)
	}
	old := serpentUseAVX512
	serpentUseAVX512 = p.avx512
	t.Cleanup(func() { serpentUseAVX512 = old })
}

// The AVX-512 Serpent where there is AVX-512, the AVX2 one where there is only AVX2.
func TestSerpentPathSelection(t *testing.T) {
	require.Equal(t, haveSerpentAVX512 || haveSerpentAVX2, haveSerpentSIMD)
	require.Equal(t, haveSerpentAVX512, serpentUseAVX512)
	if haveSerpentAVX2 && !haveSerpentAVX512 {
		require.Equal(t, 8, serpentStep())
	}
	for _, p := range serpentPaths() {
		t.Run(p.name, func(t *testing.T) {
			useSerpentPath(t, p)
			require.Equal(t, p.step, serpentStep())
		})
	}
}

// Each bitsliced Serpent against the portable serpentBlock, block by block, for every key
// length class, random data, several steps per call and in place.
func TestSerpentSIMDAgainstPortable(t *testing.T) {
	for pi, p := range serpentPaths() {
		t.Run(p.name, func(t *testing.T) {
			useSerpentPath(t, p)
			rng := rand.New(rand.NewPCG(31, uint64(32+pi)))
			for _, kl := range []int{0, 1, 16, 24, 31, 32} {
				key := make([]byte, kl)
				for i := range key {
					key[i] = byte(rng.Uint32())
				}
				b, err := newSerpent(key)
				require.NoError(t, err)
				sb := b.(*serpentBlock)
				for _, steps := range []int{1, 2, 3, 4, 5, 12} {
					n := steps * p.step
					src := make([]byte, 16*n)
					for i := range src {
						src[i] = byte(rng.Uint32())
					}
					want := make([]byte, len(src))
					wantDec := make([]byte, len(src))
					for i := 0; i < len(src); i += 16 {
						sb.Encrypt(want[i:i+16], src[i:i+16])
						sb.Decrypt(wantDec[i:i+16], src[i:i+16])
					}
					got := make([]byte, len(src))
					p.enc(&sb.k[0][0], &got[0], &src[0], n)
					require.Equal(t, want, got, "encrypt key %d n %d", kl, n)
					p.dec(&sb.k[0][0], &got[0], &src[0], n)
					require.Equal(t, wantDec, got, "decrypt key %d n %d", kl, n)
					copy(got, want)
					p.dec(&sb.k[0][0], &got[0], &got[0], n)
					require.Equal(t, src, got, "decrypt in place key %d n %d", kl, n)
				}
			}
		})
	}
}

// Published vectors through each bitsliced Serpent: cryptsetup's ECB vectors (as in
// TestSerpentCryptsetupVectors), NESSIE set 1 and the AES submission's 192- and 256-bit ones
// (reversed, as in TestSerpentReferenceVectors), each repeated to fill a sector so that every
// lane of the registers carries it; every copy must come out as the published ciphertext, and
// back, by the assembly alone and by a whole serpent-ecb call.
func TestSerpentSIMDVectors(t *testing.T) {
	pt := "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
	vectors := []struct {
		key, pt, ct string
		reverse     bool
	}{
		{"2b7e151628aed2a6abf7158809cf4f3c", pt, "f7a721e6c756b655cbdf533fc3b31ac44bc604293a81a6a6e4cba78d1a32a29ecfc28e5097dd6b49a938b1515ebc5aacfed2c49592f91c0c9f17cd86386529eb", false},
		{"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", pt, "78e5848ed9d5de2d4db02f53616afdf2505df16892408ef69c3b9ea667d9ddb8b95fc82076521dce60e4fcace3d39151092262de626dc57b4c870c65e71fc713", false},
		{"80000000000000000000000000000000", "00000000000000000000000000000000", "264e5481eff42a4606abda06c0bfda3d", false},
		{"8000000000000000000000000000000000000000000000000000000000000000", "00000000000000000000000000000000", "a223aa1288463c0e2be38ebd825616c0", false},
		{"800000000000000000000000000000000000000000000000", "00000000000000000000000000000000", "e78e5402c7195568ac3678f7a3f60c66", true},
		{"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "000102030405060708090a0b0c0d0e0f", "64a91a37ed9fe749a84e76d6f50d78ee", true},
	}
	for _, p := range serpentPaths() {
		t.Run(p.name, func(t *testing.T) {
			useSerpentPath(t, p)
			for _, tc := range vectors {
				key, pt, ct := unhex(t, tc.key), unhex(t, tc.pt), unhex(t, tc.ct)
				if tc.reverse {
					key, pt, ct = reversed(key), reversed(pt), reversed(ct)
				}
				b, err := newSerpent(key)
				require.NoError(t, err)
				k := &b.(*serpentBlock).k[0][0]
				src := bytes.Repeat(pt, SectorSize/len(pt))
				want := bytes.Repeat(ct, SectorSize/len(pt))
				got := make([]byte, len(src))
				p.enc(k, &got[0], &src[0], SectorSize/16)
				require.Equal(t, want, got, "key %s", tc.key)
				p.dec(k, &got[0], &got[0], SectorSize/16)
				require.Equal(t, src, got, "key %s decrypt", tc.key)

				c, err := New("serpent", "ecb", key)
				require.NoError(t, err)
				require.NotNil(t, c.sp, "serpent-ecb must run the bitsliced code")
				c.Encrypt(got, src, 0)
				require.Equal(t, want, got, "key %s serpent-ecb", tc.key)
				c.Decrypt(got, got, 0)
				require.Equal(t, src, got, "key %s serpent-ecb decrypt", tc.key)
			}
		})
	}
}

// Whole calls through each bitsliced Serpent (IVs and tweaks batched per 32 sectors, one or
// two sectors per call on the portable block) against the portable Cipher, for 128-, 192- and
// 256-bit keys, runs that cross a batch boundary, random run lengths and sector numbers.
func TestSerpentSIMDMatchesPortable(t *testing.T) {
	if !haveSerpentSIMD {
		t.Skip("no AVX2 on this machine (or a purego build): the portable Serpent is what runs here")
	}
	for pi, p := range serpentPaths() {
		t.Run(p.name, func(t *testing.T) {
			useSerpentPath(t, p)
			rng := rand.New(rand.NewPCG(41, uint64(42+pi)))
			for _, spec := range []string{"serpent-xts-plain64", "serpent-xts-essiv:sha256", "serpent-cbc-essiv:sha256", "serpent-cbc-plain64", "serpent-ecb", "serpent-cbc-essiv:sha1", "serpent-xts-plain",
				"serpent-cbc-eboiv", "serpent-xts-eboiv", "serpent-xts-plain64be", "serpent-cbc-plain64be", "serpent-cbc-plain"} {
				name, mode, err := SplitSpec(spec)
				require.NoError(t, err)
				s, err := ParseSpec(name, mode)
				require.NoError(t, err)
				for _, kl := range []int{16, 24, 32} {
					key := make([]byte, kl)
					if s.Chain == "xts" {
						key = make([]byte, 2*kl)
					}
					for i := range key {
						key[i] = byte(rng.Uint32())
					}
					fast, err := newCipher(s, key, bestImpl())
					require.NoError(t, err)
					require.NotNil(t, fast.sp)
					slow, err := newCipher(s, key, implPortable)
					require.NoError(t, err)
					require.Nil(t, slow.sp)
					runs := []int{1, 2, 3, 8, 31, 32, 33, 70, 1 + rng.IntN(80), 1 + rng.IntN(80)}
					for run := range len(runs) + len(wrapRuns) {
						first := rng.Uint64() >> rng.IntN(64)
						var nsec int
						if run < len(runs) {
							nsec = runs[run]
						} else {
							nsec, first = wrapRuns[run-len(runs)].nsec, wrapRuns[run-len(runs)].first
						}
						pt := make([]byte, nsec*SectorSize)
						for i := range pt {
							pt[i] = byte(rng.Uint32())
						}
						a, b := make([]byte, len(pt)), make([]byte, len(pt))
						fast.Encrypt(a, pt, first)
						slow.Encrypt(b, pt, first)
						require.Equal(t, b, a, "%s-%d ×%d from %d encrypt", spec, 8*kl, nsec, first)
						fast.Decrypt(a, a, first)
						require.Equal(t, pt, a, "%s-%d ×%d from %d decrypt in place", spec, 8*kl, nsec, first)
						slow.Decrypt(b, b, first)
						require.Equal(t, pt, b, "%s-%d ×%d from %d portable decrypt", spec, 8*kl, nsec, first)
					}
				}
			}
		})
	}
}

// TestSIMDWithoutAESNI: a CPU (or a VM) with AVX2 but without AES-NI runs the SIMD Serpent
// and Twofish all the same, each gated on its own CPU flags and not on the AES level. The
// SIMD tests run again in a child with GODEBUG=cpu.aes=off, which hides AES-NI from
// golang.org/x/sys/cpu as such a VM does; the child also checks what New chose.
func TestSIMDWithoutAESNI(t *testing.T) {
	if strings.Contains(os.Getenv("GODEBUG"), "cpu.aes=off") {
		require.False(t, haveAESNI)
		if !haveSerpentSIMD && !haveTwofishAVX2 {
			require.Equal(t, implPortable, bestImpl())
			return
		}
		require.Equal(t, implSIMD, bestImpl())
		c, err := New("serpent", "xts-plain64", make([]byte, 64))
		require.NoError(t, err)
		require.Equal(t, haveSerpentSIMD, c.sp != nil, "serpent-xts-plain64 without AES-NI")
		c, err = New("twofish", "cbc-essiv:sha256", make([]byte, 32))
		require.NoError(t, err)
		require.Equal(t, haveTwofishAVX2, c.tf != nil, "twofish-cbc-essiv:sha256 without AES-NI")
		require.Nil(t, c.ni)
		return
	}
	if testing.Short() {
		t.Skip("runs the SIMD tests again in a child process; not in -short")
	}
	if !haveSerpentSIMD && !haveTwofishAVX2 {
		t.Skip("no AVX2 on this machine (or a purego build): there is no SIMD code to keep")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^(TestSIMDWithoutAESNI|TestSerpentPathSelection|TestTwofishPathSelection|TestSerpentSIMD.*|TestTwofishSIMD.*)$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "GODEBUG=cpu.aes=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child with GODEBUG=cpu.aes=off: %v\n%s", err, out)
	}
	// A skipped SIMD test would pass without showing anything.
	// (A path this CPU lacks, AVX-512 say, skips as a subtest: indented.)
	require.NotRegexp(t, `(?m)^--- SKIP`, string(out), "child with GODEBUG=cpu.aes=off")
	require.Contains(t, string(out), "--- PASS: TestSIMDWithoutAESNI")
}
