package dm

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/luks"
)

var testKey = bytes.Repeat([]byte{0xab}, 64)

func TestCryptTableParams(t *testing.T) {
	hexKey := hex.EncodeToString(testKey)
	for _, tc := range []struct {
		name  string
		table CryptTable
		want  string
	}{
		{"luks1 xts", CryptTable{Length: 18432, Cipher: "aes-xts-plain64", Key: testKey, Device: "/dev/loop0", Offset: 4096},
			"aes-xts-plain64 " + hexKey + " 0 /dev/loop0 4096"},
		{"essiv, major:minor", CryptTable{Length: 8, Cipher: "aes-cbc-essiv:sha256", Key: testKey[:32], Device: "259:0", Offset: 2056},
			"aes-cbc-essiv:sha256 " + hexKey[:64] + " 0 259:0 2056"},
		{"all flags in cryptsetup's order", CryptTable{Length: 8, Cipher: "aes-xts-plain64", Key: testKey, Device: "/dev/vda", Offset: 4096,
			NoWriteWorkqueue: true, AllowDiscards: true, SectorSize: 4096, NoReadWorkqueue: true, SubmitFromCryptCPUs: true, SameCPUCrypt: true, IVLargeSectors: true},
			"aes-xts-plain64 " + hexKey + " 0 /dev/vda 4096 7 allow_discards same_cpu_crypt submit_from_crypt_cpus no_read_workqueue no_write_workqueue iv_large_sectors sector_size:4096"},
		{"sector size 512 is the default", CryptTable{Length: 8, Cipher: "aes-xts-plain64", Key: testKey, Device: "/dev/vda", SectorSize: 512, AllowDiscards: true},
			"aes-xts-plain64 " + hexKey + " 0 /dev/vda 0 1 allow_discards"},
		{"keyring", CryptTable{Length: 8, Cipher: "aes-xts-plain64", Keyring: &KeyringKey{Description: "cloudluks:CRYPT-LUKS1-x-data", Size: 64}, Device: "/dev/vda", Offset: 4096, IVOffset: 5},
			"aes-xts-plain64 :64:logon:cloudluks:CRYPT-LUKS1-x-data 5 /dev/vda 4096"},
		{"user key", CryptTable{Length: 8, Cipher: "aes-xts-plain64", Keyring: &KeyringKey{Type: "user", Description: "k", Size: 64}, Device: "/dev/vda"},
			"aes-xts-plain64 :64:user:k 0 /dev/vda 0"},
		{"cipher_null", CryptTable{Length: 8, Cipher: "cipher_null-ecb", Device: "/dev/vda"},
			"cipher_null-ecb - 0 /dev/vda 0"},
		{"escaped device", CryptTable{Length: 8, Cipher: "aes-xts-plain64", Key: testKey[:32], Device: `/dev/disk/by-label/my disk\x`, Offset: 1},
			"aes-xts-plain64 " + hexKey[:64] + ` 0 /dev/disk/by-label/my\ disk\\x 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.table.Params()
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(p))
			tg, err := tc.table.Target()
			require.NoError(t, err)
			assert.Equal(t, "crypt", tg.Type)
			assert.Equal(t, tc.table.Length, tg.Length)

			// What the kernel echoes back parses to the same table.
			back, err := ParseCryptTarget(tg)
			require.NoError(t, err)
			want := tc.table
			if want.SectorSize == 512 {
				want.SectorSize = 0
			}
			if want.Keyring != nil && want.Keyring.Type == "" {
				k := *want.Keyring
				k.Type = "logon"
				want.Keyring = &k
			}
			assert.Equal(t, &want, back)
			assert.Equal(t, tc.table.HasKeyMaterial(), len(tc.table.Key) > 0)
		})
	}
}

func TestCryptTableInvalid(t *testing.T) {
	base := func() CryptTable {
		return CryptTable{Length: 8, Cipher: "aes-xts-plain64", Key: testKey, Device: "/dev/vda"}
	}
	for name, mod := range map[string]func(*CryptTable){
		"zero length":       func(c *CryptTable) { c.Length = 0 },
		"no cipher":         func(c *CryptTable) { c.Cipher = "" },
		"no device":         func(c *CryptTable) { c.Device = "" },
		"NUL in device":     func(c *CryptTable) { c.Device = "/dev/a\x00b" },
		"no key":            func(c *CryptTable) { c.Key = nil },
		"sector size 1000":  func(c *CryptTable) { c.SectorSize = 1000 },
		"sector size 8192":  func(c *CryptTable) { c.SectorSize = 8192 },
		"unaligned length":  func(c *CryptTable) { c.SectorSize = 4096; c.Length = 9 },
		"logon without ':'": func(c *CryptTable) { c.Keyring = &KeyringKey{Description: "nocolon", Size: 64} },
		"bad key type":      func(c *CryptTable) { c.Keyring = &KeyringKey{Type: "big_key", Description: "a:b", Size: 64} },
		"space in desc":     func(c *CryptTable) { c.Keyring = &KeyringKey{Description: "a: b", Size: 64} },
		"zero keyring size": func(c *CryptTable) { c.Keyring = &KeyringKey{Description: "a:b"} },
	} {
		c := base()
		mod(&c)
		_, err := c.Params()
		require.ErrorIs(t, err, ErrInvalidParameter, name)
		assert.NotContains(t, c.String(), "abab", name)
	}
}

func TestCryptTableRedacts(t *testing.T) {
	c := &CryptTable{Length: 8, Cipher: "aes-xts-plain64", Key: testKey, Device: "/dev/vda", Offset: 4096}
	hexKey := hex.EncodeToString(testKey)
	// A pointer, a copy, and structs and slices holding either: the redacting methods have
	// value receivers (a copy printed the key when they had pointer receivers).
	type holder struct {
		T CryptTable
		P *CryptTable
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		for _, arg := range []any{c, *c, holder{*c, c}, []CryptTable{*c}, []*CryptTable{c}} {
			out := fmt.Sprintf(f, arg)
			assert.NotContains(t, strings.ToLower(out), "abab", "%s of %T", f, arg)
			assert.NotContains(t, out, hexKey, "%s of %T", f, arg)
			assert.NotContains(t, out, "171 171", "%s of %T", f, arg)
		}
	}
	assert.Equal(t, "0 8 crypt aes-xts-plain64 <redacted> 0 /dev/vda 4096", c.String())
	c.Wipe()
	assert.Nil(t, c.Key)
}

func TestCryptTableWipe(t *testing.T) {
	k := bytes.Clone(testKey)
	c := &CryptTable{Key: k}
	c.Wipe()
	assert.Equal(t, make([]byte, len(testKey)), k)
}

func TestParseCryptTargetErrors(t *testing.T) {
	for _, p := range []string{
		"",
		"aes-xts-plain64 00 0 7:0",
		"aes-xts-plain64 0 0 7:0 0",
		"aes-xts-plain64 zz 0 7:0 0",
		"aes-xts-plain64 00 x 7:0 0",
		"aes-xts-plain64 00 0 7:0 y",
		"aes-xts-plain64 00 0 7:0 0 2 allow_discards",
		"aes-xts-plain64 00 0 7:0 0 1 frobnicate",
		"aes-xts-plain64 00 0 7:0 0 1 sector_size:x",
		"aes-xts-plain64 :64 0 7:0 0",
		"aes-xts-plain64 :x:logon:a:b 0 7:0 0",
		"aes-xts-plain64 00 0 7:0 0 x",
	} {
		_, err := ParseCryptTarget(Target{Length: 1, Type: "crypt", Params: []byte(p)})
		require.ErrorIs(t, err, ErrInvalidParameter, p)
	}
	_, err := ParseCryptTarget(Target{Type: "linear", Params: []byte("7:0 0")})
	require.ErrorIs(t, err, ErrInvalidParameter)
}

func TestEscapeSplitRoundTrip(t *testing.T) {
	for _, arg := range []string{"plain", "my disk", `back\slash`, "tab\there", "nl\nx", "nbsp\xa0x", `trailing\`, "  lead"} {
		e, err := EscapeArg(arg)
		require.NoError(t, err)
		got := splitArgs([]byte(e + " next"))
		require.Len(t, got, 2, "%q → %q", arg, e)
		assert.Equal(t, arg, string(got[0]))
		assert.Equal(t, "next", string(got[1]))
	}
	_, err := EscapeArg("a\x00b")
	require.ErrorIs(t, err, ErrInvalidParameter)
	_, err = EscapeArg("")
	require.ErrorIs(t, err, ErrInvalidParameter)
}

func TestSplitArgsLikeKernel(t *testing.T) {
	// dm_split_args: runs of space separate; a backslash quotes anything but the final NUL.
	for in, want := range map[string][]string{
		"a b  c":       {"a", "b", "c"},
		"  a\t\nb  ":   {"a", "b"},
		`a\ b c`:       {"a b", "c"},
		`a\\ b`:        {`a\`, "b"},
		`end\`:         {`end\`},
		"":             nil,
		"   ":          nil,
		"x\xa0y":       {"x", "y"},
		`\x\y`:         {"xy"},
		"1 allow_disc": {"1", "allow_disc"},
	} {
		got := splitArgs([]byte(in))
		var gs []string
		for _, g := range got {
			gs = append(gs, string(g))
		}
		assert.Equal(t, want, gs, "%q", in)
	}
}

func FuzzParseCryptTarget(f *testing.F) {
	f.Add([]byte("aes-xts-plain64 " + hex.EncodeToString(testKey) + " 0 7:0 4096"))
	f.Add([]byte("aes-cbc-essiv:sha256 :32:logon:cryptsetup:x-d0 0 259:0 2056 2 allow_discards sector_size:4096"))
	f.Add([]byte(`cipher_null-ecb - 7 /dev/my\ disk 0 1 no_read_workqueue`))
	f.Fuzz(func(t *testing.T, params []byte) {
		ct, err := ParseCryptTarget(Target{Length: 8, Type: "crypt", Params: params})
		if err != nil {
			return
		}
		defer ct.Wipe()
		_ = ct.String()
		p, err := ct.Params()
		if err != nil {
			return // e.g. a sector size the builder refuses
		}
		again, err := ParseCryptTarget(Target{Length: 8, Type: "crypt", Params: p})
		require.NoError(t, err, "%q", p)
		defer again.Wipe()
		assert.Equal(t, ct.Cipher, again.Cipher)
		assert.Equal(t, ct.Device, again.Device)
		assert.Equal(t, ct.Key, again.Key)
		assert.Equal(t, ct.Offset, again.Offset)
	})
}

func BenchmarkCryptTableParams(b *testing.B) {
	c := &CryptTable{Length: 20971520, Cipher: "aes-xts-plain64", Key: testKey, Device: "/dev/nvme1n1", Offset: 4096, AllowDiscards: true}
	for b.Loop() {
		p, _ := c.Params()
		clear(p)
	}
}

func TestCryptTableFromHeader(t *testing.T) {
	h := &luks.Header{CipherName: "aes", CipherMode: "cbc-essiv:sha256", KeyBytes: 32, PayloadOffset: 4096}
	vk := luks.NewVolumeKey(testKey[:32])
	defer vk.Wipe()
	ct, err := CryptTableFromHeader(h, vk, "/dev/xvdf", 20971520)
	require.NoError(t, err)
	assert.Equal(t, "0 20967424 crypt aes-cbc-essiv:sha256 <redacted> 0 /dev/xvdf 4096", ct.String())
	assert.Equal(t, testKey[:32], ct.Key)

	_, err = CryptTableFromHeader(h, vk, "/dev/xvdf", 4096)
	require.ErrorIs(t, err, luks.ErrDeviceTooSmall)
	_, err = CryptTableFromHeader(h, luks.NewVolumeKey(testKey), "/dev/xvdf", 1<<20)
	require.ErrorIs(t, err, ErrInvalidParameter)
	_, err = CryptTableFromHeader(nil, vk, "/dev/xvdf", 1<<20)
	require.ErrorIs(t, err, ErrInvalidParameter)
}
