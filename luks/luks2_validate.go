package luks

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The checks below follow LUKS2_hdr_validate of cryptsetup 2.6.1
// (lib/luks2/luks2_json_metadata.c) in its order: requirements, tokens, digests, segments,
// keyslots, config, keyslot areas, JSON size, then the keyslot types' own checks
// (luks2_keyslot_validate, reenc_keyslot_validate). Every failure wraps ErrCorruptHeader.

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCorruptHeader, fmt.Sprintf(format, a...))
}

// numbered is cryptsetup's numbered(): only decimal digits (the empty string passes).
func numbered(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isInt is json-c's json_type_int: a number literal without fraction or exponent.
func isInt(v any) bool {
	n, ok := v.(json.Number)
	return ok && !strings.ContainsAny(string(n), ".eE")
}

// validUint32 is validate_json_uint32.
func validUint32(v any) bool {
	if !isInt(v) {
		return false
	}
	i, err := strconv.ParseInt(string(v.(json.Number)), 10, 64)
	return err == nil && i >= 0 && i <= math.MaxUint32
}

// containsType is json_contains: key present with the given JSON type.
func containsObj(m map[string]any, key string) (map[string]any, bool) {
	o, ok := m[key].(map[string]any)
	return o, ok
}

func containsArr(m map[string]any, key string) ([]any, bool) {
	a, ok := m[key].([]any)
	return a, ok
}

// containsString is json_contains_string: a string of at least one byte.
func containsString(m map[string]any, key string) (string, bool) {
	s, ok := m[key].(string)
	return s, ok && s != ""
}

func validate2(root map[string]any, areaSize uint64, text []byte) error {
	for _, check := range []func(map[string]any) error{
		validateRequirements2, validateTokens2, validateDigests2, validateSegments2,
		validateKeyslots2, validateConfig2, validateAreas2,
	} {
		if err := check(root); err != nil {
			return err
		}
	}
	if err := validateJSONSize2(root, areaSize, text); err != nil {
		return err
	}
	return validateKeyslotTypes2(root)
}

func validateRequirements2(root map[string]any) error {
	cfg, ok := containsObj(root, "config")
	if !ok {
		return corrupt("JSON area is missing the config object")
	}
	online := 0
	if v, present := cfg["requirements"]; present {
		req, ok := v.(map[string]any)
		if !ok {
			return corrupt("config requirements is not an object")
		}
		if mv, present := req["mandatory"]; present {
			arr, ok := mv.([]any)
			if !ok {
				return corrupt("requirements mandatory is not an array")
			}
			for _, x := range arr {
				s, ok := x.(string)
				if !ok {
					return corrupt("requirements mandatory holds a non-string")
				}
				if reencryptCandidate(s) {
					online++
				}
			}
		}
	}
	if online > 1 {
		return corrupt("multiple online reencryption requirement flags")
	}
	return nil
}

func reencryptCandidate(flag string) bool {
	if flag == "online-reencrypt" {
		return true
	}
	rest, ok := strings.CutPrefix(flag, "online-reencrypt-v")
	return ok && rest != "" && numbered(rest)
}

// validateKeyslotIDs is validate_keyslots_array / validate_segments_array: strings naming
// existing objects.
func validateIDs(arr []any, in map[string]any, what string) error {
	for i, x := range arr {
		s, ok := x.(string)
		if !ok {
			return corrupt("illegal value type in %s array at index %d", what, i)
		}
		if _, ok := in[s].(map[string]any); !ok {
			return corrupt("%s %q referenced but missing", what, s)
		}
	}
	return nil
}

func validateTokens2(root map[string]any) error {
	toks, ok := containsObj(root, "tokens")
	if !ok {
		return corrupt("JSON area is missing the tokens object")
	}
	for k, v := range toks {
		if !numbered(k) {
			return corrupt("token %q is not in numbered form", k)
		}
		ks, ok := root["keyslots"]
		if !ok {
			return corrupt("JSON area is missing the keyslots object")
		}
		t, _ := v.(map[string]any)
		if _, ok := containsString(t, "type"); !ok {
			return corrupt("token %s has no type", k)
		}
		arr, ok := containsArr(t, "keyslots")
		if !ok {
			return corrupt("token %s has no keyslots array", k)
		}
		ksm, _ := ks.(map[string]any)
		if err := validateIDs(arr, ksm, "keyslot"); err != nil {
			return fmt.Errorf("token %s: %w", k, err)
		}
	}
	return nil
}

func validateDigests2(root map[string]any) error {
	ds, ok := containsObj(root, "digests")
	if !ok {
		return corrupt("JSON area is missing the digests object")
	}
	ks, ok := containsObj(root, "keyslots")
	if !ok {
		return corrupt("JSON area is missing the keyslots object")
	}
	segs, ok := containsObj(root, "segments")
	if !ok {
		return corrupt("JSON area is missing the segments object")
	}
	for k, v := range ds {
		if !numbered(k) {
			return corrupt("digest %q is not in numbered form", k)
		}
		d, _ := v.(map[string]any)
		if _, ok := containsString(d, "type"); !ok {
			return corrupt("digest %s has no type", k)
		}
		ka, ok1 := containsArr(d, "keyslots")
		sa, ok2 := containsArr(d, "segments")
		if !ok1 || !ok2 {
			return corrupt("digest %s lacks keyslots or segments array", k)
		}
		if err := validateIDs(ka, ks, "keyslot"); err != nil {
			return fmt.Errorf("digest %s: %w", k, err)
		}
		if err := validateIDs(sa, segs, "segment"); err != nil {
			return fmt.Errorf("digest %s: %w", k, err)
		}
	}
	return nil
}

func segmentFlags(seg any) []any {
	m, _ := seg.(map[string]any)
	a, _ := m["flags"].([]any)
	return a
}

func segmentHasFlag(seg any, flag string, prefix bool) bool {
	for _, x := range segmentFlags(seg) {
		s, _ := x.(string)
		if s == flag || (prefix && strings.HasPrefix(s, flag)) {
			return true
		}
	}
	return false
}

func isBackupSegment(seg any) bool { return segmentHasFlag(seg, "backup-", true) }

func validateSegments2(root map[string]any) error {
	segs, ok := containsObj(root, "segments")
	if !ok {
		return corrupt("JSON area is missing the segments object")
	}
	if len(segs) < 1 {
		return corrupt("empty segments section")
	}
	digests, ok := root["digests"].(map[string]any)
	if !ok {
		return corrupt("JSON area is missing the digests object")
	}
	firstBackup := -1
	for k, v := range segs {
		if !numbered(k) {
			return corrupt("segment %q is not in numbered form", k)
		}
		s, _ := v.(map[string]any)
		typ, ok1 := containsString(s, "type")
		offS, ok2 := containsString(s, "offset")
		sizeS, ok3 := containsString(s, "size")
		if !ok1 || !ok2 || !ok3 {
			return corrupt("segment %s lacks type, offset or size", k)
		}
		if !numbered(offS) {
			return corrupt("segment %s offset %q is not a number", k, offS)
		}
		off, ok := strtoull(offS)
		if !ok {
			return corrupt("segment %s: illegal offset %q", k, offS)
		}
		var size uint64
		if sizeS != "dynamic" {
			if !numbered(sizeS) {
				return corrupt("segment %s size %q is not a number", k, sizeS)
			}
			if size, ok = strtoull(sizeS); !ok || size == 0 {
				return corrupt("segment %s: illegal size %q", k, sizeS)
			}
		}
		if off%512 != 0 || size%512 != 0 {
			return corrupt("segment %s: offset and size must be multiples of 512", k)
		}
		if fv, present := s["flags"]; present {
			arr, ok := fv.([]any)
			if !ok {
				return corrupt("segment %s flags is not an array", k)
			}
			for _, x := range arr {
				if _, ok := x.(string); !ok {
					return corrupt("segment %s flags holds a non-string", k)
				}
			}
		}
		i := atoi(k)
		if isBackupSegment(s) {
			if firstBackup < 0 || i < firstBackup {
				firstBackup = i
			}
		} else if firstBackup >= 0 && i >= firstBackup {
			return corrupt("regular segment %d is behind backup segment %d", i, firstBackup)
		}
		if typ == "crypt" {
			if err := validateCryptSegment2(s, k, digests, size); err != nil {
				return err
			}
		}
	}
	count := len(segs)
	if firstBackup == 0 {
		return corrupt("no regular segment")
	}
	if firstBackup >= count {
		return corrupt("gap between the last regular segment and backup segment %d", firstBackup)
	}
	if firstBackup < 0 {
		firstBackup = count
	}
	type interval struct{ off, len uint64 }
	ix := make([]interval, firstBackup)
	for i := range ix {
		s, ok := segs[strconv.Itoa(i)]
		if !ok {
			return corrupt("gap at key %d in segments object", i)
		}
		ix[i].off = jU64(s, "offset")
		ix[i].len = jU64(s, "size")
		if ix[i].len == 0 {
			ix[i].len = math.MaxUint64
		}
	}
	for i := range ix {
		if ix[i].len == math.MaxUint64 && i != len(ix)-1 {
			return corrupt("only the last regular segment may have dynamic size")
		}
		for j := range ix {
			if i == j {
				continue
			}
			if ix[j].len != math.MaxUint64 && ix[j].off > math.MaxUint64-ix[j].len {
				return corrupt("segment offset+length overflow")
			}
			if ix[i].off >= ix[j].off && (ix[j].len == math.MaxUint64 || ix[i].off < ix[j].off+ix[j].len) {
				return corrupt("segments %d and %d overlap", i, j)
			}
		}
	}
	for i := firstBackup; i < count; i++ {
		if _, ok := segs[strconv.Itoa(i)]; !ok {
			return corrupt("gap at key %d in segments object", i)
		}
	}
	return validateReencryptSegments2(root, segs, firstBackup, count)
}

// validateReencryptSegments2 is cryptsetup's validate_reencrypt_segments: during an online
// reencryption both backup segments exist, a segment flagged in-reencryption matches
// backup-final, and every other regular segment matches backup-final or backup-previous
// (json_segment_cmp: same type and, for crypt, the same sector size and cipher).
func validateReencryptSegments2(root map[string]any, segs map[string]any, firstBackup, count int) error {
	online := false
	for _, r := range jStrings(jObj(root["config"], "requirements"), "mandatory") {
		if requirementOnline(r) {
			online = true
		}
	}
	if !online {
		return nil
	}
	var final, previous any
	for i := firstBackup; i < count; i++ {
		s := segs[strconv.Itoa(i)]
		switch {
		case segmentHasFlag(s, "backup-final", false):
			final = s
		case segmentHasFlag(s, "backup-previous", false):
			previous = s
		}
	}
	if final == nil || previous == nil {
		return corrupt("backup segment is missing")
	}
	for i := 0; i < firstBackup; i++ {
		s, ok := segs[strconv.Itoa(i)]
		if !ok {
			return corrupt("segment %d is missing", i)
		}
		if segmentHasFlag(s, "in-reencryption", false) {
			if !segmentCmp(s, final) {
				return corrupt("segment %d in reencryption does not match the backup-final segment", i)
			}
			continue
		}
		if !segmentCmp(s, final) && !segmentCmp(s, previous) {
			return corrupt("segment %d matches neither the backup-final nor the backup-previous segment", i)
		}
	}
	return nil
}

// segmentCmp is json_segment_cmp.
func segmentCmp(a, b any) bool {
	ma, _ := a.(map[string]any)
	mb, _ := b.(map[string]any)
	ta, ok1 := ma["type"].(string)
	tb, ok2 := mb["type"].(string)
	if !ok1 || !ok2 || ta != tb {
		return false
	}
	if ta != "crypt" {
		return true
	}
	ea, _ := ma["encryption"].(string)
	eb, _ := mb["encryption"].(string)
	return jsoncInt(ma["sector_size"]) == jsoncInt(mb["sector_size"]) && ea == eb
}

func requirementOnline(r string) bool {
	return r == "online-reencrypt-v2" || r == "online-reencrypt-v3" || r == "online-reencrypt"
}

func validateCryptSegment2(s map[string]any, key string, digests map[string]any, size uint64) error {
	iv, ok1 := containsString(s, "iv_tweak")
	_, ok2 := containsString(s, "encryption")
	ss, ok3 := s["sector_size"]
	if !ok1 || !ok2 || !ok3 || !isInt(ss) {
		return corrupt("segment %s lacks iv_tweak, encryption or sector_size", key)
	}
	if iv, present := s["integrity"]; present {
		in, ok := iv.(map[string]any)
		if !ok {
			return corrupt("segment %s integrity is not an object", key)
		}
		for _, f := range []string{"type", "journal_encryption", "journal_integrity"} {
			if _, ok := containsString(in, f); !ok {
				return corrupt("segment %s integrity lacks %s", key, f)
			}
		}
	}
	if !validUint32(ss) {
		return corrupt("segment %s: illegal sector_size %v", key, ss)
	}
	sector := uint64(jInt(s, "sector_size"))
	if sector == 0 || sector%512 != 0 {
		return corrupt("segment %s: illegal sector size %d", key, sector)
	}
	if _, ok := strtoull(iv); !numbered(iv) || !ok {
		return corrupt("segment %s: illegal iv_tweak %q", key, iv)
	}
	if size%sector != 0 {
		return corrupt("segment %s: size not a multiple of sector size %d", key, sector)
	}
	for _, d := range digests {
		dm, _ := d.(map[string]any)
		arr, _ := dm["segments"].([]any)
		for _, x := range arr {
			if x == key {
				return nil
			}
		}
	}
	return corrupt("crypt segment %s not assigned to a key digest", key)
}

func validateKeyslots2(root map[string]any) error {
	ks, ok := containsObj(root, "keyslots")
	if !ok {
		return corrupt("JSON area is missing the keyslots object")
	}
	for k, v := range ks {
		if !numbered(k) {
			return corrupt("keyslot %q is not in numbered form", k)
		}
		m, _ := v.(map[string]any)
		if _, ok := containsString(m, "type"); !ok {
			return corrupt("keyslot %s has no type", k)
		}
		if !isInt(m["key_size"]) || !validUint32(m["key_size"]) {
			return corrupt("keyslot %s: illegal key_size", k)
		}
	}
	return nil
}

func validateConfig2(root map[string]any) error {
	cfg, ok := containsObj(root, "config")
	if !ok {
		return corrupt("JSON area is missing the config object")
	}
	js, ok := containsString(cfg, "json_size")
	if !ok {
		return corrupt("config lacks json_size")
	}
	jsonSize, ok := strtoull(js)
	if !ok {
		return corrupt("illegal config json_size %q", js)
	}
	kss, ok := containsString(cfg, "keyslots_size")
	if !ok {
		return corrupt("config lacks keyslots_size")
	}
	keyslotsSize, ok := strtoull(kss)
	if !ok {
		return corrupt("illegal config keyslots_size %q", kss)
	}
	meta := jsonSize + BinaryHeaderSize
	if !validMetadataSize(meta) {
		return corrupt("unsupported LUKS2 header size %d", meta)
	}
	if keyslotsSize%4096 != 0 || keyslotsSize > MaxKeyslotsSize {
		return corrupt("unsupported LUKS2 keyslots size %d", keyslotsSize)
	}
	if off := minimalSegmentOffset(root); off != 0 && (off < keyslotsSize || off-keyslotsSize < 2*meta) {
		return corrupt("keyslots_size %d too large for data offset %d", keyslotsSize, off)
	}
	if fv, present := cfg["flags"]; present {
		arr, ok := fv.([]any)
		if !ok {
			return corrupt("config flags is not an array")
		}
		for _, x := range arr {
			if _, ok := x.(string); !ok {
				return corrupt("config flags holds a non-string")
			}
		}
	}
	return nil
}

func validMetadataSize(n uint64) bool {
	for _, o := range secondaryOffsets {
		if n == o {
			return true
		}
	}
	return false
}

// minimalSegmentOffset is json_segments_get_minimal_offset: 0 as soon as one regular
// segment starts at 0 (detached header).
func minimalSegmentOffset(root map[string]any) uint64 {
	segs := jObj(root, "segments")
	if segs == nil {
		return 0
	}
	min := uint64(math.MaxUint64)
	for _, s := range segs {
		if isBackupSegment(s) {
			continue
		}
		o := jU64(s, "offset")
		if o == 0 {
			return 0
		}
		if o < min {
			min = o
		}
	}
	return min
}

func validateAreas2(root map[string]any) error {
	ks, _ := root["keyslots"].(map[string]any)
	cfg := jObj(root, "config")
	meta := jU64(cfg, "json_size") + BinaryHeaderSize
	end := 2*meta + jU64(cfg, "keyslots_size")
	type interval struct{ off, len uint64 }
	var ix []interval
	for k, v := range ks {
		vm, _ := v.(map[string]any)
		area, ok := containsObj(vm, "area")
		if !ok {
			return corrupt("keyslot %s has no area object", k)
		}
		_, okT := containsString(area, "type")
		offS, okO := containsString(area, "offset")
		sizeS, okS := containsString(area, "size")
		if !okT || !okO || !okS || !numbered(offS) || !numbered(sizeS) {
			return corrupt("keyslot %s area lacks type, offset or size", k)
		}
		o, ok1 := strtoull(offS)
		l, ok2 := strtoull(sizeS)
		if !ok1 || !ok2 {
			return corrupt("keyslot %s: illegal area values", k)
		}
		ix = append(ix, interval{o, l})
	}
	for i, a := range ix {
		if a.off < 2*meta {
			return corrupt("keyslot area offset %d inside the metadata", a.off)
		}
		if a.len == 0 {
			return corrupt("keyslot area length must be greater than zero")
		}
		if a.off > math.MaxUint64-a.len {
			return corrupt("keyslot area offset+length overflow")
		}
		if a.off+a.len > end {
			return corrupt("keyslot area [%d, %d] overflows the keyslots area (ends at %d)", a.off, a.off+a.len, end)
		}
		for j, b := range ix {
			if i == j {
				continue
			}
			if b.off > math.MaxUint64-b.len {
				return corrupt("keyslot area offset+length overflow")
			}
			if a.off >= b.off && a.off < b.off+b.len {
				return corrupt("overlapping keyslot areas [%d,%d] and [%d,%d]", a.off, a.off+a.len, b.off, b.off+b.len)
			}
		}
	}
	return nil
}

// validateJSONSize2 is hdr_validate_json_size: config.json_size equals the area, and the
// metadata as json-c writes it back (ser) fits it.
func validateJSONSize2(root map[string]any, areaSize uint64, ser []byte) error {
	if js := jU64(jObj(root, "config"), "json_size"); js != areaSize {
		return corrupt("config json_size %d does not match the JSON area of %d bytes", js, areaSize)
	}
	if uint64(len(ser)) > areaSize {
		return corrupt("JSON does not fit in the designated area")
	}
	return nil
}

func validateKeyslotTypes2(root map[string]any) error {
	ks, _ := root["keyslots"].(map[string]any)
	reqs := jStrings(jObj(root["config"], "requirements"), "mandatory")
	online, candidate := false, false
	for _, r := range reqs {
		online = online || requirementOnline(r)
		candidate = candidate || reencryptCandidate(r)
	}
	reenc := 0
	for k, v := range ks {
		m, _ := v.(map[string]any)
		switch m["type"] {
		case "luks2":
			if err := validateLUKS2Keyslot(m); err != nil {
				return fmt.Errorf("keyslot %s: %w", k, err)
			}
			if n := keyslotDigestCount(root, atoi(k)); n != 1 {
				return corrupt("keyslot %s is assigned to %d digests, not 1", k, n)
			}
		case "reencrypt":
			if err := validateReencKeyslot(m); err != nil {
				return fmt.Errorf("keyslot %s: %w", k, err)
			}
			reenc++
		}
	}
	if online && reenc == 0 {
		return corrupt("missing reencryption keyslot")
	}
	if reenc > 0 && !candidate {
		return corrupt("missing reencryption requirement flag")
	}
	if reenc > 1 {
		return corrupt("too many reencryption keyslots")
	}
	return nil
}

func keyslotDigestCount(root map[string]any, slot int) int {
	id := strconv.Itoa(slot)
	n := 0
	for _, d := range jObj(root, "digests") {
		dm, _ := d.(map[string]any)
		arr, _ := dm["keyslots"].([]any)
		for _, x := range arr {
			if x == id {
				n++
				break
			}
		}
	}
	return n
}

func validateLUKS2Keyslot(m map[string]any) error {
	kdf, ok1 := containsObj(m, "kdf")
	af, ok2 := containsObj(m, "af")
	area, ok3 := containsObj(m, "area")
	if !ok1 || !ok2 || !ok3 {
		return corrupt("luks2 keyslot lacks kdf, af or area")
	}
	typ, ok := containsString(kdf, "type")
	if !ok {
		return corrupt("kdf has no type")
	}
	_, hasSalt := containsString(kdf, "salt")
	switch typ {
	case "pbkdf2":
		_, hasHash := containsString(kdf, "hash")
		if len(kdf) != 4 || !hasHash || !isInt(kdf["iterations"]) || !hasSalt {
			return corrupt("pbkdf2 kdf needs exactly type, salt, hash and iterations")
		}
	case "argon2i", "argon2id":
		if len(kdf) != 5 || !isInt(kdf["time"]) || !isInt(kdf["memory"]) || !isInt(kdf["cpus"]) || !hasSalt {
			return corrupt("%s kdf needs exactly type, salt, time, memory and cpus", typ)
		}
	}
	at, ok := containsString(af, "type")
	if !ok || at != "luks1" {
		return corrupt("af type must be luks1")
	}
	if _, ok := containsString(af, "hash"); !ok || !isInt(af["stripes"]) {
		return corrupt("luks1 af lacks hash or stripes")
	}
	rt, ok := containsString(area, "type")
	if !ok || rt != "raw" {
		return corrupt("area type must be raw")
	}
	_, e := containsString(area, "encryption")
	_, o := containsString(area, "offset")
	_, s := containsString(area, "size")
	if !e || !isInt(area["key_size"]) || !o || !s {
		return corrupt("raw area lacks encryption, key_size, offset or size")
	}
	return nil
}

func validateReencKeyslot(m map[string]any) error {
	area, _ := m["area"].(map[string]any)
	typ, ok := area["type"].(string)
	if area == nil || !ok {
		return corrupt("reencrypt keyslot has no area type")
	}
	mode, okM := containsString(m, "mode")
	dir, okD := containsString(m, "direction")
	if !okM || !okD || !isInt(m["key_size"]) {
		return corrupt("reencrypt keyslot lacks key_size, mode or direction")
	}
	if !validUint32(m["key_size"]) || jInt(m, "key_size") != 1 {
		return corrupt("illegal reencrypt key size")
	}
	if mode != "reencrypt" && mode != "encrypt" && mode != "decrypt" {
		return corrupt("illegal reencrypt mode %q", mode)
	}
	if dir != "forward" && dir != "backward" {
		return corrupt("illegal reencrypt direction %q", dir)
	}
	switch typ {
	case "checksum", "datashift-checksum":
		_, okH := containsString(area, "hash")
		ss := area["sector_size"]
		if !okH || !isInt(ss) || !validUint32(ss) {
			return corrupt("checksum area lacks hash or sector_size")
		}
		n := jInt(area, "sector_size")
		if n < 512 || n&(n-1) != 0 {
			return corrupt("invalid checksum sector_size %d", n)
		}
	case "datashift", "datashift-journal":
		s, ok := containsString(area, "shift_size")
		if !ok {
			return corrupt("datashift area lacks shift_size")
		}
		n, _ := strtoull(s)
		if n == 0 || n%512 != 0 {
			return corrupt("illegal shift_size %q", s)
		}
	}
	return nil
}
