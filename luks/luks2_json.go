package luks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cloudluks/cloudluks/luks/internal/jsonc"
)

// Keyslot2 is one entry of the LUKS2 "keyslots" object. Fields a keyslot type does not use
// are zero; Raw keeps the whole JSON object (for types this package does not know).
type Keyslot2 struct {
	Type     string // "luks2", "reencrypt", or another type cryptsetup ignores
	KeySize  int    // bytes of the key the slot stores
	Priority *int   // nil = normal (1); 0 = ignore, 2 = prefer
	KDF      KDF2
	AF       AF2
	Area     Area2
	Raw      json.RawMessage
}

// KDF2 is a keyslot's "kdf" object.
type KDF2 struct {
	Type       string // "pbkdf2", "argon2i", "argon2id"
	Hash       string // pbkdf2
	Iterations int64  // pbkdf2
	Time       int64  // argon2: iterations
	Memory     int64  // argon2: KiB
	CPUs       int64  // argon2: parallelism
	Salt       []byte // base64-decoded; nil if the text is not valid base64
	SaltText   string
}

// AF2 is a keyslot's "af" object (type "luks1": anti-forensic split with stripes and hash).
type AF2 struct {
	Type    string
	Stripes int64
	Hash    string
}

// Area2 is a keyslot's "area" object: where its key material lives and how it is encrypted.
type Area2 struct {
	Type       string // "raw" (also datashift/checksum/journal/none for reencrypt)
	Offset     uint64 // bytes from the start of the header device
	Size       uint64
	Encryption string // cipher spec of the key material, e.g. "aes-xts-plain64"
	KeySize    int    // bytes
}

// Token2 is one entry of the "tokens" object; Raw is the whole object, kept intact.
type Token2 struct {
	Type     string
	Keyslots []int
	Raw      json.RawMessage
}

// Segment2 is one entry of the "segments" object.
type Segment2 struct {
	Type       string // "crypt" (others are kept but not mapped)
	Offset     uint64 // bytes on the data device
	Size       uint64 // bytes; 0 when Dynamic
	Dynamic    bool   // "size": "dynamic": to the end of the device
	IVTweak    uint64
	Encryption string
	SectorSize int
	Flags      []string
	Integrity  *SegmentIntegrity2
}

// SegmentIntegrity2 is a crypt segment's optional "integrity" object.
type SegmentIntegrity2 struct {
	Type, JournalEncryption, JournalIntegrity string
}

// Digest2 is one entry of the "digests" object (type "pbkdf2").
type Digest2 struct {
	Type       string
	Keyslots   []int
	Segments   []int
	Hash       string
	Iterations int64
	Salt       []byte
	Digest     []byte
	SaltText   string
	DigestText string
}

// Config2 is the "config" object.
type Config2 struct {
	JSONSize     uint64 // bytes of the JSON area (metadata size minus 4096)
	KeyslotsSize uint64
	Flags        []string // persistent activation flags ("allow-discards", ...)
	Requirements []string // config.requirements.mandatory
}

// json2 is a parsed and validated JSON area: the generic tree the validation walks.
type json2 struct {
	root map[string]any
}

