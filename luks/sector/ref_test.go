package sector

import (
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	xxts "golang.org/x/crypto/xts"
)

// refIV is an independent, deliberately plain transcription of dm-crypt's IV generators.
func refIV(t *testing.T, s Spec, key []byte, sector uint64) []byte {
	iv := make([]byte, 16)
	switch s.IV {
	case "null":
	case "plain":
		binary.LittleEndian.PutUint32(iv, uint32(sector))
	case "plain64":
		binary.LittleEndian.PutUint64(iv, sector)
	case "plain64be":
		binary.BigEndian.PutUint64(iv[8:], sector)
	case "benbi":
		binary.BigEndian.PutUint64(iv[8:], sector*32+1)
	case "essiv":
		f, err := NewHash(s.IVOption)
		require.NoError(t, err)
		h := f()
		h.Write(key)
		b, err := newBlock(s.Cipher, h.Sum(nil))
		require.NoError(t, err)
		binary.LittleEndian.PutUint64(iv, sector)
		b.Encrypt(iv, iv)
	default:
		t.Fatalf("refIV: %s", s.IV)
	}
	return iv
}

// refSector encrypts or decrypts one sector with straightforward code paths that share
// nothing with the package's modes: x/crypto/xts, crypto/cipher CBC, per-block ECB and a
// multiply-per-block LRW.
func refSector(t *testing.T, s Spec, key, data []byte, sector uint64, enc bool) []byte {
	out := make([]byte, len(data))
	var iv []byte
	if s.Chain != "ecb" {
		iv = refIV(t, s, key, sector)
	}
	switch s.Chain {
	case "xts":
		half := len(key) / 2
		if s.IV == "plain64" || s.IV == "plain" {
			x, err := xxts.NewCipher(func(k []byte) (cipher.Block, error) { return newBlock(s.Cipher, k) }, key)
			require.NoError(t, err)
			n := sector
			if s.IV == "plain" {
				n &= 0xffffffff
			}
			if enc {
				x.Encrypt(out, data, n)
			} else {
				x.Decrypt(out, data, n)
			}
			return out
		}
		k1, err := newBlock(s.Cipher, key[:half])
		require.NoError(t, err)
		k2, err := newBlock(s.Cipher, key[half:])
		require.NoError(t, err)
		tw := make([]byte, 16)
		k2.Encrypt(tw, iv)
		for i := 0; i < len(data); i += 16 {
			blk := make([]byte, 16)
			for j := range blk {
				blk[j] = data[i+j] ^ tw[j]
			}
			if enc {
				k1.Encrypt(blk, blk)
			} else {
				k1.Decrypt(blk, blk)
			}
			for j := range blk {
				out[i+j] = blk[j] ^ tw[j]
			}
			// multiply by x, little-endian
			carry := tw[15] >> 7
			for j := 15; j > 0; j-- {
				tw[j] = tw[j]<<1 | tw[j-1]>>7
			}
			tw[0] = tw[0]<<1 ^ 0x87*carry
		}
	case "cbc":
		b, err := newBlock(s.Cipher, key)
		require.NoError(t, err)
		if enc {
			cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, data)
		} else {
			cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, data)
		}
	case "ecb":
		b, err := newBlock(s.Cipher, key)
		require.NoError(t, err)
		for i := 0; i < len(data); i += 16 {
			if enc {
				b.Encrypt(out[i:], data[i:i+16])
			} else {
				b.Decrypt(out[i:], data[i:i+16])
			}
		}
	case "lrw":
		ck := len(key) - 16
		b, err := newBlock(s.Cipher, key[:ck])
		require.NoError(t, err)
		k2 := gfLoad(key[ck:])
		idx := gfLoad(iv)
		for i := 0; i < len(data); i += 16 {
			var tb [16]byte
			gfMul(k2, idx).store(tb[:])
			blk := make([]byte, 16)
			for j := range blk {
				blk[j] = data[i+j] ^ tb[j]
			}
			if enc {
				b.Encrypt(blk, blk)
			} else {
				b.Decrypt(blk, blk)
			}
			for j := range blk {
				out[i+j] = blk[j] ^ tb[j]
			}
			idx.lo++
			if idx.lo == 0 {
				idx.hi++
			}
		}
	default:
		t.Fatalf("refSector: %s", s.Chain)
	}
	return out
}

