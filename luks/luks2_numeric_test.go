package luks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// numericCase puts value (JSON text) at path in both header copies of the base image
// (slot 0 argon2id "pass0", slot 1 pbkdf2 "pass1", 256-bit key).
type numericCase struct {
	path  string
	value string
	load  bool // cryptsetup 2.6.1 loads the header (isLuks --type luks2)
	open  int  // exit code of `open --test-passphrase` with "pass1" (any slot), when loaded
}

// numericCases: numbers written as strings and strings written as numbers, with
// cryptsetup 2.6.1's decision. LUKS2_keyslot_validate and the header validators check the
// JSON type of every keyslot, segment and config field, so a stripes, key_size,
// iterations, time, memory, cpus or sector_size given as a string is refused at load like
// an offset, size, json_size or keyslots_size given as a number. A digest's iterations is
// the exception: nothing checks its type and PBKDF2_digest_verify reads it with
// json_object_get_int64, strings included.
var numericCases = []numericCase{
	{"keyslots.1.af.stripes", `"4000"`, false, 0},
	{"keyslots.1.af.stripes", `"4000x"`, false, 0},
	{"keyslots.1.af.stripes", `4000.0`, false, 0},
	{"keyslots.1.key_size", `"32"`, false, 0},
	{"keyslots.1.area.key_size", `"32"`, false, 0},
	{"keyslots.1.kdf.iterations", `"1000"`, false, 0},
	{"keyslots.1.kdf.iterations", `1000.5`, false, 0},
	{"keyslots.0.kdf.time", `"4"`, false, 0},
	{"keyslots.0.kdf.memory", `"32"`, false, 0},
	{"keyslots.0.kdf.cpus", `"2"`, false, 0},
	{"keyslots.1.priority", `"1"`, true, 0},
	{"keyslots.1.priority", `1`, true, 0},
	{"keyslots.1.area.offset", `163840`, false, 0},
	{"keyslots.1.area.size", `131072`, false, 0},
	{"segments.0.sector_size", `"4096"`, false, 0},
	{"segments.0.offset", `1048576`, false, 0},
	{"segments.0.iv_tweak", `0`, false, 0},
	{"config.json_size", `12288`, false, 0},
	{"config.keyslots_size", `262144`, false, 0},
	{"digests.0.iterations", `"1000"`, true, 0},
	{"digests.0.iterations", `"1000abc"`, true, 0},
	{"digests.0.iterations", `" 1000"`, true, 0},
	{"digests.0.iterations", `"+1000"`, true, 0},
	{"digests.0.iterations", `"1000.7"`, true, 0},
	{"digests.0.iterations", `1000.0`, true, 0},
	{"digests.0.iterations", `"1e3"`, true, 2}, // 1 iteration: the digest does not match
	{"digests.0.iterations", `true`, true, 2},
	{"digests.0.iterations", `"abc"`, true, 1}, // 0 iterations: "Keyslot open failed."
	{"digests.0.iterations", `"0"`, true, 1},
	{"digests.0.iterations", `"0x10"`, true, 1},
	{"digests.0.iterations", `null`, true, 1},
	{"digests.0.iterations", `[]`, true, 1},
	{"digests.0.iterations", `{}`, true, 1},
}

// TestLUKS2NumericFieldTypes checks, for every numericCase, that ReadHeader2 loads exactly
// what cryptsetup loads and that an unlock ends as `cryptsetup open --test-passphrase`
// does (0 unlocked, 2 wrong passphrase, 1 "Keyslot open failed."), each on a copy of the
// same image.
func TestLUKS2NumericFieldTypes(t *testing.T) {
	base := baseImage2(t)
	dir := t.TempDir()
	for _, c := range numericCases {
		name := c.path + "=" + c.value
		im := newL2Image(bytes.Clone(base))
		var val any
		d := json.NewDecoder(strings.NewReader(c.value))
		d.UseNumber()
		require.NoError(t, d.Decode(&val))
		parts := strings.Split(c.path, ".")
		im.edit(t, func(m map[string]any) { obj(m, parts[:len(parts)-1]...)[parts[len(parts)-1]] = val })
		im.sealBoth()
		p := filepath.Join(dir, "n.img")
		require.NoError(t, os.WriteFile(p, im.b, 0o600))
		cs := runCS(t, nil, "isLuks", "--type", "luks2", p).code == 0
		require.Equal(t, c.load, cs, "%s: cryptsetup's load decision changed", name)
		_, err := ReadHeader2(bytes.NewReader(im.b))
		assert.Equal(t, cs, err == nil, "%s: our load decision (err %v)", name, err)
		if !cs || err != nil {
			continue
		}
		r := runCS(t, []byte("pass1"), "open", "--test-passphrase", p, "-")
		require.Equal(t, c.open, r.code, "%s: cryptsetup open: %s", name, r.stderr)
		_, vk, _, err := Unlock2(context.Background(), bytes.NewReader(im.b), []byte("pass1"), UnlockOptions{})
		code := 0
		switch {
		case err == nil:
			vk.Wipe()
		case errors.Is(err, ErrWrongPassphrase):
			code = 2
		case errors.Is(err, ErrKeyslotOpenFailed):
			code = 1
			assert.Contains(t, r.stderr, "Keyslot open failed.", name)
		default:
			code = -1
		}
		assert.Equal(t, c.open, code, "%s: our unlock (err %v)", name, err)
	}
}

// TestJSONGetInt64 is json-c's json_object_get_int64 on the values a header can hold.
func TestJSONGetInt64(t *testing.T) {
	for in, want := range map[string]int64{
		`1000`: 1000, `-7`: -7, `"1000"`: 1000, `" \t1000x"`: 1000, `"+12"`: 12, `"-12"`: -12,
		`"abc"`: 0, `""`: 0, `"-"`: 0, `"0x10"`: 0, `"1e3"`: 1, `1e3`: 1000, `1000.9`: 1000, `-2.5`: -2,
		`"99999999999999999999"`: 1<<63 - 1, `"-99999999999999999999"`: -1 << 63,
		`99999999999999999999`: 1<<63 - 1, `1e300`: 1<<63 - 1, `-1e300`: -1 << 63,
		`true`: 1, `false`: 0, `null`: 0, `[1]`: 0, `{"a":1}`: 0,
	} {
		var v any
		d := json.NewDecoder(strings.NewReader(in))
		d.UseNumber()
		require.NoError(t, d.Decode(&v), in)
		assert.Equal(t, want, jsonGetInt64(v), in)
	}
	assert.Equal(t, int64(1215752191), digestIterations(map[string]any{"iterations": "99999999999"}),
		"an unsigned int keeps the low 32 bits")
}
