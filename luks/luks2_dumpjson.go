package luks

import (
	"fmt"
	"io"

	"github.com/cloudluks/cloudluks/luks/internal/jsonc"
)

// DumpJSON writes the JSON metadata as `cryptsetup luksDump --dump-json-metadata` 2.6.1
// prints it (LUKS2_hdr_dump_json): json-c's pretty form of the tree in use, members in
// their stored order, with no newline after the closing brace.
func (h *Header2) DumpJSON(w io.Writer) error {
	tree, _, err := jsonc.Parse(h.JSON)
	if err != nil || tree.Kind != jsonc.Object {
		return fmt.Errorf("%w: JSON metadata: %v", ErrCorruptHeader, err)
	}
	_, err = w.Write(jsonc.MarshalPretty(tree))
	return err
}
