package luks

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// l2Base is a small cryptsetup-made LUKS2 image (16 KiB metadata, 256 KiB keyslots area,
// data at 1 MiB, one argon2id and one pbkdf2 keyslot) that the corrupt-header cases start
// from. Made once per test binary.
var l2Base struct {
	once sync.Once
	img  []byte
	err  string
}

const l2BaseSize = 2 << 20

func baseImage2(t *testing.T) []byte {
	t.Helper()
	cryptsetupBin(t)
	l2Base.once.Do(func() {
		dir, err := os.MkdirTemp("", "l2base")
		if err != nil {
			l2Base.err = err.Error()
			return
		}
		defer os.RemoveAll(dir)
		p := filepath.Join(dir, "base.img")
		if err := os.WriteFile(p, make([]byte, l2BaseSize), 0o600); err != nil {
			l2Base.err = err.Error()
			return
		}
		r := runCS(t, []byte("pass0"), "luksFormat", "--type", "luks2", "-q", "--pbkdf", "argon2id",
			"--pbkdf-memory", "32", "--pbkdf-force-iterations", "4", "--luks2-keyslots-size", "256k",
			"--key-size", "256", "--uuid", "0b6c5d53-0d0b-4a63-9a39-7e1f2e4c5d6a", p, "-")
		if r.code != 0 {
			l2Base.err = r.stderr
			return
		}
		kf := filepath.Join(dir, "k")
		os.WriteFile(kf, []byte("pass0"), 0o600)
		r = runCS(t, []byte("pass1"), "luksAddKey", "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
			"--key-file", kf, p, "-")
		if r.code != 0 {
			l2Base.err = r.stderr
			return
		}
		l2Base.img, _ = os.ReadFile(p)
	})
	require.Empty(t, l2Base.err, "making the base image")
	return bytes.Clone(l2Base.img)
}

// l2Image is an image being corrupted: both copies' JSON as generic trees.
type l2Image struct {
	b    []byte
	meta uint64 // metadata size of one copy
}

func newL2Image(b []byte) *l2Image {
	return &l2Image{b: b, meta: binary.BigEndian.Uint64(b[8:])}
}

func (im *l2Image) off(copyN int) uint64 { return uint64(copyN) * im.meta }

func (im *l2Image) area(copyN int) []byte {
	o := im.off(copyN) + BinaryHeaderSize
	return im.b[o : o-BinaryHeaderSize+im.meta]
}

func (im *l2Image) tree(t *testing.T, copyN int) map[string]any {
	a := im.area(copyN)
	a = a[:bytes.IndexByte(a, 0)]
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(a))
	d.UseNumber()
	require.NoError(t, d.Decode(&m))
	return m
}

// setText puts text (NUL-padded) into a copy's JSON area.
func (im *l2Image) setText(copyN int, text []byte) {
	a := im.area(copyN)
	clear(a)
	copy(a, text)
}

func (im *l2Image) setTree(t *testing.T, copyN int, m map[string]any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(m))
	im.setText(copyN, bytes.TrimRight(buf.Bytes(), "\n"))
}

// edit changes both copies' JSON the same way.
func (im *l2Image) edit(t *testing.T, f func(m map[string]any)) {
	for c := 0; c < 2; c++ {
		m := im.tree(t, c)
		f(m)
		im.setTree(t, c, m)
	}
}

// seal recomputes a copy's sha256 checksum.
func (im *l2Image) seal(copyN int) {
	o := im.off(copyN)
	bin := im.b[o : o+BinaryHeaderSize]
	clear(bin[l2offCsum : l2offCsum+l2csumLen])
	h := sha256.New()
	h.Write(bin)
	h.Write(im.area(copyN))
	copy(bin[l2offCsum:], h.Sum(nil))
}

func (im *l2Image) sealBoth() { im.seal(0); im.seal(1) }

