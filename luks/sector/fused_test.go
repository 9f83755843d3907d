package sector

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	xxts "golang.org/x/crypto/xts"
)

// The fused sector functions (VAES, and AES-NI with AVX for XTS), called directly, against crypto/aes (through x/crypto/xts
// and crypto/cipher's CBC): every sector count up to 13 covers whole and partial groups of
// four sectors, the sector numbers cover the carry into the high quadword of a tweak that
// never happens (plain64 wraps at 2^64 like dm-crypt) and in-place use.
func TestVAESFusedAgainstCryptoAES(t *testing.T) {
	if !haveAESNIAVX {
		t.Skip("no AES-NI with AVX on this machine: the fused functions are not used here")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	firsts := []uint64{0, 1, 3, 0xfffffffc, 1 << 40, ^uint64(0) - 5, ^uint64(0)}
	for _, kl := range []int{16, 32} {
		k1, k2 := rnd(kl), rnd(kl)
		xk, err := xxts.NewCipher(aes.NewCipher, append(append([]byte(nil), k1...), k2...))
		require.NoError(t, err)
		s1, s2 := expandAESKey(k1), expandAESKey(k2)
		for nsec := 1; nsec <= 13; nsec++ {
			for _, first := range firsts {
				pt := rnd(nsec * SectorSize)
				want := make([]byte, len(pt))
				for i := 0; i < nsec; i++ {
					xk.Encrypt(want[i*SectorSize:(i+1)*SectorSize], pt[i*SectorSize:(i+1)*SectorSize], first+uint64(i))
				}
				got := make([]byte, len(pt))
				if haveVAES {
					vaesXTSPlain64Enc(s1.rounds, &s1.enc[0], &s2.enc[0], &got[0], &pt[0], first, nsec)
					require.Equal(t, want, got, "xts enc key %d ×%d from %d", kl, nsec, first)
					vaesXTSPlain64Dec(s1.rounds, &s1.dec[0], &s2.enc[0], &got[0], &got[0], first, nsec)
					require.Equal(t, pt, got, "xts dec in place key %d ×%d from %d", kl, nsec, first)
					clear(got)
				}
				aesniXTSPlain64Enc(s1.rounds, &s1.enc[0], &s2.enc[0], &got[0], &pt[0], first, nsec)
				require.Equal(t, want, got, "aes-ni xts enc key %d ×%d from %d", kl, nsec, first)
				aesniXTSPlain64Dec(s1.rounds, &s1.dec[0], &s2.enc[0], &got[0], &got[0], first, nsec)
				require.Equal(t, pt, got, "aes-ni xts dec in place key %d ×%d from %d", kl, nsec, first)
			}
		}
		// CBC with plain64 and with ESSIV-style IVs (an independent AES-256 IV key, as
		// essiv:sha256 gives whatever the data key's size).
		ivKey := rnd(32)
		ivBlock, err := aes.NewCipher(ivKey)
		require.NoError(t, err)
		sIV := expandAESKey(ivKey)
		data, err := aes.NewCipher(k1)
		require.NoError(t, err)
		if !haveVAES {
			continue
		}
		for _, essiv := range []bool{false, true} {
			for nsec := 1; nsec <= 13; nsec++ {
				for _, first := range firsts {
					ct := rnd(nsec * SectorSize)
					want := make([]byte, len(ct))
					for i := 0; i < nsec; i++ {
						iv := make([]byte, 16)
						binary.LittleEndian.PutUint64(iv, first+uint64(i))
						if essiv {
							ivBlock.Encrypt(iv, iv)
						}
						cipher.NewCBCDecrypter(data, iv).CryptBlocks(want[i*SectorSize:(i+1)*SectorSize], ct[i*SectorSize:(i+1)*SectorSize])
					}
					got := make([]byte, len(ct))
					nr, rk := 0, (*byte)(nil)
					if essiv {
						nr, rk = sIV.rounds, &sIV.enc[0]
					}
					vaesCBCDecSectors(s1.rounds, &s1.dec[0], nr, rk, &got[0], &ct[0], first, nsec)
					require.Equal(t, want, got, "cbc dec essiv=%v key %d ×%d from %d", essiv, kl, nsec, first)
					vaesCBCDecSectors(s1.rounds, &s1.dec[0], nr, rk, &ct[0], &ct[0], first, nsec)
					require.Equal(t, want, ct, "cbc dec in place essiv=%v key %d ×%d from %d", essiv, kl, nsec, first)
				}
			}
		}
	}
}

// An empty buffer is a batch of no sectors: every implementation returns without touching
// memory (the fused assembly is never handed a pointer to an empty slice).
func TestEmptyBatch(t *testing.T) {
	for impl := implPortable; impl <= bestImpl(); impl++ {
		for _, spec := range []string{"aes-xts-plain64", "aes-cbc-essiv:sha256", "aes-cbc-plain64", "serpent-xts-plain64", "aes-ecb"} {
			name, mode, err := SplitSpec(spec)
			require.NoError(t, err)
			s, err := ParseSpec(name, mode)
			require.NoError(t, err)
			c, err := newCipher(s, make([]byte, 64)[:map[bool]int{true: 64, false: 32}[s.Chain == "xts"]], impl)
			require.NoError(t, err)
			require.NotPanics(t, func() {
				c.Encrypt(nil, nil, 7)
				c.Decrypt([]byte{}, []byte{}, 7)
			}, "%s %s", implNames[impl], spec)
		}
	}
}
