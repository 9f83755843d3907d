package luks

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLUKS2DigestJSONOrder: a digest "1" placed before digest "0" in the JSON text, both
// covering segment 0, is the segment's digest for cryptsetup 2.6.1 (json-c keeps insertion
// order): keyslot 0 then shows as unbound in luksDump and no keyslot opens. Both the dump
// text and the refusal are matched.
func TestLUKS2DigestJSONOrder(t *testing.T) {
	im := newL2Image(baseImage2(t))
	for c := 0; c < 2; c++ {
		a := im.area(c)
		text := string(a[:bytes.IndexByte(a, 0)])
		m := im.tree(t, c)
		d0 := obj(m, "digests", "0")
		d1 := map[string]any{}
		for k, v := range d0 {
			d1[k] = v
		}
		d1["keyslots"] = []any{}
		im.setTree(t, c, map[string]any{"d": d1})
		one := string(im.area(c)[:bytes.IndexByte(im.area(c), 0)])
		one = strings.TrimSuffix(strings.TrimPrefix(one, `{"d":`), "}")
		const at = `"digests":{`
		i := strings.Index(text, at) + len(at)
		im.setText(c, []byte(text[:i]+`"1":`+one+","+text[i:]))
	}
	im.sealBoth()
	p := filepath.Join(t.TempDir(), "order.img")
	require.NoError(t, os.WriteFile(p, im.b, 0o600))

	h, err := ReadHeader2(bytes.NewReader(im.b))
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, h.Dump(&out, p))
	want := mustCS(t, nil, "luksDump", p)
	assert.Contains(t, want, "0: luks2 (unbound)")
	assert.Equal(t, want, out.String())

	assert.Equal(t, 1, runCS(t, []byte("pass1"), "open", "--test-passphrase", "--key-file", "-", p).code)
	_, _, _, err = Unlock2(context.Background(), bytes.NewReader(im.b), []byte("pass1"), UnlockOptions{})
	assert.ErrorIs(t, err, ErrKeyslotInactive)
}