// parseAndValidateJSON2 is cryptsetup's parse_and_validate_json: exactly one JSON object
// starting at the first byte, followed only by NUL bytes (at least one), then the LUKS2
// validation; a header failing it is retried once after cryptsetup's repair of known
// glitches (leftover KDF parameters of an older cryptsetup).
func parseAndValidateJSON2(area []byte) (*json2, []byte, error) {
	if len(area) == 0 || area[0] != '{' {
		return nil, nil, fmt.Errorf("%w: JSON area does not start with '{'", ErrCorruptHeader)
	}
	// json-c's own grammar (json_tokener_parse_ex with the default depth of 32): comments,
	// single quotes, trailing commas, NaN, duplicate keys (the last value wins) and strings
	// kept as raw bytes, exactly as cryptsetup reads them. The tokener also consumes the
	// white space and comments after the object; only NUL may follow.
	jv, n, err := jsonc.Parse(area)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: JSON: %w", ErrCorruptHeader, err)
	}
	v := jsoncTree(jv)
	end := int64(n)
	if end >= int64(len(area)) {
		return nil, nil, fmt.Errorf("%w: JSON area has no trailing NUL byte", ErrCorruptHeader)
	}
	if i := bytes.IndexFunc(area[end:], func(r rune) bool { return r != 0 }); i >= 0 {
		return nil, nil, fmt.Errorf("%w: non-NUL byte beyond the JSON text at offset %d", ErrCorruptHeader, end+int64(i))
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("%w: JSON is not an object", ErrCorruptHeader)
	}
	text := bytes.TrimRight(area[:end], " \t\r\n")
	// The size check measures the tree as json-c writes it back (LUKS2_check_json_size).
	ser := jsonc.Marshal(jv)
	if err := validate2(root, uint64(len(area)), ser); err != nil {
		if !repair2(root) {
			return nil, nil, err
		}
		if err2 := validate2(root, uint64(len(area)), ser); err2 != nil {
			return nil, nil, err
		}
	}
	return &json2{root: root}, text, nil
}

// repair2 is LUKS2_hdr_repair: luks2 keyslots lose KDF parameters their KDF type does not
// use (cryptsetup < 2.0.3 left them behind). It reports whether anything changed.
func repair2(root map[string]any) bool {
	ks, ok := root["keyslots"].(map[string]any)
	if !ok {
		return false
	}
	changed := false
	for _, v := range ks {
		k, ok := v.(map[string]any)
		if !ok || k["type"] != "luks2" {
			continue
		}
		kdf, ok := k["kdf"].(map[string]any)
		if !ok {
			continue
		}
		t, _ := kdf["type"].(string)
		var keep []string
		switch t {
		case "pbkdf2":
			keep = []string{"type", "salt", "hash", "iterations"}
		case "argon2i", "argon2id":
			keep = []string{"type", "salt", "time", "memory", "cpus"}
		default:
			continue
		}
		for name := range kdf {
			if !contains(keep, name) {
				delete(kdf, name)
				changed = true
			}
		}
	}
	return changed
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Tree accessors; all tolerate any shape (validation has run, but fill must never panic).

func jObj(v any, key string) map[string]any {
	m, _ := v.(map[string]any)
	o, _ := m[key].(map[string]any)
	return o
}

func jStr(v any, key string) string {
	m, _ := v.(map[string]any)
	s, _ := m[key].(string)
	return s
}

func jInt(v any, key string) int64 {
	m, _ := v.(map[string]any)
	n, _ := m[key].(json.Number)
	i, _ := strconv.ParseInt(string(n), 10, 64)
	return i
}

// digestIterations is how PBKDF2_digest_verify reads a digest's "iterations": no type is
// checked anywhere (hdr_validate_digests does not look at it), json_object_get_int64 turns
// whatever is there into a number and an unsigned int keeps its low 32 bits. So "1000",
// " 1000" and "1000abc" are 1000, "abc", null or an object 0 (the digest then cannot be
// checked: "Keyslot open failed."), "1e3" 1.
func digestIterations(v any) int64 {
	m, _ := v.(map[string]any)
	return int64(uint32(jsonGetInt64(m["iterations"])))
}

// jsonGetInt64 is json-c 0.16's json_object_get_int64 on a decoded value: an integer as
// is (one above the int64 range saturates), a double truncated toward zero and saturated,
// a string through strtoll (leading white space and a sign, digits up to the first other
// byte, saturating; no digits is 0), a boolean 0 or 1, anything else 0.
func jsonGetInt64(x any) int64 {
	switch v := x.(type) {
	case json.Number:
		s := string(v)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
		if !strings.ContainsAny(s, ".eE") {
			if s[0] == '-' {
				return math.MinInt64
			}
			return math.MaxInt64
		}
		f, _ := strconv.ParseFloat(s, 64)
		switch {
		case f >= math.MaxInt64:
			return math.MaxInt64
		case f <= math.MinInt64:
			return math.MinInt64
		}
		return int64(f)
	case string:
		return strtoll(v)
	case bool:
		if v {
			return 1
		}
	}
	return 0
}

// strtoll is C's strtoll(s, &end, 10) as json_parse_int64 uses it, 0 when no digit is read.
func strtoll(s string) int64 {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var mag uint64
	over := false
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if mag > (1<<63-d)/10 {
			over = true
			continue
		}
		mag = mag*10 + d
	}
	switch {
	case over && neg:
		return math.MinInt64
	case over:
		return math.MaxInt64
	case neg:
		return -int64(mag)
	case mag > math.MaxInt64:
		return math.MaxInt64
	}
	return int64(mag)
}

