package luks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// TestLUKS2EmptyFractionLikeCryptsetup: json-c reads "1.", "-1.", "0." and "1.e5" as
// doubles and writes them back unchanged, so cryptsetup 2.6.1 dumps and opens a header
// holding them (in a token here) and keeps them on a rewrite; so do we, byte for byte.
func TestLUKS2EmptyFractionLikeCryptsetup(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "frac.img")
	require.NoError(t, os.WriteFile(p, baseImage2(t), 0o600))
	mustCS(t, []byte(`{"type":"x","keyslots":[],"a":1.,"b":-1.,"c":[0.,1.e5,1.E+5]}`), "token", "import", "--disable-external-tokens", p)

	img, err := os.ReadFile(p)
	require.NoError(t, err)
	h, err := ReadHeader2(bytes.NewReader(img))
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, h.Dump(&out, p))
	assert.Equal(t, mustCS(t, nil, "luksDump", p), out.String())

	require.Equal(t, 0, runCS(t, []byte("pass0"), "open", "--test-passphrase", "--key-file", "-", p).code)
	_, vk, _, err := Unlock2(context.Background(), bytes.NewReader(img), []byte("pass0"), UnlockOptions{})
	require.NoError(t, err)
	vk.Wipe()

	ours := &memDev{b: img}
	mustCS(t, nil, "config", p, "--label", "frac")
	require.NoError(t, SetLabelLUKS2(ours, "frac", ""))
	want, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, ours.b), "rewritten image differs from cryptsetup's")
	assert.Contains(t, string(ours.b), `"a":1.,"b":-1.,"c":[0.,1.e5,1.E+5]`)
}

// TestDumpNumericFieldTypesLikeCryptsetup: for every numericCase cryptsetup 2.6.1 loads,
// Dump prints what its luksDump prints; a digest's iterations given as a string ("1000abc",
// " 1000", "+1000") print as json_object_get_int64 reads them, through strtoll.
func TestDumpNumericFieldTypesLikeCryptsetup(t *testing.T) {
	cryptsetupBin(t)
	base := baseImage2(t)
	dir := t.TempDir()
	for _, c := range numericCases {
		if !c.load {
			continue
		}
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
		h, err := ReadHeader2(bytes.NewReader(im.b))
		require.NoError(t, err, name)
		var out bytes.Buffer
		require.NoError(t, h.Dump(&out, p))
		assert.Equal(t, mustCS(t, nil, "luksDump", p), out.String(), name)
	}
}

// TestSdExp10MatchesGlibc: sdExp10 is the machine's glibc exp10 (the libm systemd 252's
// plugins call) for every integral argument from -400 to 400, checked by a C program
// built against it.
func TestSdExp10MatchesGlibc(t *testing.T) {
	gcc := testenv.LookPath(t, "gcc", "apt-get install gcc libc6-dev")
	dir := t.TempDir()
	src := filepath.Join(dir, "exp10.c")
	require.NoError(t, os.WriteFile(src, []byte(`#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>
int main(void){ for (int e = -400; e <= 400; e++) { volatile double a = e; double r = exp10(a); unsigned long long b; memcpy(&b, &r, 8); printf("%d %llx\n", e, b); } return 0; }
`), 0o600))
	bin := filepath.Join(dir, "exp10")
	out, err := exec.Command(gcc, "-O0", "-o", bin, src, "-lm").CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(bin).Output()
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 801)
	for _, l := range lines {
		var e int
		var bits uint64
		_, err := fmt.Sscanf(l, "%d %x", &e, &bits)
		require.NoError(t, err, l)
		got := sdExp10(float64(e))
		assert.Equal(t, bits, math.Float64bits(got), "exp10(%d): glibc %v, ours %v", e, math.Float64frombits(bits), got)
	}
}
