package luks

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLUKS2JSONGrammarLikeJSONC: the JSON area is read with json-c's grammar, as cryptsetup
// reads it: comments, trailing commas, single quotes, NaN, duplicate keys, leading zeros,
// raw control bytes and invalid UTF-8 in strings (kept as raw bytes in the dump), and
// json-c's nesting limit of 32. Each variant of a cryptsetup-made header is accepted or
// refused as cryptsetup 2.6.1's luksDump decides, with the same text.
func TestLUKS2JSONGrammarLikeJSONC(t *testing.T) {
	base := baseImage2(t)
	a := newL2Image(bytes.Clone(base)).area(0)
	text := string(a[:bytes.IndexByte(a, 0)])
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tok := func(extra string) string {
		return strings.Replace(text, `"tokens":{}`, `"tokens":{"0":{"type":"x","keyslots":[]`+extra+`}}`, 1)
	}
	cases := []struct{ name, json string }{
		{"block-comment", "{/* c */" + text[1:]},
		{"line-comment", "{// c\n" + text[1:]},
		{"trailing-comma", text[:len(text)-1] + ",}"},
		{"single-quotes", strings.Replace(text, `"tokens":{}`, `'tokens':{}`, 1)},
		{"duplicate-key", strings.Replace(text, `"tokens":{}`, `"tokens":{"0":{"type":"y","keyslots":[]}},"tokens":{}`, 1)},
		{"nan", tok(`,"n":NaN`)},
		{"infinity", tok(`,"n":-Infinity`)},
		{"true-any-case", tok(`,"n":TRUE`)},
		{"leading-zero", strings.Replace(text, `"iterations":1000`, `"iterations":01000`, 1)},
		{"raw-tab", strings.Replace(tok(""), `"type":"x"`, "\"type\":\"a\tb\"", 1)},
		{"bad-utf8", strings.Replace(tok(""), `"type":"x"`, "\"type\":\"a\xff\xfeb\"", 1)},
		{"u-escape", strings.Replace(tok(""), `"type":"x"`, `"type":"\u00e9\u0041"`, 1)},
		{"depth-30", tok(`,"n":` + nest(27))},
		{"depth-33", tok(`,"n":` + nest(30))},
		{"ws-after", text + " \n\t"},
		{"vt-after", text + "\v"},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			im := newL2Image(bytes.Clone(base))
			im.setText(0, []byte(tc.json))
			im.setText(1, []byte(tc.json))
			im.sealBoth()
			p := filepath.Join(dir, tc.name+".img")
			require.NoError(t, os.WriteFile(p, im.b, 0o600))
			cs := runCS(t, nil, "luksDump", p)
			h, err := ReadHeader2(bytes.NewReader(im.b))
			require.Equal(t, cs.code == 0, err == nil, "cryptsetup exit %d %s; ours %v", cs.code, cs.stderr, err)
			if err != nil {
				return
			}
			var out bytes.Buffer
			require.NoError(t, h.Dump(&out, p))
			assert.Equal(t, cs.stdout, out.String(), fmt.Sprintf("%q", tc.json[:min(len(tc.json), 40)]))
		})
	}
}
