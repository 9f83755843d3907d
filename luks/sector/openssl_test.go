package sector

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/stretchr/testify/require"
)

// opensslSector runs `openssl enc` on one sector. The key goes on the command line: these are
// throw-away test keys, never real key material.
func opensslSector(t *testing.T, bin, cipherName string, key, iv, data []byte) []byte {
	t.Helper()
	args := []string{"enc", "-" + cipherName, "-e", "-nopad", "-K", hex.EncodeToString(key)}
	if iv != nil {
		args = append(args, "-iv", hex.EncodeToString(iv))
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(data)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), "openssl %v: %s", args, errb.String())
	return out.Bytes()
}

// An independent implementation (OpenSSL) agrees on whole sectors for the specs it can
// express: CBC with an explicit IV (plain64, plain64be, and ESSIV computed with OpenSSL too),
// ECB, and XTS assembled from OpenSSL ECB calls (`openssl enc` refuses XTS).
func TestOpenSSLCrossCheck(t *testing.T) {
	bin := testenv.LookPath(t, "openssl", "apt-get install openssl")
	rng := rand.New(rand.NewPCG(7, 8))
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	tests := []struct {
		spec, openssl string
		keyLen        int
		iv            func(key []byte, s uint64) []byte
	}{
		{"aes-cbc-plain64", "aes-256-cbc", 32, func(_ []byte, s uint64) []byte {
			iv := make([]byte, 16)
			binary.LittleEndian.PutUint64(iv, s)
			return iv
		}},
		{"aes-cbc-plain64be", "aes-128-cbc", 16, func(_ []byte, s uint64) []byte {
			iv := make([]byte, 16)
			binary.BigEndian.PutUint64(iv[8:], s)
			return iv
		}},
		{"aes-cbc-essiv:sha256", "aes-256-cbc", 32, func(key []byte, s uint64) []byte {
			// ESSIV through OpenSSL too: salt = SHA-256(key), IV = AES-256-ECB_salt(LE64(s)).
			salt := sha256Sum(key)
			blk := make([]byte, 16)
			binary.LittleEndian.PutUint64(blk, s)
			return opensslSector(t, bin, "aes-256-ecb", salt, nil, blk)
		}},
		{"aes-ecb", "aes-192-ecb", 24, nil},
	}
	for _, tc := range tests {
		name, mode, err := SplitSpec(tc.spec)
		require.NoError(t, err)
		key := randBytes(tc.keyLen)
		c, err := New(name, mode, key)
		require.NoError(t, err)
		for _, s := range []uint64{0, 5, 0xffffffff, 1 << 33} {
			pt := randBytes(2 * SectorSize)
			got := make([]byte, len(pt))
			c.Encrypt(got, pt, s)
			for i := 0; i < 2; i++ {
				var iv []byte
				if tc.iv != nil {
					iv = tc.iv(key, s+uint64(i))
				}
				want := opensslSector(t, bin, tc.openssl, key, iv, pt[i*SectorSize:(i+1)*SectorSize])
				require.Equal(t, hex.EncodeToString(want), hex.EncodeToString(got[i*SectorSize:(i+1)*SectorSize]), "%s (%s) sector %d", tc.spec, tc.openssl, s+uint64(i))
			}
		}
	}
}

// XTS through OpenSSL: T = AES-ECB_K2(LE64(s)), then one AES-ECB_K1 call over the sector
// pre- and post-whitened with T·α^j.
func TestOpenSSLXTS(t *testing.T) {
	bin := testenv.LookPath(t, "openssl", "apt-get install openssl")
	rng := rand.New(rand.NewPCG(9, 10))
	for _, kl := range []int{32, 64} {
		key := make([]byte, kl)
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		c, err := New("aes", "xts-plain64", key)
		require.NoError(t, err)
		ecbName := map[int]string{32: "aes-128-ecb", 64: "aes-256-ecb"}[kl]
		for _, s := range []uint64{0, 1, 0xffffffff, 1 << 40} {
			pt := make([]byte, SectorSize)
			for i := range pt {
				pt[i] = byte(rng.Uint32())
			}
			got := make([]byte, SectorSize)
			c.Encrypt(got, pt, s)

			iv := make([]byte, 16)
			binary.LittleEndian.PutUint64(iv, s)
			tw := opensslSector(t, bin, ecbName, key[kl/2:], nil, iv)
			tweaks := make([]byte, SectorSize)
			for j := 0; j < SectorSize; j += 16 {
				copy(tweaks[j:], tw)
				carry := tw[15] >> 7
				for k := 15; k > 0; k-- {
					tw[k] = tw[k]<<1 | tw[k-1]>>7
				}
				tw[0] = tw[0]<<1 ^ 0x87*carry
			}
			x := make([]byte, SectorSize)
			for j := range x {
				x[j] = pt[j] ^ tweaks[j]
			}
			y := opensslSector(t, bin, ecbName, key[:kl/2], nil, x)
			for j := range y {
				y[j] ^= tweaks[j]
			}
			require.Equal(t, hex.EncodeToString(y), hex.EncodeToString(got), "AES-%d-XTS sector %d", kl*4, s)
		}
	}
}
