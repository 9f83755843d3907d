package sector

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// cryptsetup tests/crypto-vectors.c cipher_iv_test_vectors: AES-128-CBC over 8192 zero bytes
// (16 sectors of 512 bytes), compared as SHA-256 of the ciphertext.
func TestCryptsetupIVVectors(t *testing.T) {
	key := "2b7e151628aed2a6abf7158809cf4f3c"
	tests := []struct {
		iv     string
		offset uint64
		sha    string
	}{
		{"null", 0xFFFFFFFF - 7, "fd05d04d51b9d487a4579a620739c94a00903eafe8b2ac12caeb58f948f6ef08"},
		{"plain", 0xFFFFFFFF - 7, "43fd6e2580b213f5ca717918e41291e06e372432fd404b42cbc1721ac75a19c8"},
		{"plain64", 0xFFFFFFFF - 7, "b3657e6cbae039cd1e1daf65aeb7da2025176a387579684c9a75c7fb2ba217d2"},
		{"plain64be", 0xFFFFFFFF - 7, "28bf09e168cc051b20af8d0136218a8d7a9498a899e9f466d8b799ca04588390"},
		{"essiv:sha256", 0, "a53e74c41a5cf36b6349d5d9bb7a895ad53e766f4c2d0bd38b5e0e91a38c2ade"},
		{"benbi", 0, "3ce394e36d685bdb5a8d71bfd3a668b91f330f97e2d6e8e2e1fc7e8028f173bd"},
		{"eboiv", 0, "044e929f7966fe931ba5b802fe7ef9267b6439e7b3cac46eca27a02fe2ea9116"},
	}
	zeroSum := sha256.Sum256(make([]byte, 8192))
	for _, tc := range tests {
		t.Run(tc.iv, func(t *testing.T) {
			c, err := New("aes", "cbc-"+tc.iv, unhex(t, key))
			require.NoError(t, err)
			buf := make([]byte, 8192)
			c.Encrypt(buf, buf, tc.offset)
			got := sha256.Sum256(buf)
			assert.Equal(t, tc.sha, hex.EncodeToString(got[:]))
			c.Decrypt(buf, buf, tc.offset)
			assert.Equal(t, zeroSum, sha256.Sum256(buf))
		})
	}
}

// IEEE Std 1619-2007 Annex B vectors 1-3 (AES-128-XTS, 32-byte data units): the data unit
// sequence number is the plain64 IV.
func TestXTSIEEE1619Short(t *testing.T) {
	tests := []struct {
		key, pt, ct string
		seq         uint64
	}{
		{
			key: "00000000000000000000000000000000" + "00000000000000000000000000000000",
			seq: 0,
			pt:  "0000000000000000000000000000000000000000000000000000000000000000",
			ct:  "917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e",
		},
		{
			key: "11111111111111111111111111111111" + "22222222222222222222222222222222",
			seq: 0x3333333333,
			pt:  "4444444444444444444444444444444444444444444444444444444444444444",
			ct:  "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0",
		},
		{
			key: "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0" + "22222222222222222222222222222222",
			seq: 0x3333333333,
			pt:  "4444444444444444444444444444444444444444444444444444444444444444",
			ct:  "af85336b597afc1a900b2eb21ec949d292df4c047e0b21532186a5971a227a89",
		},
	}
	for i, tc := range tests {
		c, err := newPortable("aes", "xts-plain64", unhex(t, tc.key))
		require.NoError(t, err)
		var iv [16]byte
		iv[0] = byte(tc.seq)
		for j := 1; j < 8; j++ {
			iv[j] = byte(tc.seq >> (8 * j))
		}
		pt, ct := unhex(t, tc.pt), unhex(t, tc.ct)
		got := make([]byte, len(pt))
		c.cryptSector(got, pt, &iv, true)
		assert.Equal(t, tc.ct, hex.EncodeToString(got), "vector %d", i+1)
		c.cryptSector(got, ct, &iv, false)
		assert.Equal(t, tc.pt, hex.EncodeToString(got), "vector %d", i+1)
	}
}

