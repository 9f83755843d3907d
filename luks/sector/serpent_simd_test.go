package sector

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The AVX-512 Serpent against the portable serpentBlock, block by block, for every key
// length class, random data, several sectors per call and in place.
func TestSerpentAVX512AgainstPortable(t *testing.T) {
	if !haveSerpentAVX512 {
		t.Skip("no AVX-512 on this machine: the portable Serpent is what runs here")
	}
	rng := rand.New(rand.NewPCG(31, 32))
	for _, kl := range []int{0, 1, 16, 24, 31, 32} {
		key := make([]byte, kl)
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		b, err := newSerpent(key)
		require.NoError(t, err)
		sb := b.(*serpentBlock)
		for _, n := range []int{32, 64, 96} {
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
			serpentEnc32(&sb.k[0][0], &got[0], &src[0], n)
			require.Equal(t, want, got, "encrypt key %d n %d", kl, n)
			serpentDec32(&sb.k[0][0], &got[0], &src[0], n)
			require.Equal(t, wantDec, got, "decrypt key %d n %d", kl, n)
			copy(got, want)
			serpentDec32(&sb.k[0][0], &got[0], &got[0], n)
			require.Equal(t, src, got, "decrypt in place key %d n %d", kl, n)
		}
	}
}

// The published ECB vectors (cryptsetup's, as in TestSerpentCryptsetupVectors) through the
// AVX-512 code: the four blocks repeated to fill the 32 one call takes, each copy must come
// out as the published ciphertext, and back.
func TestSerpentAVX512Vectors(t *testing.T) {
	if !haveSerpentAVX512 {
		t.Skip("no AVX-512 on this machine: the portable Serpent is what runs here")
	}
	pt := unhex(t, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	for _, tc := range []struct{ key, ct string }{
		{"2b7e151628aed2a6abf7158809cf4f3c", "f7a721e6c756b655cbdf533fc3b31ac44bc604293a81a6a6e4cba78d1a32a29ecfc28e5097dd6b49a938b1515ebc5aacfed2c49592f91c0c9f17cd86386529eb"},
		{"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", "78e5848ed9d5de2d4db02f53616afdf2505df16892408ef69c3b9ea667d9ddb8b95fc82076521dce60e4fcace3d39151092262de626dc57b4c870c65e71fc713"},
	} {
		b, err := newSerpent(unhex(t, tc.key))
		require.NoError(t, err)
		k := &b.(*serpentBlock).k[0][0]
		src := bytes.Repeat(pt, SectorSize/len(pt))
		got := make([]byte, len(src))
		serpentEnc32(k, &got[0], &src[0], SectorSize/16)
		require.Equal(t, bytes.Repeat(unhex(t, tc.ct), SectorSize/len(pt)), got, "key %s", tc.key)
		serpentDec32(k, &got[0], &got[0], SectorSize/16)
		require.Equal(t, src, got, "key %s decrypt", tc.key)
	}
}

// Whole calls through the AVX-512 Serpent paths (IVs and tweaks batched per 32 sectors, one
// or two sectors per call on the portable block) against the portable Cipher, for runs that
// cross a batch boundary and random sector numbers.
func TestSerpentAVX512MatchesPortable(t *testing.T) {
	if !haveSerpentAVX512 || bestImpl() == implPortable {
		t.Skip("no AVX-512 on this machine: the portable Serpent is what runs here")
	}
	rng := rand.New(rand.NewPCG(41, 42))
	for _, spec := range []string{"serpent-xts-plain64", "serpent-xts-essiv:sha256", "serpent-cbc-essiv:sha256", "serpent-cbc-plain64", "serpent-ecb", "serpent-cbc-essiv:sha1"} {
		name, mode, err := SplitSpec(spec)
		require.NoError(t, err)
		s, err := ParseSpec(name, mode)
		require.NoError(t, err)
		key := make([]byte, 32)
		if s.Chain == "xts" {
			key = make([]byte, 64)
		}
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		fast, err := newCipher(s, key, bestImpl())
		require.NoError(t, err)
		require.NotNil(t, fast.sp)
		slow, err := newCipher(s, key, implPortable)
		require.NoError(t, err)
		for _, nsec := range []int{1, 2, 3, 31, 32, 33, 70} {
			first := rng.Uint64() >> rng.IntN(64)
			pt := make([]byte, nsec*SectorSize)
			for i := range pt {
				pt[i] = byte(rng.Uint32())
			}
			a, b := make([]byte, len(pt)), make([]byte, len(pt))
			fast.Encrypt(a, pt, first)
			slow.Encrypt(b, pt, first)
			require.Equal(t, b, a, "%s ×%d from %d encrypt", spec, nsec, first)
			fast.Decrypt(a, a, first)
			require.Equal(t, pt, a, "%s ×%d from %d decrypt in place", spec, nsec, first)
		}
	}
}