func jU64(v any, key string) uint64 {
	u, _ := strtoull(jStr(v, key))
	return u
}

func jStrings(v any, key string) []string {
	m, _ := v.(map[string]any)
	a, _ := m[key].([]any)
	var out []string
	for _, x := range a {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func jIDs(v any, key string) []int {
	var out []int
	for _, s := range jStrings(v, key) {
		out = append(out, atoi(s))
	}
	return out
}

func b64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// fill copies the validated tree into h's typed fields.
func (j *json2) fill(h *Header2) {
	r := j.root
	h.Keyslots = map[int]*Keyslot2{}
	for k, v := range jObj(r, "keyslots") {
		kdf, af, area := jObj(v, "kdf"), jObj(v, "af"), jObj(v, "area")
		ks := &Keyslot2{
			Type:    jStr(v, "type"),
			KeySize: int(jInt(v, "key_size")),
			KDF: KDF2{Type: jStr(kdf, "type"), Hash: jStr(kdf, "hash"), Iterations: jInt(kdf, "iterations"),
				Time: jInt(kdf, "time"), Memory: jInt(kdf, "memory"), CPUs: jInt(kdf, "cpus"),
				SaltText: jStr(kdf, "salt"), Salt: b64(jStr(kdf, "salt"))},
			AF: AF2{Type: jStr(af, "type"), Stripes: jInt(af, "stripes"), Hash: jStr(af, "hash")},
			Area: Area2{Type: jStr(area, "type"), Offset: jU64(area, "offset"), Size: jU64(area, "size"),
				Encryption: jStr(area, "encryption"), KeySize: int(jInt(area, "key_size"))},
			Raw: raw(v),
		}
		if m, _ := v.(map[string]any); m != nil {
			if v, ok := m["priority"]; ok {
				p := int(jsoncInt(v))
				ks.Priority = &p
			}
		}
		h.Keyslots[atoi(k)] = ks
	}
	h.Tokens = map[int]*Token2{}
	for k, v := range jObj(r, "tokens") {
		h.Tokens[atoi(k)] = &Token2{Type: jStr(v, "type"), Keyslots: jIDs(v, "keyslots"), Raw: raw(v)}
	}
	h.Segments = map[int]*Segment2{}
	for k, v := range jObj(r, "segments") {
		s := &Segment2{Type: jStr(v, "type"), Offset: jU64(v, "offset"), IVTweak: jU64(v, "iv_tweak"),
			Encryption: jStr(v, "encryption"), SectorSize: int(jInt(v, "sector_size")), Flags: jStrings(v, "flags")}
		if jStr(v, "size") == "dynamic" {
			s.Dynamic = true
		} else {
			s.Size = jU64(v, "size")
		}
		if in := jObj(v, "integrity"); in != nil {
			s.Integrity = &SegmentIntegrity2{Type: jStr(in, "type"), JournalEncryption: jStr(in, "journal_encryption"), JournalIntegrity: jStr(in, "journal_integrity")}
		}
		h.Segments[atoi(k)] = s
	}
	h.Digests = map[int]*Digest2{}
	for k, v := range jObj(r, "digests") {
		h.Digests[atoi(k)] = &Digest2{Type: jStr(v, "type"), Keyslots: jIDs(v, "keyslots"), Segments: jIDs(v, "segments"),
			Hash: jStr(v, "hash"), Iterations: digestIterations(v),
			SaltText: jStr(v, "salt"), Salt: b64(jStr(v, "salt")), DigestText: jStr(v, "digest"), Digest: b64(jStr(v, "digest"))}
	}
	cfg := jObj(r, "config")
	h.Config = Config2{JSONSize: jU64(cfg, "json_size"), KeyslotsSize: jU64(cfg, "keyslots_size"),
		Flags: jStrings(cfg, "flags"), Requirements: jStrings(jObj(cfg, "requirements"), "mandatory")}
}

// strtoull is C's strtoull(s, &end, 10) with cryptsetup's check that all of s was used and
// errno stayed 0: leading white space and a sign are accepted, a minus negates modulo 2^64.
func strtoull(s string) (uint64, bool) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	if t == "" {
		return 0, s == "" // strtoull("") consumes nothing: *end == 0, value 0, accepted
	}
	for i := 0; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return 0, false
		}
	}
	u, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		u = -u
	}
	return u, true
}