var matrixSpecs = []struct {
	spec string
	keys []int
}{
	{"aes-xts-plain64", []int{32, 48, 64}},
	{"aes-xts-plain", []int{32, 64}},
	{"aes-xts-essiv:sha256", []int{64}},
	{"aes-xts-benbi", []int{32}},
	{"aes-xts-plain64be", []int{64}},
	{"aes-xts-null", []int{64}},
	{"aes-cbc-plain", []int{16, 24, 32}},
	{"aes-cbc-plain64", []int{16, 32}},
	{"aes-cbc-essiv:sha256", []int{16, 24, 32}},
	{"aes-cbc-essiv:wp256", []int{32}},
	{"aes-cbc-benbi", []int{32}},
	{"aes-cbc-null", []int{16}},
	{"aes-cbc-plain64be", []int{32}},
	{"aes-ecb", []int{16, 32}},
	{"aes-lrw-benbi", []int{32, 40, 48}},
	{"aes-lrw-plain64", []int{48}},
	{"twofish-xts-plain64", []int{32, 64}},
	{"twofish-cbc-essiv:sha256", []int{32}},
	{"twofish-lrw-benbi", []int{48}},
	{"serpent-xts-plain64", []int{32, 64}},
	{"serpent-xts-essiv:sha256", []int{64}},
	{"serpent-cbc-essiv:sha1", []int{32}},
	{"serpent-cbc-plain", []int{16, 20, 32}},
	{"serpent-lrw-benbi", []int{48}},
	{"serpent-ecb", []int{32}},
}

var testSectors = []uint64{0, 1, 2, 31, 32, 0xfffffffe, 0xffffffff, 0x100000000, 1 << 40, 0x7ffffffffffffff0, 0xfffffffffffffff8}

// Every spec × key size × boundary sector, several sectors per call, in place and out of
// place, against the reference: this is what keeps the fast paths honest.
var implNames = map[int]string{implPortable: "portable", implSIMD: "simd", implAESNI: "aesni", implVAES: "vaes"}

func TestAgainstReference(t *testing.T) {
	for impl := implPortable; impl <= bestImpl(); impl++ {
		t.Run(implNames[impl], func(t *testing.T) {
			testAgainstReference(t, impl)
		})
	}
}

func testAgainstReference(t *testing.T, impl int) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, ms := range matrixSpecs {
		name, mode, err := SplitSpec(ms.spec)
		require.NoError(t, err)
		for _, kl := range ms.keys {
			key := make([]byte, kl)
			for i := range key {
				key[i] = byte(rng.Uint32())
			}
			s, err := ParseSpec(name, mode)
			require.NoError(t, err)
			c, err := newCipher(s, key, impl)
			require.NoError(t, err, "%s %d", ms.spec, kl)
			require.Equal(t, impl >= implAESNI && s.Cipher == "aes", c.ni != nil)
			for _, first := range testSectors {
				nsec := 1 + int(rng.IntN(9))
				pt := make([]byte, nsec*SectorSize)
				for i := range pt {
					pt[i] = byte(rng.Uint32())
				}
				want := make([]byte, 0, len(pt))
				for i := 0; i < nsec; i++ {
					want = append(want, refSector(t, s, key, pt[i*SectorSize:(i+1)*SectorSize], first+uint64(i), true)...)
				}
				got := make([]byte, len(pt))
				c.Encrypt(got, pt, first)
				require.Equal(t, sha256.Sum256(want), sha256.Sum256(got), "%s key %d sector %d encrypt", ms.spec, kl, first)
				inplace := append([]byte(nil), pt...)
				c.Encrypt(inplace, inplace, first)
				require.Equal(t, got, inplace, "%s in-place encrypt", ms.spec)
				back := make([]byte, len(pt))
				c.Decrypt(back, got, first)
				require.Equal(t, pt, back, "%s key %d sector %d decrypt", ms.spec, kl, first)
				c.Decrypt(inplace, inplace, first)
				require.Equal(t, pt, inplace, "%s in-place decrypt", ms.spec)
				// Sector-by-sector equals one call.
				for i := 0; i < nsec; i++ {
					one := make([]byte, SectorSize)
					c.Encrypt(one, pt[i*SectorSize:(i+1)*SectorSize], first+uint64(i))
					require.Equal(t, got[i*SectorSize:(i+1)*SectorSize], one, "%s sector %d alone", ms.spec, first+uint64(i))
				}
			}
		}
	}
}

