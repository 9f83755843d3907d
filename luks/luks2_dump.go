package luks

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/cloudluks/cloudluks/luks/sector"
)

// Dump writes the text of `cryptsetup luksDump` 2.6.1 for a LUKS2 header (LUKS2_hdr_dump
// and the keyslot, digest and token hooks of lib/luks2). path is not printed: cryptsetup's
// LUKS2 dump names no device. It walks the JSON as cryptsetup does, by id (keyslots and
// tokens 0…31, segments 0…31, digests 0…7), so odd but valid headers print the same.
// Tokens of external plugins (systemd-tpm2, -fido2, -pkcs11) print without the lines
// cryptsetup's plugins add when they are installed; luks2-keyring tokens print their key
// description as cryptsetup's built-in handler does.
func (h *Header2) Dump(w io.Writer, path string) error {
	bw := bufio.NewWriter(w)
	root := h.tree
	cfg := jObj(root, "config")
	fmt.Fprintf(bw, "LUKS header information\n")
	fmt.Fprintf(bw, "Version:       \t%d\n", h.Version)
	fmt.Fprintf(bw, "Epoch:         \t%d\n", h.SeqID)
	fmt.Fprintf(bw, "Metadata area: \t%d [bytes]\n", jU64(cfg, "json_size")+BinaryHeaderSize)
	fmt.Fprintf(bw, "Keyslots area: \t%d [bytes]\n", jU64(cfg, "keyslots_size"))
	fmt.Fprintf(bw, "UUID:          \t%s\n", orNone(h.UUID, "(no UUID)"))
	fmt.Fprintf(bw, "Label:         \t%s\n", orNone(h.Label, "(no label)"))
	fmt.Fprintf(bw, "Subsystem:     \t%s\n", orNone(h.Subsystem, "(no subsystem)"))

	// config
	fmt.Fprint(bw, "Flags:       \t")
	m, _ := cfg["flags"].([]any)
	var reqs []any
	if req := jObj(cfg, "requirements"); req != nil {
		reqs, _ = req["mandatory"].([]any)
	}
	for _, f := range m {
		fmt.Fprintf(bw, "%s ", cStr(f))
	}
	if len(m) == 0 {
		fmt.Fprint(bw, "(no flags)")
	}
	fmt.Fprint(bw, "\n")
	if len(reqs) == 0 {
		fmt.Fprint(bw, "\n")
	} else {
		fmt.Fprint(bw, "Requirements:\t")
		for _, r := range reqs {
			fmt.Fprintf(bw, "%s ", cStr(r))
		}
		fmt.Fprint(bw, "\n\n")
	}

	// segments
	fmt.Fprint(bw, "Data segments:\n")
	segs := jObj(root, "segments")
	for i := 0; i < 32; i++ {
		s, ok := segs[strconv.Itoa(i)]
		if !ok {
			continue
		}
		sm, _ := s.(map[string]any)
		fmt.Fprintf(bw, "  %d: %s\n", i, cStr(sm["type"]))
		fmt.Fprintf(bw, "\toffset: %d [bytes]\n", jU64(sm, "offset"))
		if jStr(sm, "size") == "dynamic" {
			fmt.Fprint(bw, "\tlength: (whole device)\n")
		} else {
			fmt.Fprintf(bw, "\tlength: %d [bytes]\n", jU64(sm, "size"))
		}
		if v, ok := sm["encryption"]; ok {
			fmt.Fprintf(bw, "\tcipher: %s\n", cStr(v))
		}
		if v, ok := sm["sector_size"]; ok {
			fmt.Fprintf(bw, "\tsector: %d [bytes]\n", uint32(cInt64(v)))
		}
		if in, ok := sm["integrity"].(map[string]any); ok {
			if v, ok := in["type"]; ok {
				fmt.Fprintf(bw, "\tintegrity: %s\n", cStr(v))
			}
		}
		if fl, ok := sm["flags"].([]any); ok && len(fl) > 0 {
			fmt.Fprintf(bw, "\tflags : %s", cStr(fl[0]))
			for _, f := range fl[1:] {
				fmt.Fprintf(bw, ", %s", cStr(f))
			}
			fmt.Fprint(bw, "\n")
		}
		fmt.Fprint(bw, "\n")
	}

	// keyslots
	fmt.Fprint(bw, "Keyslots:\n")
	kss := jObj(root, "keyslots")
	digests := jObj(root, "digests")
	for j := 0; j < 32; j++ {
		slot := strconv.Itoa(j)
		v, ok := kss[slot]
		if !ok {
			continue
		}
		km, _ := v.(map[string]any)
		unbound := ""
		if !h.keyslotBound(j) {
			unbound = " (unbound)"
		}
		fmt.Fprintf(bw, "  %s: %s%s\n", slot, cStr(km["type"]), unbound)
		if ks, ok := km["key_size"]; ok {
			fmt.Fprintf(bw, "\tKey:        %d bits\n", uint32(cInt64(ks))*8)
		}
		prio := int64(PriorityNormal)
		if p, ok := km["priority"]; ok {
			prio = int64(jsoncInt(p))
		}
		desc := "invalid"
		switch prio {
		case PriorityIgnore:
			desc = "ignored"
		case PriorityPrefer:
			desc = "preferred"
		case PriorityNormal:
			desc = "normal"
		}
		fmt.Fprintf(bw, "\tPriority:   %s\n", desc)
		switch km["type"] {
		case "luks2":
			dumpLUKS2Keyslot(bw, km)
		case "reencrypt":
			dumpReencKeyslot(bw, km)
		}
		for _, id := range h.digestOrder() {
			dk := strconv.Itoa(id)
			dm, _ := digests[dk].(map[string]any)
			arr, _ := dm["keyslots"].([]any)
			for _, x := range arr {
				if cStr(x) == slot {
					fmt.Fprintf(bw, "\tDigest ID:  %s\n", dk)
				}
			}
		}
	}

	// tokens
	fmt.Fprint(bw, "Tokens:\n")
	toks := jObj(root, "tokens")
	for j := 0; j < 32; j++ {
		v, ok := toks[strconv.Itoa(j)]
		if !ok {
			continue
		}
		tm, _ := v.(map[string]any)
		fmt.Fprintf(bw, "  %d: %s\n", j, cStr(tm["type"]))
		if tm["type"] == "luks2-keyring" {
			if kd, ok := tm["key_description"]; ok {
				fmt.Fprintf(bw, "\tKey description: %s\n", cStr(kd))
			}
		}
		arr, _ := tm["keyslots"].([]any)
		for _, x := range arr {
			fmt.Fprintf(bw, "\tKeyslot:    %s\n", cStr(x))
		}
	}

	// digests
	fmt.Fprint(bw, "Digests:\n")
	for i := 0; i < 8; i++ {
		v, ok := digests[strconv.Itoa(i)]
		if !ok {
			continue
		}
		dm, _ := v.(map[string]any)
		fmt.Fprintf(bw, "  %d: %s\n", i, cStr(dm["type"]))
		if dm["type"] == "pbkdf2" {
			fmt.Fprintf(bw, "\tHash:       %s\n", cStr(dm["hash"]))
			fmt.Fprintf(bw, "\tIterations: %d\n", uint64(cInt64(dm["iterations"])))
			fmt.Fprint(bw, "\tSalt:       ")
			hexBase64(bw, dm["salt"])
			fmt.Fprint(bw, "\tDigest:     ")
			hexBase64(bw, dm["digest"])
		}
	}
	return bw.Flush()
}

