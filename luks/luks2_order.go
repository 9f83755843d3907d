package luks

import "github.com/cloudluks/cloudluks/luks/internal/jsonc"

// digestOrder lists digest ids in the order the JSON text has them. cryptsetup walks the
// digests object in json-c's insertion order (LUKS2_digest_by_segment and _by_keyslot take
// the first match, the dump prints matches in that order), so a header whose digests are
// not in numeric order must be read the same way. Ids the scan missed follow by number.
func (h *Header2) digestOrder() []int {
	out := make([]int, 0, len(h.Digests))
	seen := map[int]bool{}
	if v, _, err := jsonc.Parse(h.JSON); err == nil {
		if d := v.Get("digests"); d != nil && d.Kind == jsonc.Object {
			for _, m := range d.Members {
				if n := atoi(m.Key); numbered(m.Key) && !seen[n] && h.Digests[n] != nil {
					out = append(out, n)
					seen[n] = true
				}
			}
		}
	}
	for _, k := range sortedKeys(h.Digests) {
		if !seen[k] {
			out = append(out, k)
		}
	}
	return out
}