// atoi is C's atoi on a numbered key (digits only, checked before): 0 on overflow is close
// enough, as no valid header has ids beyond a few digits.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
		if n > 1<<30 {
			return -1
		}
	}
	return n
}

// jsoncInt is json-c's json_object_get_int, which cryptsetup reads priorities and AF
// stripes with: null, objects and arrays are 0, booleans 0 or 1, integers and doubles
// saturate at the int32 bounds (doubles truncated toward zero), strings are parsed as
// strtoll does (leading space, sign, digits, anything after ignored; no digits = 0).
func jsoncInt(v any) int32 {
	sat := func(i int64) int32 {
		switch {
		case i > math.MaxInt32:
			return math.MaxInt32
		case i < math.MinInt32:
			return math.MinInt32
		}
		return int32(i)
	}
	switch x := v.(type) {
	case bool:
		if x {
			return 1
		}
		return 0
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			i, err := strconv.ParseInt(s, 10, 64)
			if err != nil { // out of int64 range: json-c keeps it saturated too
				if strings.HasPrefix(s, "-") {
					return math.MinInt32
				}
				return math.MaxInt32
			}
			return sat(i)
		}
		f, err := strconv.ParseFloat(s, 64)
		switch {
		case err != nil && !math.IsInf(f, 0):
			return 0
		case f <= math.MinInt32:
			return math.MinInt32
		case f >= math.MaxInt32:
			return math.MaxInt32
		}
		return int32(f)
	case string:
		i := 0
		for i < len(x) && (x[i] == ' ' || (x[i] >= '\t' && x[i] <= '\r')) {
			i++
		}
		j := i
		if j < len(x) && (x[j] == '+' || x[j] == '-') {
			j++
		}
		k := j
		for k < len(x) && x[k] >= '0' && x[k] <= '9' {
			k++
		}
		if k == j {
			return 0
		}
		n, err := strconv.ParseInt(x[i:k], 10, 64)
		if err != nil {
			if x[i] == '-' {
				return math.MinInt32
			}
			return math.MaxInt32
		}
		return sat(n)
	}
	return 0
}

// jsoncTree converts a jsonc tree into the generic tree the validation and the dump walk:
// objects map[string]any, arrays []any, numbers json.Number (json-c's text), strings their
// raw bytes, booleans, nil for null.
func jsoncTree(v *jsonc.Value) any {
	switch v.Kind {
	case jsonc.Object:
		m := make(map[string]any, len(v.Members))
		for _, mb := range v.Members {
			m[mb.Key] = jsoncTree(mb.Value)
		}
		return m
	case jsonc.Array:
		a := make([]any, len(v.Items))
		for i, it := range v.Items {
			a[i] = jsoncTree(it)
		}
		return a
	case jsonc.String:
		return v.Text
	case jsonc.Number:
		return json.Number(v.Text)
	case jsonc.Bool:
		return v.Bool
	}
	return nil
}