func TestSplitSpec(t *testing.T) {
	tests := []struct{ in, name, mode string }{
		{"aes-xts-plain64", "aes", "xts-plain64"},
		{"aes", "aes", "cbc-plain"},
		{"aes-plain", "aes", "cbc-plain"},
		{"null", "cipher_null", "ecb"},
		{"cipher_null", "cipher_null", "ecb"},
		{"aes-ecb", "aes", "ecb"},
		{"aes-cbc-essiv:sha256", "aes", "cbc-essiv:sha256"},
		{"serpent-xts-essiv:wp256", "serpent", "xts-essiv:wp256"},
	}
	for _, tc := range tests {
		n, m, err := SplitSpec(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.name, n, tc.in)
		assert.Equal(t, tc.mode, m, tc.in)
	}
	for _, bad := range []string{"", "-xts-plain64", "aes xts"} {
		_, _, err := SplitSpec(bad)
		assert.ErrorIs(t, err, ErrUnsupportedCipher, bad)
	}
}

func TestParseSpecRefusals(t *testing.T) {
	tests := []struct {
		name, mode string
		want       error
	}{
		{"aes", "cbc", ErrUnsupportedCipher},
		{"aes", "xts", ErrUnsupportedCipher},
		{"aes", "cbc-lmk", ErrUnsupportedCipher},
		{"aes", "cbc-tcw", ErrUnsupportedCipher},
		{"aes", "xts-random", ErrUnsupportedCipher},
		{"aes", "cbc-elephant:32", ErrUnsupportedCipher},
		{"aes", "cbc-essiv:sha1", ErrUnsupportedCipher},
		{"aes", "cbc-essiv:md5", ErrUnsupportedHash},
		{"aes", "cbc-essiv", ErrUnsupportedCipher},
		{"des", "cbc-plain", ErrUnsupportedCipher},
		{"aes", "gcm-random", ErrUnsupportedCipher},
		{"aes:64", "cbc-lmk", ErrUnsupportedCipher},
		{"capi:xts(aes)", "plain64", ErrUnsupportedCipher},
	}
	for _, tc := range tests {
		_, err := ParseSpec(tc.name, tc.mode)
		assert.ErrorIs(t, err, tc.want, "%s-%s", tc.name, tc.mode)
	}
}