// The AES-NI path and the portable path agree on random data for many sector numbers, long
// runs (several assembly batches) and every AES mode.
func TestFastPathMatchesPortable(t *testing.T) {
	if !haveAESNI {
		t.Skip("no AES-NI on this machine: only the portable path exists here")
	}
	for impl := implAESNI; impl <= bestImpl(); impl++ {
		t.Run(implNames[impl], func(t *testing.T) { testFastPathMatchesPortable(t, impl) })
	}
}

func testFastPathMatchesPortable(t *testing.T, impl int) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, spec := range []string{"aes-xts-plain64", "aes-xts-essiv:sha256", "aes-xts-benbi", "aes-cbc-essiv:sha256",
		"aes-cbc-plain", "aes-cbc-plain64", "aes-cbc-eboiv", "aes-xts-eboiv", "aes-lrw-benbi", "aes-lrw-plain64", "aes-lrw-eboiv",
		"aes-lrw-essiv:sha256", "aes-xts-plain64be", "aes-cbc-null", "aes-ecb", "aes-ecb-plain64"} {
		name, mode, err := SplitSpec(spec)
		require.NoError(t, err)
		s, err := ParseSpec(name, mode)
		require.NoError(t, err)
		for _, kl := range []int{16, 24, 32, 40, 48, 64} {
			if s.CheckKeySize(kl) != nil {
				continue
			}
			key := make([]byte, kl)
			for i := range key {
				key[i] = byte(rng.Uint32())
			}
			fast, err := newCipher(s, key, impl)
			require.NoError(t, err)
			slow, err := newCipher(s, key, implPortable)
			require.NoError(t, err)
			for trial := 0; trial < 40; trial++ {
				first := rng.Uint64() >> (rng.IntN(64))
				nsec := 1 + rng.IntN(20)
				pt := make([]byte, nsec*SectorSize)
				for i := range pt {
					pt[i] = byte(rng.Uint32())
				}
				a := make([]byte, len(pt))
				b := make([]byte, len(pt))
				fast.Encrypt(a, pt, first)
				slow.Encrypt(b, pt, first)
				require.Equal(t, b, a, "%s key %d sector %d ×%d encrypt", spec, kl, first, nsec)
				fast.Decrypt(a, a, first)
				require.Equal(t, pt, a, "%s key %d sector %d ×%d decrypt", spec, kl, first, nsec)
			}
		}
	}
}

// The AES-NI path allocates nothing per call (a sector cipher runs once per I/O).
func TestAESNINoAllocs(t *testing.T) {
	if !haveAESNI {
		t.Skip("no AES-NI on this machine")
	}
	buf := make([]byte, 4096)
	for _, spec := range []string{"aes-xts-plain64", "aes-xts-essiv:sha256", "aes-cbc-essiv:sha256", "aes-lrw-benbi", "aes-cbc-eboiv", "aes-ecb"} {
		name, mode, err := SplitSpec(spec)
		require.NoError(t, err)
		s, err := ParseSpec(name, mode)
		require.NoError(t, err)
		kl := 32
		if s.Chain == "lrw" {
			kl = 48
		}
		c, err := New(name, mode, make([]byte, kl))
		require.NoError(t, err)
		require.NotNil(t, c.ni)
		allocs := testing.AllocsPerRun(20, func() {
			c.Encrypt(buf, buf, 77)
			c.Decrypt(buf, buf, 77)
		})
		require.Zero(t, allocs, spec)
	}
}