func obj(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

type corruptCase struct {
	name   string
	accept bool // expected decision (also checked against cryptsetup)
	make   func(t *testing.T, im *l2Image)
}

func corruptCases() []corruptCase {
	return []corruptCase{
		{"valid", true, func(t *testing.T, im *l2Image) {}},
		{"reencoded-valid", true, func(t *testing.T, im *l2Image) { im.edit(t, func(map[string]any) {}); im.sealBoth() }},
		{"checksum-both", false, func(t *testing.T, im *l2Image) { im.b[l2offCsum] ^= 1; im.b[im.meta+l2offCsum] ^= 1 }},
		{"checksum-hdr0", true, func(t *testing.T, im *l2Image) { im.b[l2offCsum] ^= 1 }},
		{"checksum-hdr1", true, func(t *testing.T, im *l2Image) { im.b[im.meta+l2offCsum] ^= 1 }},
		{"json-byte-hdr0", true, func(t *testing.T, im *l2Image) { im.area(0)[10] ^= 0x20 }},
		{"magic-hdr0-zeroed", true, func(t *testing.T, im *l2Image) { clear(im.b[:8]) }},
		{"corrupted-hdr0-correct-checksum", true, func(t *testing.T, im *l2Image) {
			m := im.tree(t, 0)
			obj(m, "config")["json_size"] = "4096"
			im.setTree(t, 0, m)
			im.seal(0)
		}},
		{"corrupted-both-correct-checksum", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "config")["json_size"] = "4096" })
			im.sealBoth()
		}},
		{"seqid-hdr1-newer", true, func(t *testing.T, im *l2Image) {
			binary.BigEndian.PutUint64(im.b[im.meta+16:], 100)
			im.seal(1)
		}},
		{"seqid-hdr0-newer", true, func(t *testing.T, im *l2Image) {
			binary.BigEndian.PutUint64(im.b[16:], 100)
			im.seal(0)
		}},
		{"version-3", false, func(t *testing.T, im *l2Image) {
			binary.BigEndian.PutUint16(im.b[6:], 3)
			binary.BigEndian.PutUint16(im.b[im.meta+6:], 3)
			im.sealBoth()
		}},
		{"hdr-size-bogus", false, func(t *testing.T, im *l2Image) {
			binary.BigEndian.PutUint64(im.b[8:], 0x5000)
			binary.BigEndian.PutUint64(im.b[im.meta+8:], 0x5000)
			im.sealBoth()
		}},
		{"checksum-alg-sha512", true, func(t *testing.T, im *l2Image) {
			for c := 0; c < 2; c++ {
				o := im.off(c)
				bin := im.b[o : o+BinaryHeaderSize]
				copy(bin[l2offChecksumAlg:l2offChecksumAlg+l2csumAlgLen], append([]byte("sha512"), make([]byte, 26)...))
				clear(bin[l2offCsum : l2offCsum+l2csumLen])
				h := sha512.New()
				h.Write(bin)
				h.Write(im.area(c))
				copy(bin[l2offCsum:], h.Sum(nil))
			}
		}},
		{"truncated-json", false, func(t *testing.T, im *l2Image) {
			for c := 0; c < 2; c++ {
				a := im.area(c)
				n := bytes.IndexByte(a, 0)
				clear(a[n-5 : n])
			}
			im.sealBoth()
		}},
		{"missing-trailing-nul", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "config")["x"] = "" })
			for c := 0; c < 2; c++ {
				a := im.area(c)
				n := bytes.IndexByte(a, 0)
				text := bytes.Clone(a[:n])
				pad := len(a) - len(text)
				text = bytes.Replace(text, []byte(`"x":""`), []byte(`"x":"`+strings.Repeat("a", pad)+`"`), 1)
				require.Len(t, text, len(a))
				copy(a, text)
			}
			im.sealBoth()
		}},
		{"non-nul-beyond-json", false, func(t *testing.T, im *l2Image) {
			for c := 0; c < 2; c++ {
				a := im.area(c)
				a[bytes.IndexByte(a, 0)+100] = 'x'
			}
			im.sealBoth()
		}},
		{"space-after-json", true, func(t *testing.T, im *l2Image) {
			for c := 0; c < 2; c++ {
				a := im.area(c)
				a[bytes.IndexByte(a, 0)] = ' '
			}
			im.sealBoth()
		}},
		{"whitespace-after-json", true, func(t *testing.T, im *l2Image) {
			for c := 0; c < 2; c++ {
				a := im.area(c)
				copy(a[bytes.IndexByte(a, 0):], " \n\t\r  ")
			}
			im.sealBoth()
		}},
		{"vtab-after-json", false, func(t *testing.T, im *l2Image) {
			for c := 0; c < 2; c++ {
				a := im.area(c)
				copy(a[bytes.IndexByte(a, 0):], "\v\f")
			}
			im.sealBoth()
		}},
		{"space-then-garbage-after-json", false, func(t *testing.T, im *l2Image) {
			for c := 0; c < 2; c++ {
				a := im.area(c)
				copy(a[bytes.IndexByte(a, 0):], "  x")
			}
			im.sealBoth()
		}},
		{"opening-char", false, func(t *testing.T, im *l2Image) {
			for c := 0; c < 2; c++ {
				a := im.area(c)
				n := bytes.IndexByte(a, 0)
				copy(a[1:], bytes.Clone(a[:n]))
				a[0] = ' '
			}
			im.sealBoth()
		}},
		{"json-size-mismatch", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "config")["json_size"] = "28672" })
			im.sealBoth()
		}},
		{"json-size-plus-sign", true, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "config")["json_size"] = "+12288" })
			im.sealBoth()
		}},
		{"keyslots-size-unaligned", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "config")["keyslots_size"] = "262145" })
			im.sealBoth()
		}},
		{"keyslots-size-too-large", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "config")["keyslots_size"] = "1048576" })
			im.sealBoth()
		}},
		{"keyslot-area-in-metadata", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "keyslots", "0", "area")["offset"] = "16384" })
			im.sealBoth()
		}},
		{"keyslot-areas-overlap", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) {
				obj(m, "keyslots", "1", "area")["offset"] = obj(m, "keyslots", "0", "area")["offset"]
			})
			im.sealBoth()
		}},
		{"keyslot-area-past-keyslots-area", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "keyslots", "1", "area")["size"] = "1048576" })
			im.sealBoth()
		}},
		{"keyslot-area-size-zero", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "keyslots", "1", "area")["size"] = "0" })
			im.sealBoth()
		}},
		{"keyslot-area-offset-number", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "keyslots", "0", "area")["offset"] = json.Number("32768") })
			im.sealBoth()
		}},
		{"keyslot-key-size-negative", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "keyslots", "0")["key_size"] = json.Number("-1") })
			im.sealBoth()
		}},
		{"keyslot-invalid-af", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "keyslots", "0", "af")["type"] = "luks2" })
			im.sealBoth()
		}},
		{"keyslot-missing-digest", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "digests", "0")["keyslots"] = []any{"0"} })
			im.sealBoth()
		}},
		{"keyslot-unknown-type", true, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) {
				obj(m, "keyslots", "1")["type"] = "mystery"
				obj(m, "digests", "0")["keyslots"] = []any{"0"}
			})
			im.sealBoth()
		}},
		{"kdf-unknown-argon2", true, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "keyslots", "0", "kdf")["type"] = "argon2" })
			im.sealBoth()
		}},
		{"pbkdf2-leftover-params", true, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "keyslots", "1", "kdf")["time"] = json.Number("4") })
			im.sealBoth()
		}},
		{"argon2-leftover-params", true, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "keyslots", "0", "kdf")["hash"] = "sha256" })
			im.sealBoth()
		}},
		{"pbkdf2-missing-iterations", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { delete(obj(m, "keyslots", "1", "kdf"), "iterations") })
			im.sealBoth()
		}},
		{"digest-references-missing-keyslot", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "digests", "0")["keyslots"] = []any{"0", "1", "5"} })
			im.sealBoth()
		}},
		{"digest-references-missing-segment", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "digests", "0")["segments"] = []any{"0", "1"} })
			im.sealBoth()
		}},
		{"token-references-missing-keyslot", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) {
				obj(m, "tokens")["0"] = map[string]any{"type": "x", "keyslots": []any{"7"}}
			})
			im.sealBoth()
		}},
		{"token-unknown-kept", true, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) {
				obj(m, "tokens")["0"] = map[string]any{"type": "systemd-tpm2", "keyslots": []any{"0"}, "tpm2-pcrs": []any{json.Number("7")}}
			})
			im.sealBoth()
		}},
		{"escaped-slash", true, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) {
				obj(m, "tokens")["0"] = map[string]any{"type": "a/b", "keyslots": []any{}}
			})
			for c := 0; c < 2; c++ {
				a := im.area(c)
				n := bytes.IndexByte(a, 0)
				copy(a, bytes.Replace(bytes.Clone(a[:n]), []byte(`"a/b"`), []byte(`"a\/b"`), 1))
			}
			im.sealBoth()
		}},
		{"tokens-array", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { m["tokens"] = []any{} })
			im.sealBoth()
		}},
		{"top-object-missing-config", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { delete(m, "config") })
			im.sealBoth()
		}},
		{"segment-offset-unaligned", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "segments", "0")["offset"] = "1048577" })
			im.sealBoth()
		}},
		{"segment-size-zero", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "segments", "0")["size"] = "0" })
			im.sealBoth()
		}},
		{"segment-size-signed", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "segments", "0")["size"] = "-512" })
			im.sealBoth()
		}},
		{"segment-size-uint64-overflow", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "segments", "0")["size"] = "18446744073709551616" })
			im.sealBoth()
		}},
		{"segment-size-not-sector-multiple", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "segments", "0")["size"] = "512" })
			im.sealBoth()
		}},
		{"segment-fixed-size-past-device", true, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "segments", "0")["size"] = "1099511627776" })
			im.sealBoth()
		}},
		{"segment-offset-past-device", true, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "segments", "0")["offset"] = "1099511627776" })
			im.sealBoth()
		}},
		{"segment-sector-size-zero", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "segments", "0")["sector_size"] = json.Number("0") })
			im.sealBoth()
		}},
		{"segment-sector-size-odd", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "segments", "0")["sector_size"] = json.Number("1000") })
			im.sealBoth()
		}},
		{"segment-sector-size-string", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "segments", "0")["sector_size"] = "512" })
			im.sealBoth()
		}},
		{"segment-missing-encryption", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { delete(obj(m, "segments", "0"), "encryption") })
			im.sealBoth()
		}},
		{"segment-wrong-ivtweak", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "segments", "0")["iv_tweak"] = "-1" })
			im.sealBoth()
		}},
		{"segment-unknown-type", true, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "segments", "0")["type"] = "linear" })
			im.sealBoth()
		}},
		{"segment-flags-not-array", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "segments", "0")["flags"] = "x" })
			im.sealBoth()
		}},
		{"segments-two-dynamic", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) {
				s := obj(m, "segments", "0")
				c := map[string]any{}
				for k, v := range s {
					c[k] = v
				}
				c["offset"] = "1572864"
				obj(m, "segments")["1"] = c
				obj(m, "digests", "0")["segments"] = []any{"0", "1"}
			})
			im.sealBoth()
		}},
		{"segments-gap", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) {
				segs := obj(m, "segments")
				segs["1"] = segs["0"]
				delete(segs, "0")
				obj(m, "digests", "0")["segments"] = []any{"1"}
			})
			im.sealBoth()
		}},
		{"requirements-unknown", true, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) {
				obj(m, "config")["requirements"] = map[string]any{"mandatory": []any{"future-feature"}}
			})
			im.sealBoth()
		}},
		{"requirements-not-strings", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) {
				obj(m, "config")["requirements"] = map[string]any{"mandatory": []any{json.Number("1")}}
			})
			im.sealBoth()
		}},
		{"requirements-two-online", false, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) {
				obj(m, "config")["requirements"] = map[string]any{"mandatory": []any{"online-reencrypt-v2", "online-reencrypt-v3"}}
			})
			im.sealBoth()
		}},
		{"config-flags", true, func(t *testing.T, im *l2Image) {
			im.edit(t, func(m map[string]any) { obj(m, "config")["flags"] = []any{"allow-discards", "no-read-workqueue"} })
			im.sealBoth()
		}},
		{"device-too-small", false, func(t *testing.T, im *l2Image) { im.b = im.b[:200000] }},
	}
}