func TestNewHash(t *testing.T) {
	tests := []struct{ name, abc string }{
		{"sha1", "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{"SHA256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"sha512", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
		{"ripemd160", "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"},
		{"sha224", "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"},
		{"sha384", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"},
		{"sha3-256", "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"},
		{"blake2b-512", "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"},
		{"Whirlpool", "4e2448a4c6f486bb16b6562c73b4020bf3043e3a731bce721ae1b303d97e6d4c7181eebdb6c57e277d0e34957114cbd6c797fc9d95d8b582d225292076d4eef5"},
	}
	for _, tc := range tests {
		f, err := NewHash(tc.name)
		require.NoError(t, err, tc.name)
		h := f()
		h.Write([]byte("abc"))
		assert.Equal(t, tc.abc, hex.EncodeToString(h.Sum(nil)), tc.name)
	}
	for _, bad := range []string{"md5", "crc32", "", "sha256 ", "whirlpool_gcryptbug"} {
		_, err := NewHash(bad)
		assert.True(t, errors.Is(err, ErrUnsupportedHash), bad)
	}
}

func TestRoundTripInPlace(t *testing.T) {
	specs := []struct {
		spec string
		key  int
	}{
		{"aes-xts-plain64", 64}, {"aes-xts-plain64", 32}, {"aes-cbc-essiv:sha256", 32},
		{"aes-cbc-plain64", 16}, {"aes-ecb", 24}, {"twofish-xts-plain64", 64},
		{"aes-lrw-benbi", 48}, {"aes-xts-eboiv", 64}, {"null", 0},
	}
	for _, sp := range specs {
		name, mode, err := SplitSpec(sp.spec)
		require.NoError(t, err)
		key := bytes.Repeat([]byte{0x5a}, sp.key)
		c, err := New(name, mode, key)
		require.NoError(t, err, sp.spec)
		pt := make([]byte, 4*SectorSize)
		for i := range pt {
			pt[i] = byte(i * 7)
		}
		buf := append([]byte(nil), pt...)
		c.Encrypt(buf, buf, 12345)
		if name != "cipher_null" {
			assert.NotEqual(t, pt, buf, sp.spec)
		}
		c.Decrypt(buf, buf, 12345)
		assert.Equal(t, pt, buf, sp.spec)
	}
}

// IEEE Std 1619-2007 Annex B vectors 4, 5 and 10: whole 512-byte data units, run through the
// public API (and so through the fastest implementation this machine has).
func TestXTSIEEE1619Sectors(t *testing.T) {
	tests := []struct {
		name, key string
		seq       uint64
		pt, ct    string
	}{
		{
			"IEEE 1619 vector 4 (AES-128, data unit 0)",
			"2718281828459045235360287471352631415926535897932384626433832795",
			0,
			"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
			"27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89cc78cf7f5e543445f8333d8fa7f56000005279fa5d8b5e4ad40e736ddb4d35412328063fd2aab53e5ea1e0a9f332500a5df9487d07a5c92cc512c8866c7e860ce93fdf166a24912b422976146ae20ce846bb7dc9ba94a767aaef20c0d61ad02655ea92dc4c4e41a8952c651d33174be51a10c421110e6d81588ede82103a252d8a750e8768defffed9122810aaeb99f9172af82b604dc4b8e51bcb08235a6f4341332e4ca60482a4ba1a03b3e65008fc5da76b70bf1690db4eae29c5f1badd03c5ccf2a55d705ddcd86d449511ceb7ec30bf12b1fa35b913f9f747a8afd1b130e94bff94effd01a91735ca1726acd0b197c4e5b03393697e126826fb6bbde8ecc1e08298516e2c9ed03ff3c1b7860f6de76d4cecd94c8119855ef5297ca67e9f3e7ff72b1e99785ca0a7e7720c5b36dc6d72cac9574c8cbbc2f801e23e56fd344b07f22154beba0f08ce8891e643ed995c94d9a69c9f1b5f499027a78572aeebd74d20cc39881c213ee770b1010e4bea718846977ae119f7a023ab58cca0ad752afe656bb3c17256a9f6e9bf19fdd5a38fc82bbe872c5539edb609ef4f79c203ebb140f2e583cb2ad15b4aa5b655016a8449277dbd477ef2c8d6c017db738b18deb4a427d1923ce3ff262735779a418f20a282df920147beabe421ee5319d0568",
		},
		{
			"IEEE 1619 vector 5 (AES-128, data unit 1)",
			"2718281828459045235360287471352631415926535897932384626433832795",
			1,
			"27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89cc78cf7f5e543445f8333d8fa7f56000005279fa5d8b5e4ad40e736ddb4d35412328063fd2aab53e5ea1e0a9f332500a5df9487d07a5c92cc512c8866c7e860ce93fdf166a24912b422976146ae20ce846bb7dc9ba94a767aaef20c0d61ad02655ea92dc4c4e41a8952c651d33174be51a10c421110e6d81588ede82103a252d8a750e8768defffed9122810aaeb99f9172af82b604dc4b8e51bcb08235a6f4341332e4ca60482a4ba1a03b3e65008fc5da76b70bf1690db4eae29c5f1badd03c5ccf2a55d705ddcd86d449511ceb7ec30bf12b1fa35b913f9f747a8afd1b130e94bff94effd01a91735ca1726acd0b197c4e5b03393697e126826fb6bbde8ecc1e08298516e2c9ed03ff3c1b7860f6de76d4cecd94c8119855ef5297ca67e9f3e7ff72b1e99785ca0a7e7720c5b36dc6d72cac9574c8cbbc2f801e23e56fd344b07f22154beba0f08ce8891e643ed995c94d9a69c9f1b5f499027a78572aeebd74d20cc39881c213ee770b1010e4bea718846977ae119f7a023ab58cca0ad752afe656bb3c17256a9f6e9bf19fdd5a38fc82bbe872c5539edb609ef4f79c203ebb140f2e583cb2ad15b4aa5b655016a8449277dbd477ef2c8d6c017db738b18deb4a427d1923ce3ff262735779a418f20a282df920147beabe421ee5319d0568",
			"264d3ca8512194fec312c8c9891f279fefdd608d0c027b60483a3fa811d65ee59d52d9e40ec5672d81532b38b6b089ce951f0f9c35590b8b978d175213f329bb1c2fd30f2f7f30492a61a532a79f51d36f5e31a7c9a12c286082ff7d2394d18f783e1a8e72c722caaaa52d8f065657d2631fd25bfd8e5baad6e527d763517501c68c5edc3cdd55435c532d7125c8614deed9adaa3acade5888b87bef641c4c994c8091b5bcd387f3963fb5bc37aa922fbfe3df4e5b915e6eb514717bdd2a74079a5073f5c4bfd46adf7d282e7a393a52579d11a028da4d9cd9c77124f9648ee383b1ac763930e7162a8d37f350b2f74b8472cf09902063c6b32e8c2d9290cefbd7346d1c779a0df50edcde4531da07b099c638e83a755944df2aef1aa31752fd323dcb710fb4bfbb9d22b925bc3577e1b8949e729a90bbafeacf7f7879e7b1147e28ba0bae940db795a61b15ecf4df8db07b824bb062802cc98a9545bb2aaeed77cb3fc6db15dcd7d80d7d5bc406c4970a3478ada8899b329198eb61c193fb6275aa8ca340344a75a862aebe92eee1ce032fd950b47d7704a3876923b4ad62844bf4a09c4dbe8b4397184b7471360c9564880aedddb9baa4af2e75394b08cd32ff479c57a07d3eab5d54de5f9738b8d27f27a9f0ab11799d7b7ffefb2704c95c6ad12c39f1e867a4b7b1d7818a4b753dfd2a89ccb45e001a03a867b187f225dd",
		},
		{
			"IEEE 1619 vector 10 (AES-256, data unit 0xff)",
			"27182818284590452353602874713526624977572470936999595749669676273141592653589793238462643383279502884197169399375105820974944592",
			0xff,
			"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
			"1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed43851ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151",
		},
	}
	for _, tc := range tests {
		for impl := implPortable; impl <= bestImpl(); impl++ {
			s, err := ParseSpec("aes", "xts-plain64")
			require.NoError(t, err)
			c, err := newCipher(s, unhex(t, tc.key), impl)
			require.NoError(t, err)
			pt, ct := unhex(t, tc.pt), unhex(t, tc.ct)
			require.Len(t, pt, SectorSize)
			got := make([]byte, SectorSize)
			c.Encrypt(got, pt, tc.seq)
			assert.Equal(t, tc.ct, hex.EncodeToString(got), "%s %s", tc.name, implNames[impl])
			c.Decrypt(got, ct, tc.seq)
			assert.Equal(t, tc.pt, hex.EncodeToString(got), "%s %s", tc.name, implNames[impl])
		}
	}
}

// newPortable is New with the portable implementation, for the vector tests that drive one
// block through cryptSector with a given IV (the AES-NI path has no crypto/aes block).
func newPortable(cipherName, mode string, key []byte) (*Cipher, error) {
	s, err := ParseSpec(cipherName, mode)
	if err != nil {
		return nil, err
	}
	return newCipher(s, key, implPortable)
}
