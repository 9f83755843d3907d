package luks

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cloudluks/cloudluks/luks/sector"
)

// Dump writes the text of `cryptsetup luksDump` 2.6.1 for a LUKS2 header (LUKS2_hdr_dump
// and the keyslot, digest and token hooks of lib/luks2). path is not printed: cryptsetup's
// LUKS2 dump names no device. It walks the JSON as cryptsetup does, by id (keyslots and
// tokens 0…31, segments 0…31, digests 0…7), so odd but valid headers print the same.
// Tokens of systemd's plugins (systemd-tpm2, -fido2, -pkcs11) print the lines systemd 252's
// libcryptsetup-token-systemd-*.so add, as on a machine where systemd is installed (see
// dumpSystemdToken); luks2-keyring tokens print their key description as cryptsetup's
// built-in handler does.
func (h *Header2) Dump(w io.Writer, path string) error {
	return h.DumpWith(w, path, DumpOptions{})
}

// DumpOptions are the choices of `cryptsetup luksDump` that change a LUKS2 dump.
type DumpOptions struct {
	// DisableExternalTokens prints what cryptsetup --disable-external-tokens prints:
	// no token plugin is loaded, so systemd's tokens show their type and keyslots only.
	// The built-in luks2-keyring handler still prints its key description.
	DisableExternalTokens bool
}

