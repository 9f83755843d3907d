package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLuks2DumpJSONSideBySide: luksDump --dump-json-metadata prints what cryptsetup 2.6.1
// prints, byte for byte (json-c's pretty form, no final newline), on LUKS2 images of both
// tools, one holding a token with escapes, a double and empty arrays and objects; LUKS1,
// a device without a header and --type luks1 on LUKS2 are refused with the same message
// and exit code, and --dump-volume-key wins over the option.
func TestLuks2DumpJSONSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	dir := t.TempDir()
	luks2HeaderImages(t, dir)
	copyFile(t, filepath.Join(dir, "a.img"), filepath.Join(dir, "t.img"))
	tok := `{"type":"x-test","keyslots":[],"s":"a/b\"c\u0001\t\u00e9","n":1.50,"i":-7,"b":true,"z":null,"nest":[[],{},[1,{"k":"v"}]]}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tok.json"), []byte(tok), 0o600))
	r := runIn(t, dir, cs, "", "token", "import", "--json-file", "tok.json", "t.img")
	require.Equal(t, 0, r.code, r.stderr)
	r = runIn(t, dir, cs, "", "config", "--label", `L/"x"`, "t.img")
	require.Equal(t, 0, r.code, r.stderr)

	for _, args := range [][]string{
		{"luksDump", "--dump-json-metadata", "a.img"},
		{"luksDump", "--dump-json-metadata", "b.img"},
		{"luksDump", "--dump-json-metadata", "d.img"},
		{"luksDump", "--dump-json-metadata", "g.img"},
		{"luksDump", "--dump-json-metadata", "t.img"},
		{"luksDump", "--dump-json-metadata", "--type", "luks2", "t.img"},
		{"luksDump", "--dump-json-metadata", "l1.img"},
		{"luksDump", "--dump-json-metadata", "zero.img"},
		{"luksDump", "--dump-json-metadata", "--type", "luks1", "a.img"},
		{"luksDump", "--dump-json-metadata", "missing.img"},
	} {
		c := runIn(t, dir, cs, "", args...)
		g := runIn(t, dir, binPath, "", args...)
		assert.Equal(t, c, g, "%v", args)
	}
	c := runIn(t, dir, cs, "", "luksDump", "--dump-json-metadata", "t.img")
	require.Equal(t, 0, c.code)
	assert.True(t, strings.HasPrefix(c.stdout, "{\n  \"keyslots\":{\n"), "oracle output changed: %q", c.stdout)
	assert.True(t, strings.HasSuffix(c.stdout, "\n}"), "%q", c.stdout)

	args := []string{"luksDump", "-q", "--dump-json-metadata", "--dump-volume-key", "a.img"}
	c = runIn(t, dir, cs, "pass0\n", args...)
	g := runIn(t, dir, binPath, "pass0\n", args...)
	require.Equal(t, 0, c.code, c.stderr)
	assert.Equal(t, c, g)
	assert.Contains(t, g.stdout, "MK dump:")
}
