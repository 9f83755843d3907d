package luks

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// plainVectors were computed with Python's hashlib (OpenSSL) following the rule of
// cryptsetup 2.6.1's lib/crypt_plain.c; TestPlainKeyPython recomputes a wider set at test
// time, and the VM test compares the keys in the kernel's tables with cryptsetup's own.
var plainVectors = []struct {
	hash, pass string
	size       int
	key        string
}{
	{"ripemd160", "password", 32, "2c08e8f5884750a7b99f6f2f342fc638db25ff31fb00ff3460badc65d7758851"},
	{"ripemd160", "password", 64, "2c08e8f5884750a7b99f6f2f342fc638db25ff31fb00ff3460badc65d7758851896f05f15418c971509c402f35278eae006004489af303c1f5f7ff3f2ae97d52"},
	{"sha256", "password", 32, "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"},
	{"sha256", "password", 64, "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d89fff15cdec1f0b4f804c2217cce94ad7194ebc18744892bc7bb52be9fd7bb942"},
	{"sha512", "password", 64, "b109f3bbbc244eb82441917ed06d618b9008dd09b3befd1b5e07394c706a8bb980b1d7785e5976ec049b46df5f1326af5a2ea6d103fd07c95385ffab0cacbc86"},
	{"sha512", "", 32, "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"},
	{"sha256:16", "password", 32, "5e884898da28047151d0e56f8dc6292700000000000000000000000000000000"},
	{"plain", "short", 32, "73686f7274000000000000000000000000000000000000000000000000000000"},
	{"plain", "0123456789abcdef", 8, "3031323334353637"},
	{"plain:4", "password", 16, "70617373000000000000000000000000"},
	{"sha1", "x", 20, "11f6ad8ec52a2984abaafd7c3b516503785c2072"},
	{"sha256:0", "password", 16, "00000000000000000000000000000000"}, // cryptsetup zero-fills: its rule, kept
	{"SHA256", "password", 32, "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"},
}

func TestPlainKeyVectors(t *testing.T) {
	for _, v := range plainVectors {
		t.Run(v.hash+"/"+strconv.Itoa(v.size), func(t *testing.T) {
			k, err := PlainKey(v.hash, []byte(v.pass), v.size)
			require.NoError(t, err)
			defer k.Wipe()
			assert.Equal(t, v.key, hex.EncodeToString(k.Bytes()))
		})
	}
}

// TestPlainKeyPython checks PlainKey against an independent implementation of the rule in
// Python (hashlib) for every hash cryptsetup users pick and sizes around the digest sizes.
func TestPlainKeyPython(t *testing.T) {
	py := testenv.LookPath(t, "python3", "apt-get install python3")
	script := `
import hashlib, sys
for line in sys.stdin:
    h, p, n = line.split()
    p = bytes.fromhex(p) if p != '-' else b''
    n = int(n)
    name, _, l = h.partition(':')
    m = int(l) if l else n
    out, r = b'', 0
    while len(out) < m:
        out += hashlib.new(name, b'A' * r + p).digest()
        r += 1
    print((out[:m] + bytes(n - m)).hex())
`
	type tc struct {
		hash string
		pass []byte
		size int
	}
	var cases []tc
	passes := [][]byte{{}, []byte("a"), []byte("correct horse battery staple"), bytes.Repeat([]byte{0xff, 0, '\n'}, 100)}
	for _, h := range []string{"ripemd160", "sha1", "sha256", "sha512", "sha384", "sha224", "sha256:16", "sha512:33", "ripemd160:1"} {
		for _, n := range []int{1, 16, 20, 24, 32, 33, 64, 65, 128, 200} {
			if _, l, ok := strings.Cut(h, ":"); ok {
				if m, _ := strconv.Atoi(l); m > n {
					continue
				}
			}
			for _, p := range passes {
				cases = append(cases, tc{h, p, n})
			}
		}
	}
	var in strings.Builder
	for _, c := range cases {
		p := hex.EncodeToString(c.pass)
		if p == "" {
			p = "-"
		}
		in.WriteString(c.hash + " " + p + " " + strconv.Itoa(c.size) + "\n")
	}
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	require.NoError(t, err)
	want := strings.Fields(string(out))
	require.Len(t, want, len(cases))
	for i, c := range cases {
		k, err := PlainKey(c.hash, c.pass, c.size)
		require.NoError(t, err, "%s %d", c.hash, c.size)
		assert.Equal(t, want[i], hex.EncodeToString(k.Bytes()), "%s pass %q size %d", c.hash, c.pass, c.size)
		k.Wipe()
	}
}