// DumpWith is Dump with the options of opts.
func (h *Header2) DumpWith(w io.Writer, path string, opts DumpOptions) error {
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
			fmt.Fprintf(bw, "\tsector: %d [bytes]\n", uint32(jsonGetInt64(v)))
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
			fmt.Fprintf(bw, "\tKey:        %d bits\n", uint32(jsonGetInt64(ks))*8)
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
		if !opts.DisableExternalTokens {
			dumpSystemdToken(bw, tm)
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
			fmt.Fprintf(bw, "\tIterations: %d\n", uint64(jsonGetInt64(dm["iterations"])))
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
	fmt.Fprintf(bw, "\tCipher key: %d bits\n", uint32(jsonGetInt64(area["key_size"]))*8)
	fmt.Fprintf(bw, "\tPBKDF:      %s\n", cStr(kdf["type"]))
	if kdf["type"] == "pbkdf2" {
		fmt.Fprintf(bw, "\tHash:       %s\n", cStr(kdf["hash"]))
		it, _ := strtoull(cStr(kdf["iterations"]))
		fmt.Fprintf(bw, "\tIterations: %d\n", it)
	} else {
		fmt.Fprintf(bw, "\tTime cost:  %d\n", uint64(jsonGetInt64(kdf["time"])))
		fmt.Fprintf(bw, "\tMemory:     %d\n", uint64(jsonGetInt64(kdf["memory"])))
		fmt.Fprintf(bw, "\tThreads:    %d\n", uint64(jsonGetInt64(kdf["cpus"])))
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
		fmt.Fprintf(bw, "\t%-12s%d [bytes]\n", "Hash data:", int32(jsonGetInt64(area["sector_size"])))
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

// dumpSystemdToken prints what systemd 252's token plugins print from their
// cryptsetup_token_dump hook (src/cryptsetup/cryptsetup-tokens/cryptsetup-token-systemd-*.c),
// which cryptsetup calls for every token of their type between the type line and the
// Keyslot lines. The plugins parse the token again with systemd's own JSON parser and
// print nothing when any field they need is missing or malformed. For a few malformed
// tokens the 2.6.1/252 pair crashes instead (a non-string fido2-credential, fido2-salt,
// fido2-rp, pkcs11-uri or pkcs11-key: cryptsetup dies of SIGSEGV or an assertion and prints
// no dump at all); these print nothing extra here, like a refused token.
func dumpSystemdToken(bw *bufio.Writer, tm map[string]any) {
	typ, _ := tm["type"].(string)
	switch typ {
	case "systemd-tpm2", "systemd-fido2", "systemd-pkcs11":
	default:
		return
	}
	if !sdParses(tm) {
		return
	}
	switch typ {
	case "systemd-tpm2":
		dumpSystemdTPM2(bw, tm)
	case "systemd-fido2":
		dumpSystemdFIDO2(bw, tm)
	case "systemd-pkcs11":
		dumpSystemdPKCS11(bw, tm)
	}
}

// sdLineSep is CRYPT_DUMP_LINE_SEP of systemd's cryptsetup-token.h.
const sdLineSep = "\n\t            "

// dumpSystemdTPM2 follows tpm2_parse_luks2_json of systemd 252 (src/shared/tpm2-util.c).
func dumpSystemdTPM2(bw *bufio.Writer, tm map[string]any) {
	pcrs, ok := tm["tpm2-pcrs"]
	if !ok {
		return
	}
	hashMask, ok := sdPCRMask(pcrs)
	if !ok {
		return
	}
	bank := "n/a" // chosen at unlock time
	if v, ok := tm["tpm2-pcr-bank"]; ok {
		s, isStr := v.(string)
		if !isStr {
			return
		}
		if bank = sdOneOf(s, "sha1", "sha256", "sha384", "sha512"); bank == "" {
			return
		}
	}
	alg := "ecc" // systemd < 250 wrote no field and always used ECC
	if v, ok := tm["tpm2-primary-alg"]; ok {
		s, isStr := v.(string)
		if !isStr {
			return
		}
		if alg = sdOneOf(s, "ecc", "rsa"); alg == "" {
			return
		}
	}
	blob, ok := sdField(tm, "tpm2-blob", sdUnbase64)
	if !ok {
		return
	}
	policy, ok := sdField(tm, "tpm2-policy-hash", sdUnhex)
	if !ok {
		return
	}
	pin := false
	if v, ok := tm["tpm2-pin"]; ok {
		if pin, ok = v.(bool); !ok {
			return
		}
	}
	var pubMask uint32
	if v, ok := tm["tpm2_pubkey_pcrs"]; ok {
		if pubMask, ok = sdPCRMask(v); !ok {
			return
		}
	}
	var pub []byte
	if _, ok := tm["tpm2_pubkey"]; ok {
		if pub, ok = sdField(tm, "tpm2_pubkey", sdUnbase64); !ok {
			return
		}
	} else if pubMask != 0 {
		return
	}
	fmt.Fprintf(bw, "\ttpm2-hash-pcrs:   %s\n", sdPCRString(hashMask))
	fmt.Fprintf(bw, "\ttpm2-pcr-bank:    %s\n", bank)
	fmt.Fprintf(bw, "\ttpm2-pubkey:"+sdLineSep+"%s\n", sdHex(pub))
	fmt.Fprintf(bw, "\ttpm2-pubkey-pcrs: %s\n", sdPCRString(pubMask))
	fmt.Fprintf(bw, "\ttpm2-primary-alg: %s\n", alg)
	fmt.Fprintf(bw, "\ttpm2-blob:        %s\n", sdHex(blob))
	fmt.Fprintf(bw, "\ttpm2-policy-hash:"+sdLineSep+"%s\n", sdHex(policy))
	fmt.Fprintf(bw, "\ttpm2-pin:         %t\n", pin)
}

// dumpSystemdFIDO2 follows parse_luks2_fido2_data of systemd 252 (luks2-fido2.c). The
// three *-required lines are left out when their field is absent (tokens of systemd 248).
func dumpSystemdFIDO2(bw *bufio.Writer, tm map[string]any) {
	cid, ok := sdField(tm, "fido2-credential", sdUnbase64)
	if !ok {
		return
	}
	salt, ok := sdField(tm, "fido2-salt", sdUnbase64)
	if !ok {
		return
	}
	rp, hasRP := tm["fido2-rp"]
	if _, isStr := rp.(string); hasRP && !isStr {
		return
	}
	fmt.Fprintf(bw, "\tfido2-credential:"+sdLineSep+"%s\n", sdHex(cid))
	fmt.Fprintf(bw, "\tfido2-salt: %s\n", sdHex(salt))
	if hasRP {
		fmt.Fprintf(bw, "\tfido2-rp:   %s\n", rp)
	}
	for _, k := range []string{"fido2-clientPin-required", "fido2-up-required", "fido2-uv-required"} {
		if v, ok := tm[k]; ok {
			b, _ := v.(bool) // json_variant_boolean: anything but true is false
			fmt.Fprintf(bw, "\t%s:"+sdLineSep+"%t\n", k, b)
		}
	}
}

// dumpSystemdPKCS11 follows parse_luks2_pkcs11_data of systemd 252 (luks2-pkcs11.c).
func dumpSystemdPKCS11(bw *bufio.Writer, tm map[string]any) {
	uri, ok := tm["pkcs11-uri"].(string)
	if !ok {
		return
	}
	key, ok := sdField(tm, "pkcs11-key", sdUnbase64)
	if !ok {
		return
	}
	fmt.Fprintf(bw, "\tpkcs11-uri: %s\n", uri)
	fmt.Fprintf(bw, "\tpkcs11-key: %s\n", sdHex(key))
}

// sdField decodes the string field k; a missing or non-string field fails
// (json_variant_unbase64/unhex refuse non-strings).
func sdField(tm map[string]any, k string, dec func(string) ([]byte, bool)) ([]byte, bool) {
	s, ok := tm[k].(string)
	if !ok {
		return nil, false
	}
	return dec(s)
}

// sdOneOf matches s case-insensitively against names (strcaseeq) and returns the name as
// systemd prints it, or "".
func sdOneOf(s string, names ...string) string {
	for _, n := range names {
		if len(s) == len(n) && asciiLower(s) == n {
			return n
		}
	}
	return ""
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// sdPCRMask is tpm2_parse_pcr_json_array: an array of unsigned numbers below 24. systemd
// counts a real number (as sdNumber computes it) as unsigned when it converts to an
// integer and back unchanged.
func sdPCRMask(v any) (uint32, bool) {
	arr, ok := v.([]any)
	if !ok {
		return 0, false
	}
	var mask uint32
	for _, e := range arr {
		n, ok := e.(json.Number)
		if !ok {
			return 0, false
		}
		v, real, ok := sdNumber(string(n))
		if !ok {
			return 0, false
		}
		var u uint64
		if real {
			f := math.Float64frombits(uint64(v))
			if f < 0 || f >= 24 || f != math.Trunc(f) {
				return 0, false
			}
			u = uint64(f)
		} else {
			if v < 0 || v >= 24 {
				return 0, false
			}
			u = uint64(v)
		}
		mask |= 1 << u
	}
	return mask, true
}

// sdPCRString is pcr_mask_to_string: the PCR numbers joined by '+', "n/a" for none (the
// function returns NULL then and the plugin prints strna of it).
func sdPCRString(mask uint32) string {
	var b strings.Builder
	for i := 0; i < 32; i++ {
		if mask&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte('+')
			}
			b.WriteString(strconv.Itoa(i))
		}
	}
	if b.Len() == 0 {
		return "n/a"
	}
	return b.String()
}

// sdHex is crypt_dump_buffer_to_hex_string of systemd's cryptsetup-token-util.c: bytes as
// "xx" separated by a space, a line break every 16; an empty buffer gives a NULL string,
// which glibc's printf shows as "(null)".
func sdHex(b []byte) string {
	if len(b) == 0 {
		return "(null)"
	}
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			if i%16 == 0 {
				sb.WriteString(sdLineSep)
			} else {
				sb.WriteByte(' ')
			}
		}
		fmt.Fprintf(&sb, "%02x", c)
	}
	return sb.String()
}