func dumpLUKS2Keyslot(bw *bufio.Writer, km map[string]any) {
	kdf, ok1 := km["kdf"].(map[string]any)
	af, ok2 := km["af"].(map[string]any)
	area, ok3 := km["area"].(map[string]any)
	if !ok1 || !ok2 || !ok3 {
		return
	}
	fmt.Fprintf(bw, "\tCipher:     %s\n", cStr(area["encryption"]))
	fmt.Fprintf(bw, "\tCipher key: %d bits\n", uint32(cInt64(area["key_size"]))*8)
	fmt.Fprintf(bw, "\tPBKDF:      %s\n", cStr(kdf["type"]))
	if kdf["type"] == "pbkdf2" {
		fmt.Fprintf(bw, "\tHash:       %s\n", cStr(kdf["hash"]))
		it, _ := strtoull(cStr(kdf["iterations"]))
		fmt.Fprintf(bw, "\tIterations: %d\n", it)
	} else {
		fmt.Fprintf(bw, "\tTime cost:  %d\n", uint64(cInt64(kdf["time"])))
		fmt.Fprintf(bw, "\tMemory:     %d\n", uint64(cInt64(kdf["memory"])))
		fmt.Fprintf(bw, "\tThreads:    %d\n", uint64(cInt64(kdf["cpus"])))
	}
	fmt.Fprint(bw, "\tSalt:       ")
	hexBase64(bw, kdf["salt"])
	fmt.Fprintf(bw, "\tAF stripes: %d\n", uint32(jsoncInt(af["stripes"])))
	fmt.Fprintf(bw, "\tAF hash:    %s\n", cStr(af["hash"]))
	o, _ := strtoull(cStr(area["offset"]))
	s, _ := strtoull(cStr(area["size"]))
	fmt.Fprintf(bw, "\tArea offset:%d [bytes]\n", o)
	fmt.Fprintf(bw, "\tArea length:%d [bytes]\n", s)
}