// TestLUKS2CorruptHeaders generates damaged headers over the categories of cryptsetup's
// tests/generators and checks that ReadHeader2 accepts exactly what cryptsetup 2.6.1
// accepts (isLuks on a copy of the same image; cryptsetup may repair the copy).
func TestLUKS2CorruptHeaders(t *testing.T) {
	base := baseImage2(t)
	dir := t.TempDir()
	match := 0
	defer func() {
		t.Logf("%d hostile LUKS2 headers, %d decisions match cryptsetup (isLuks --type luks2)", len(corruptCases()), match)
	}()
	for _, tc := range corruptCases() {
		t.Run(tc.name, func(t *testing.T) {
			im := newL2Image(bytes.Clone(base))
			tc.make(t, im)
			p := filepath.Join(dir, tc.name+".img")
			require.NoError(t, os.WriteFile(p, im.b, 0o600))
			h, err := ReadHeader2(bytes.NewReader(im.b))
			got := err == nil
			cs := runCS(t, nil, "isLuks", "--type", "luks2", p).code == 0
			if assert.Equal(t, cs, got, "our decision (err %v) vs cryptsetup isLuks", err) {
				match++
			}
			assert.Equal(t, tc.accept, got, "expected decision; err %v", err)
			if err == nil {
				// cryptsetup's Epoch is the sequence ID of the copy it uses.
				require.NoError(t, os.WriteFile(p, im.b, 0o600))
				dump := mustCS(t, nil, "luksDump", p)
				assert.Contains(t, dump, "Epoch:         \t"+strconv.FormatUint(h.SeqID, 10)+"\n")
			}
		})
	}
}