const sdWhitespace = " \t\n\r"

// sdUnbase64 is systemd 252's unbase64mem: standard alphabet, whitespace anywhere
// ignored, every group of four complete (padding required), no unused bits set in a
// padded group, nothing after the padding.
func sdUnbase64(s string) ([]byte, bool) {
	var q []int // the characters, whitespace dropped; '=' as -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case strings.IndexByte(sdWhitespace, c) >= 0:
			continue
		case c == '=':
			q = append(q, -1)
		default:
			v := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", c)
			if v < 0 {
				return nil, false
			}
			q = append(q, v)
		}
	}
	var out []byte
	for len(q) > 0 {
		if len(q) < 4 {
			return nil, false
		}
		a, b, c, d := q[0], q[1], q[2], q[3]
		q = q[4:]
		if a < 0 || b < 0 {
			return nil, false
		}
		switch {
		case c < 0:
			if d >= 0 || b&15 != 0 || len(q) > 0 {
				return nil, false
			}
			return append(out, byte(a<<2|b>>4)), true
		case d < 0:
			if c&3 != 0 || len(q) > 0 {
				return nil, false
			}
			return append(out, byte(a<<2|b>>4), byte(b<<4|c>>2)), true
		}
		out = append(out, byte(a<<2|b>>4), byte(b<<4|c>>2), byte(c<<6|d))
	}
	return out, true
}

