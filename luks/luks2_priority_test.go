package luks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLUKS2PriorityLikeJSONC: keyslot priorities and AF stripes are read as json-c's
// json_object_get_int reads them (null 0, strings parsed, doubles truncated, int32
// saturation): the slot cryptsetup 2.6.1 opens (or its refusal) and its luksDump text are
// matched for each value.
func TestLUKS2PriorityLikeJSONC(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		prio    any
		stripes any
	}{
		{nil, nil}, {"0", nil}, {"2", nil}, {" 2xyz", nil}, {"abc", nil}, {json.Number("2.5"), nil},
		{json.Number("1.9"), nil}, {json.Number("-0.5"), nil}, {json.Number("1e10"), nil},
		{json.Number("4294967298"), nil}, {true, nil}, {json.Number("0"), json.Number("4294971296")},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%d-%v", i, tc.prio), func(t *testing.T) {
			im := newL2Image(baseImage2(t))
			im.edit(t, func(m map[string]any) {
				obj(m, "keyslots", "0")["priority"] = tc.prio
				if tc.stripes != nil {
					obj(m, "keyslots", "1", "af")["stripes"] = tc.stripes
				}
			})
			im.sealBoth()
			p := filepath.Join(dir, fmt.Sprintf("p%d.img", i))
			require.NoError(t, os.WriteFile(p, im.b, 0o600))

			code, slot := csTestPass(t, p, "pass0", "")
			_, vk, got, err := Unlock2(context.Background(), bytes.NewReader(im.b), []byte("pass0"), UnlockOptions{})
			if code == 0 {
				require.NoError(t, err)
				assert.Equal(t, slot, got)
				vk.Wipe()
			} else {
				assert.Error(t, err, "cryptsetup exit %d", code)
			}
			h, err := ReadHeader2(bytes.NewReader(im.b))
			require.NoError(t, err)
			var out bytes.Buffer
			require.NoError(t, h.Dump(&out, p))
			assert.Equal(t, mustCS(t, nil, "luksDump", p), out.String())
		})
	}
}