func TestPlainKeyErrors(t *testing.T) {
	for _, c := range []struct {
		hash string
		pass string
		size int
		want error
	}{
		{"md4", "x", 32, ErrUnsupportedHash},
		{"nohash", "x", 32, ErrUnsupportedHash},
		{"sha256:", "x", 32, ErrInvalidParameter},
		{"sha256:x", "x", 32, ErrInvalidParameter},
		{"sha256:33", "x", 32, ErrInvalidParameter},
		{"sha256:-1", "x", 32, ErrInvalidParameter},
		{"plain:8", "1234567", 32, ErrShortPlainPassphrase},
		{"", "x", 32, ErrInvalidParameter},
		{strings.Repeat("s", 256), "x", 32, ErrInvalidParameter},
		{"sha256", "x", 0, ErrInvalidParameter},
		{"sha256", "x", 1025, ErrInvalidParameter},
	} {
		_, err := PlainKey(c.hash, []byte(c.pass), c.size)
		assert.ErrorIs(t, err, c.want, "%q", c.hash)
	}
	// sscanf("%zd") reads the leading number and ignores the rest.
	k, err := PlainKey("sha256:16junk", []byte("password"), 32)
	require.NoError(t, err)
	assert.Equal(t, "5e884898da28047151d0e56f8dc6292700000000000000000000000000000000", hex.EncodeToString(k.Bytes()))
}

func TestPlainParamsSpec(t *testing.T) {
	p := PlainParams{}.WithDefaults()
	assert.Equal(t, PlainParams{Cipher: "aes-cbc-essiv:sha256", Hash: "ripemd160", KeySize: 32, SectorSize: 512}, p)
	_, err := p.Spec()
	require.NoError(t, err)
	for _, c := range []struct {
		p    PlainParams
		want error
	}{
		{PlainParams{Cipher: "rot13-cbc-plain"}, ErrUnsupportedCipher},
		{PlainParams{Cipher: "aes-xts-plain64", KeySize: 24}, ErrInvalidKeySize},
		{PlainParams{KeySize: 1025}, ErrInvalidParameter},
		{PlainParams{SectorSize: 1000}, ErrInvalidParameter},
		{PlainParams{SectorSize: 8192}, ErrInvalidParameter},
		{PlainParams{SectorSize: 4096, Size: 9}, ErrInvalidParameter},
		{PlainParams{SectorSize: 4096, Skip: 1}, ErrInvalidParameter},
	} {
		_, err := c.p.Spec()
		assert.ErrorIs(t, err, c.want, "%+v", c.p)
	}
}

func TestPlainVolume(t *testing.T) {
	const sectors = 64
	path := filepath.Join(t.TempDir(), "plain.img")
	require.NoError(t, os.WriteFile(path, make([]byte, sectors*512), 0o600))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	key, err := PlainKey("sha256", []byte("pass"), 32)
	require.NoError(t, err)
	defer key.Wipe()

	p := PlainParams{Cipher: "aes-xts-plain64", KeySize: 32, Offset: 8, Skip: 5, Size: 40}
	v, err := NewPlainVolume(f, p, key)
	require.NoError(t, err)
	assert.Equal(t, int64(40*512), v.Size())
	data := bytes.Repeat([]byte("plain data 0123"), 1000)[:3*512+100]
	_, err = v.WriteAt(data, 512+7)
	require.NoError(t, err)
	got := make([]byte, len(data))
	_, err = v.ReadAt(got, 512+7)
	require.NoError(t, err)
	assert.Equal(t, data, got)
	require.NoError(t, v.Close())

	// The same bytes seen with Skip folded into the offset of a volume whose IVs start at
	// 0 must differ (the IV offset is applied), and a volume with the IV shifted to match
	// (offset 8-5=3 sectors before, Skip 0, data at sector 5+1 of it) must read them back.
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, 8*512), raw[:8*512], "nothing written before the offset")
	assert.NotContains(t, string(raw), "plain data")
	v2, err := NewPlainVolume(f, PlainParams{Cipher: "aes-xts-plain64", KeySize: 32, Offset: 3, Skip: 0}, key)
	require.NoError(t, err)
	_, err = v2.ReadAt(got, (5+1)*512+7)
	require.NoError(t, err)
	assert.Equal(t, data, got, "sector k of a Skip=5 volume is IV sector k+5")
	require.NoError(t, v2.Close())

	for _, c := range []struct {
		p    PlainParams
		key  *VolumeKey
		want error
	}{
		{PlainParams{Offset: sectors}, key, ErrDeviceTooSmall},
		{PlainParams{Offset: 1, Size: sectors}, key, ErrDeviceTooSmall},
		{PlainParams{SectorSize: 4096}, key, ErrInvalidParameter},
		{PlainParams{KeySize: 16}, key, ErrInvalidParameter},
		{PlainParams{}, nil, ErrInvalidParameter},
		{PlainParams{Cipher: "aes-bogus"}, key, ErrUnsupportedCipher},
	} {
		_, err := NewPlainVolume(f, c.p, c.key)
		assert.True(t, errors.Is(err, c.want), "%+v: %v", c.p, err)
	}
}

// Derive the key `cryptsetup open --type plain -h sha256 -s 512` loads for a passphrase
// (NewPlainVolume then reads the device in user space with it).
func ExamplePlainKey() {
	vk, err := PlainKey("sha256", []byte("password"), 64)
	if err != nil {
		panic(err)
	}
	defer vk.Wipe()
	fmt.Printf("%x\n", vk.Bytes()[:8])
	// Output: 5e884898da280471
}