func dumpReencKeyslot(bw *bufio.Writer, km map[string]any) {
	area, ok := km["area"].(map[string]any)
	_, okD := km["direction"]
	_, okM := km["mode"]
	res, okR := area["type"]
	if !ok || !okD || !okM || !okR {
		return
	}
	fmt.Fprintf(bw, "\t%-12s%s\n", "Mode:", cStr(km["mode"]))
	fmt.Fprintf(bw, "\t%-12s%s\n", "Direction:", cStr(km["direction"]))
	fmt.Fprintf(bw, "\t%-12s%s\n", "Resilience:", cStr(res))
	switch res {
	case "checksum":
		fmt.Fprintf(bw, "\t%-12s%s\n", "Hash:", cStr(area["hash"]))
		fmt.Fprintf(bw, "\t%-12s%d [bytes]\n", "Hash data:", int32(cInt64(area["sector_size"])))
	case "datashift":
		n, _ := strtoull(cStr(area["shift_size"]))
		fmt.Fprintf(bw, "\t%-12s%d[bytes]\n", "Shift size:", n)
	}
	o, _ := strtoull(cStr(area["offset"]))
	s, _ := strtoull(cStr(area["size"]))
	fmt.Fprintf(bw, "\tArea offset:%d [bytes]\n", o)
	fmt.Fprintf(bw, "\tArea length:%d [bytes]\n", s)
}

// keyslotBound is LUKS2_keyslot_for_segment(…, CRYPT_ONE_SEGMENT) == 0: the keyslot's
// digest (the first digest listing it) covers one of the regular segments.
func (h *Header2) keyslotBound(slot int) bool {
	d := -1
	for _, id := range h.digestOrder() {
		if containsInt(h.Digests[id].Keyslots, slot) {
			d = id
			break
		}
	}
	if d < 0 {
		return false
	}
	segs := jObj(h.tree, "segments")
	n := 0
	for _, s := range segs {
		if !isBackupSegment(s) {
			n++
		}
	}
	for s := 0; s < n; s++ {
		for _, id := range h.digestOrder() {
			if containsInt(h.Digests[id].Segments, s) {
				if id == d {
					return true
				}
				break
			}
		}
	}
	return false
}

// hexBase64 is hexprint_base64: the decoded bytes as "xx " 16 per line, continuation lines
// indented by a TAB and 12 spaces; nothing at all (not even the newline) when the text is
// not valid base64.
func hexBase64(bw *bufio.Writer, v any) {
	b, err := base64.StdEncoding.DecodeString(cStr(v))
	if err != nil {
		return
	}
	for i, c := range b {
		if i > 0 && i%16 == 0 {
			fmt.Fprint(bw, "\n\t            ")
		}
		fmt.Fprintf(bw, "%02x ", c)
	}
	fmt.Fprint(bw, "\n")
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

// cStr is json_object_get_string as printf's %s sees it: a string as is, other values as
// their JSON text, a missing value as glibc prints NULL.
func cStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "(null)"
	case string:
		return x
	case json.Number:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// cInt64 is json_object_get_int64: integers saturate, doubles truncate, strings parse
// their leading number, anything else is 0.
func cInt64(v any) int64 {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = x
	case bool:
		if x {
			return 1
		}
		return 0
	default:
		return 0
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	} else if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		if len(s) > 0 && s[0] == '-' {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return int64(f)
}

// DumpVolumeKey2 writes `cryptsetup luksDump --dump-volume-key` 2.6.1 for a LUKS2 header:
// the same layout as LUKS1's (DumpVolumeKey), with the cipher split from segment 0's
// encryption and the data offset in 512-byte sectors.
func DumpVolumeKey2(w io.Writer, dataPath string, h *Header2, vk *VolumeKey) error {
	name, mode := "", ""
	if s, ok := h.Segments[h.defaultSegment()]; ok {
		name, mode, _ = sector.SplitSpec(s.Encryption)
	}
	off := h.dataOffset() / SectorSize
	return dumpVolumeKey(w, dataPath, name, mode, int64(int32(off)), h.UUID, vk)
}

// dataOffset is LUKS2_get_data_offset: the backup-final segment's offset during a
// reencryption, else the smallest offset among the segments that are not backups.
func (h *Header2) dataOffset() uint64 {
	if id := h.defaultSegment(); id != 0 || segment2HasFlag(h.Segments[0], "backup-final") {
		return h.Segments[id].Offset
	}
	min, found := uint64(0), false
	for _, id := range sortedKeys(h.Segments) {
		s := h.Segments[id]
		if segmentIsBackup(s) {
			continue
		}
		if !found || s.Offset < min {
			min, found = s.Offset, true
		}
	}
	return min
}

func segment2HasFlag(s *Segment2, flag string) bool {
	if s == nil {
		return false
	}
	for _, f := range s.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// segmentIsBackup is json_segment_is_backup: a flag starting with "backup-".
func segmentIsBackup(s *Segment2) bool {
	for _, f := range s.Flags {
		if len(f) >= 7 && f[:7] == "backup-" {
			return true
		}
	}
	return false
}