// sdUnhex is systemd 252's unhexmem: pairs of hex digits of either case, whitespace
// anywhere ignored, an odd count refused.
func sdUnhex(s string) ([]byte, bool) {
	var digits []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(sdWhitespace, c) >= 0 {
			continue
		}
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return nil, false
		}
		digits = append(digits, v)
	}
	if len(digits)%2 != 0 {
		return nil, false
	}
	out := make([]byte, len(digits)/2)
	for i := range out {
		out[i] = digits[2*i]<<4 | digits[2*i+1]
	}
	return out, true
}

// sdParses reports whether systemd's json_parse accepts the text json-c hands the plugin
// for this token: json-c writes NaN and ±Infinity, keeps the text of doubles (which
// systemd refuses with a leading zero), and passes strings with NUL bytes (as \u0000) or
// invalid UTF-8 through; systemd refuses all of these. Keys cannot hold a NUL (json-c
// ends them there).
func sdParses(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if !utf8.ValidString(k) || !sdParses(e) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !sdParses(e) {
				return false
			}
		}
	case string:
		return utf8.ValidString(x) && strings.IndexByte(x, 0) < 0
	case json.Number:
		_, _, ok := sdNumber(string(x))
		return ok
	}
	return true
}

// sdNumber is systemd 252's json_parse_number (src/shared/json.c) on the whole of text:
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, which refuses NaN, Infinity, a leading
// zero and the empty fraction json-c keeps ("1."). A real (a fraction, an exponent or an
// integer beyond the 64-bit range) is computed as systemd computes it, not correctly
// rounded: integer and fraction digits summed in doubles (x = 10x + d; y likewise, over a
// shift of 10 per digit), then (±(x + y/shift))·exp10(±exponent) with glibc's exp10, so
// 70e-1 is 6.999999999999999 and 0.07e2 7.000000000000001, neither of them an integer. For an integer, real is false and n holds it (an int64 when negative,
// else a uint64 in the int64's bits: the caller only asks for small unsigned values).
func sdNumber(text string) (n int64, real bool, ok bool) {
	c := 0
	digit := func() bool { return c < len(text) && text[c] >= '0' && text[c] <= '9' }
	neg := false
	if c < len(text) && text[c] == '-' {
		neg = true
		c++
	}
	var x, y, exponent, shift float64 = 0, 0, 0, 1
	var i int64
	var u uint64
	if c < len(text) && text[c] == '0' {
		c++
	} else {
		if !digit() || text[c] == '0' {
			return 0, false, false
		}
		for digit() {
			d := int64(text[c] - '0')
			if !real {
				if neg {
					if i < math.MinInt64/10 || 10*i < math.MinInt64+d {
						real = true
					} else {
						i = 10*i - d
					}
				} else {
					if u > math.MaxUint64/10 || 10*u > math.MaxUint64-uint64(d) {
						real = true
					} else {
						u = 10*u + uint64(d)
					}
				}
			}
			x = 10*x + float64(d)
			c++
		}
	}
	if c < len(text) && text[c] == '.' {
		real = true
		c++
		if !digit() {
			return 0, false, false
		}
		for digit() {
			y = 10*y + float64(text[c]-'0')
			shift *= 10
			c++
		}
	}
	expNeg := false
	if c < len(text) && (text[c] == 'e' || text[c] == 'E') {
		real = true
		c++
		if c < len(text) && (text[c] == '-' || text[c] == '+') {
			expNeg = text[c] == '-'
			c++
		}
		if !digit() {
			return 0, false, false
		}
		for digit() {
			exponent = 10*exponent + float64(text[c]-'0')
			c++
		}
	}
	if c != len(text) {
		return 0, false, false
	}
	if real {
		sign, es := 1.0, 1.0
		if neg {
			sign = -1
		}
		if expNeg {
			es = -1
		}
		f := (sign * (x + y/shift)) * sdExp10(es*exponent)
		return int64(math.Float64bits(f)), true, true
	}
	if neg {
		return i, false, true
	}
	return int64(u), false, true
}

// sdExp10 is glibc 2.36's exp10, which json_parse_number calls, for the integral
// arguments it passes (sdExp10Table): 0 below 10^-323, +Inf above 10^308.
func sdExp10(e float64) float64 {
	switch {
	case e < sdExp10Min:
		return 0
	case e > sdExp10Min+float64(len(sdExp10Table)-1):
		return math.Inf(1)
	}
	return sdExp10Table[int(e)-sdExp10Min]
}

const sdExp10Min = -323
