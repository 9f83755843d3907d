package cli

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

var testVerbs = Verbs[func() int]{
	{Name: "open", Aliases: []string{"luksOpen"}, Args: "<device> <name>", MinArgs: 2, Summary: "open device as <name>", Example: "open disk.img data"},
	{Name: "benchmark", Summary: "benchmark cipher", Example: "benchmark"},
}

func TestVerbsLookup(t *testing.T) {
	v, ok := testVerbs.Lookup("luksOpen")
	assert.True(t, ok)
	assert.Equal(t, "open", v.Name)
	_, ok = testVerbs.Lookup("Open")
	assert.False(t, ok, "names are case-sensitive, as cryptsetup's")
	assert.Equal(t, "benchmark", testVerbs[1].Synopsis())
}

func TestVerbHelp(t *testing.T) {
	var out, errb strings.Builder
	code := testVerbs.Help(&out, &errb, "prog", []string{"luksOpen"}, func(w io.Writer) { w.Write([]byte("USAGE\n")) })
	assert.Equal(t, ExitOK, code)
	assert.Equal(t, "Usage: prog open <device> <name>\nAliases: luksOpen\n\nopen device as <name>\n\nExample:\n  prog open disk.img data\n", out.String())
	assert.Empty(t, errb.String())

	out.Reset()
	assert.Equal(t, ExitOK, testVerbs.Help(&out, &errb, "prog", nil, func(w io.Writer) { w.Write([]byte("USAGE\n")) }))
	assert.Equal(t, "USAGE\n", out.String())

	out.Reset()
	assert.Equal(t, ExitUsage, testVerbs.Help(&out, &errb, "prog", []string{"nope"}, func(w io.Writer) { w.Write([]byte("USAGE\n")) }))
	assert.Empty(t, out.String())
	assert.Equal(t, "prog: unknown verb \"nope\"\nUSAGE\n", errb.String())
}

func TestVerbsWriteList(t *testing.T) {
	var out strings.Builder
	testVerbs.WriteList(&out)
	assert.Equal(t, "  open       open device as <name>\n  benchmark  benchmark cipher\n", out.String())
}

func TestIsHelpFlag(t *testing.T) {
	for _, a := range []string{"-h", "-help", "--help", "-?"} {
		assert.True(t, IsHelpFlag(a), a)
	}
	for _, a := range []string{"help", "-v", "--helpme", ""} {
		assert.False(t, IsHelpFlag(a), a)
	}
}
