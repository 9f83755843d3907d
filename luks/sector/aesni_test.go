package sector

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FIPS-197 Appendix A: the last round key of each expansion.
func TestExpandAESKey(t *testing.T) {
	tests := []struct{ key, last string }{
		{"2b7e151628aed2a6abf7158809cf4f3c", "d014f9a8c9ee2589e13f0cc8b6630ca6"},
		{"8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b", "e98ba06f448c773c8ecc720401002202"},
		{"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", "fe4890d1e6188d0b046df344706c631e"},
	}
	for _, tc := range tests {
		k := expandAESKey(unhex(t, tc.key))
		nr := k.rounds
		assert.Equal(t, tc.last, hex.EncodeToString(k.enc[16*nr:16*nr+16]), tc.key)
		assert.Equal(t, tc.key[:32], hex.EncodeToString(k.enc[:16]))
		assert.Equal(t, tc.last, hex.EncodeToString(k.dec[:16]))
	}
}

// The assembly against crypto/aes for all key sizes, block counts around the 8-way
// boundary, and in-place use.
func TestAESNIAgainstCryptoAES(t *testing.T) {
	if !haveAESNI {
		t.Skip("no AES-NI on this machine: the portable code is what runs here")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, kl := range []int{16, 24, 32} {
		for trial := 0; trial < 5; trial++ {
			key := rnd(kl)
			ref, err := aes.NewCipher(key)
			require.NoError(t, err)
			k := expandAESKey(key)
			for _, n := range []int{0, 1, 2, 7, 8, 9, 15, 16, 17, 32, 33} {
				src := rnd(16 * n)
				tw := rnd(16 * n)
				iv := rnd(16)
				want := make([]byte, len(src))
				wantDec := make([]byte, len(src))
				for i := 0; i < len(src); i += 16 {
					var x [16]byte
					for j := range x {
						x[j] = src[i+j] ^ tw[i+j]
					}
					ref.Encrypt(want[i:], x[:])
					ref.Decrypt(wantDec[i:], x[:])
					for j := 0; j < 16; j++ {
						want[i+j] ^= tw[i+j]
						wantDec[i+j] ^= tw[i+j]
					}
				}
				got := make([]byte, len(src)+1) // +1 so &got[0] is valid for n == 0
				aesniXEXEnc(k.rounds, &k.enc[0], &got[0], ptr(src), ptr(tw), n)
				require.Equal(t, want, got[:len(src)], "XEX enc key %d n %d", kl, n)
				aesniXEXDec(k.rounds, &k.dec[0], &got[0], ptr(src), ptr(tw), n)
				require.Equal(t, wantDec, got[:len(src)], "XEX dec key %d n %d", kl, n)

				cbcWant := make([]byte, len(src))
				cipher.NewCBCEncrypter(ref, iv).CryptBlocks(cbcWant, src)
				aesniCBCEnc(k.rounds, &k.enc[0], &got[0], ptr(src), &iv[0], n)
				require.Equal(t, cbcWant, got[:len(src)], "CBC enc key %d n %d", kl, n)
				cipher.NewCBCDecrypter(ref, iv).CryptBlocks(cbcWant, src)
				aesniCBCDec(k.rounds, &k.dec[0], &got[0], ptr(src), &iv[0], n)
				require.Equal(t, cbcWant, got[:len(src)], "CBC dec key %d n %d", kl, n)
				// in place
				inplace := append(append([]byte(nil), src...), 0)
				aesniCBCDec(k.rounds, &k.dec[0], &inplace[0], &inplace[0], &iv[0], n)
				require.Equal(t, cbcWant, inplace[:len(src)], "CBC dec in place key %d n %d", kl, n)
				copy(inplace, src)
				aesniXEXEnc(k.rounds, &k.enc[0], &inplace[0], &inplace[0], ptr(tw), n)
				require.Equal(t, want, inplace[:len(src)], "XEX enc in place key %d n %d", kl, n)
			}
		}
	}
}

func ptr(b []byte) *byte {
	if len(b) == 0 {
		var z [16]byte
		return &z[0]
	}
	return &b[0]
}

// The VAES variants against crypto/aes, for block counts that are multiples of 32.
func TestVAESAgainstCryptoAES(t *testing.T) {
	if !haveVAES {
		t.Skip("no AVX-512 VAES on this machine: the AES-NI code is what runs here")
	}
	rng := rand.New(rand.NewPCG(11, 12))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, kl := range []int{16, 24, 32} {
		key := rnd(kl)
		ref, err := aes.NewCipher(key)
		require.NoError(t, err)
		k := expandAESKey(key)
		for _, n := range []int{0, 32, 64, 256} {
			src := rnd(16*n + 16)[:16*n]
			tw := rnd(16*n + 16)[:16*n]
			want := make([]byte, len(src))
			wantDec := make([]byte, len(src))
			for i := 0; i < len(src); i += 16 {
				var x [16]byte
				for j := range x {
					x[j] = src[i+j] ^ tw[i+j]
				}
				ref.Encrypt(want[i:], x[:])
				ref.Decrypt(wantDec[i:], x[:])
				for j := 0; j < 16; j++ {
					want[i+j] ^= tw[i+j]
					wantDec[i+j] ^= tw[i+j]
				}
			}
			got := make([]byte, len(src)+16)
			vaesXEXEnc(k.rounds, &k.enc[0], &got[0], ptr(src), ptr(tw), n)
			require.Equal(t, want, got[:len(src)], "VAES enc key %d n %d", kl, n)
			vaesXEXDec(k.rounds, &k.dec[0], &got[0], ptr(src), ptr(tw), n)
			require.Equal(t, wantDec, got[:len(src)], "VAES dec key %d n %d", kl, n)
			copy(got, src)
			vaesXEXEnc(k.rounds, &k.enc[0], &got[0], &got[0], ptr(tw), n)
			require.Equal(t, want, got[:len(src)], "VAES enc in place key %d n %d", kl, n)
		}
	}
}

// The in-register tweak derivation (×α⁴ per group of four) against the scalar doubling, for
// tweaks whose top bits exercise the reduction.
func TestVAESXTSTweaks(t *testing.T) {
	if !haveVAES {
		t.Skip("no AVX-512 VAES on this machine: the AES-NI code is what runs here")
	}
	rng := rand.New(rand.NewPCG(13, 14))
	for _, kl := range []int{16, 32} {
		key := make([]byte, kl)
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		k := expandAESKey(key)
		firsts := [][16]byte{{}, {1}, {15: 0x80}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {7: 0x80, 15: 0xf0}}
		for i := 0; i < 20; i++ {
			var r [16]byte
			for j := range r {
				r[j] = byte(rng.Uint32())
			}
			firsts = append(firsts, r)
		}
		nsec := len(firsts)
		src := make([]byte, nsec*SectorSize)
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		tw := make([]byte, len(src))
		tw4 := make([]byte, nsec*64)
		for j, f := range firsts {
			f2 := f
			xtsTweaksFrom(tw[j*SectorSize:(j+1)*SectorSize], &f2)
			f2 = f
			xtsTweaksFrom(tw4[j*64:(j+1)*64], &f2)
		}
		want := make([]byte, len(src))
		aesniXEXEnc(k.rounds, &k.enc[0], &want[0], &src[0], &tw[0], len(src)/16)
		got := make([]byte, len(src))
		vaesXTSEnc(k.rounds, &k.enc[0], &got[0], &src[0], &tw4[0], nsec)
		require.Equal(t, want, got, "key %d encrypt", kl)
		vaesXTSDec(k.rounds, &k.dec[0], &got[0], &got[0], &tw4[0], nsec)
		require.Equal(t, src, got, "key %d decrypt in place", kl)
	}
}

// Eight interleaved CBC chains equal eight separate ones.
func TestAESNICBCEnc8(t *testing.T) {
	if !haveAESNI {
		t.Skip("no AES-NI on this machine")
	}
	rng := rand.New(rand.NewPCG(15, 16))
	for _, kl := range []int{16, 24, 32} {
		key := make([]byte, kl)
		src := make([]byte, 8*SectorSize)
		ivs := make([]byte, 8*16)
		for _, b := range [][]byte{key, src, ivs} {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
		}
		ref, err := aes.NewCipher(key)
		require.NoError(t, err)
		want := make([]byte, len(src))
		for i := 0; i < 8; i++ {
			cipher.NewCBCEncrypter(ref, ivs[16*i:16*i+16]).CryptBlocks(want[i*SectorSize:(i+1)*SectorSize], src[i*SectorSize:(i+1)*SectorSize])
		}
		k := expandAESKey(key)
		got := make([]byte, len(src))
		aesniCBCEnc8(k.rounds, &k.enc[0], &got[0], &src[0], &ivs[0])
		require.Equal(t, want, got, "key %d", kl)
		aesniCBCEnc8(k.rounds, &k.enc[0], &src[0], &src[0], &ivs[0])
		require.Equal(t, want, src, "key %d in place", kl)
	}
}
