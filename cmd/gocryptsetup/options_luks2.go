package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// luks2Opts holds the LUKS2 format options (cryptsetup 2.6's OPT_PBKDF, OPT_PBKDF_MEMORY,
// OPT_PBKDF_PARALLEL, OPT_LABEL, OPT_SUBSYSTEM, OPT_LUKS2_*_SIZE).
type luks2Opts struct {
	pbkdf         string
	pbkdfMemory   int64 // KiB
	pbkdfParallel int64
	label         string
	subsystem     string
	metadataSize  string // a size with cryptsetup's units, parsed by parseCryptSize
	keyslotsSize  string
	newKeySlot    int64  // --new-key-slot (luksAddKey)
	keyslotCipher string // --keyslot-cipher
	keyslotKeyLen int64  // --keyslot-key-size, bits
	newKeyfile    string // --new-keyfile (luksAddKey, luksChangeKey)
	priority      string // --priority (config)
}

// luks2OptionDefs are the LUKS2 format options, merged into optionTable by name.
func luks2OptionDefs() []optDef {
	str := func(p func(*options) *string) func(*options, string, int64) {
		return func(o *options, s string, _ int64) { *p(o) = s }
	}
	num := func(p func(*options) *int64) func(*options, string, int64) {
		return func(o *options, _ string, n int64) { *p(o) = n }
	}
	format := []string{"luksFormat"}
	labels := []string{"luksFormat", "config"}
	// cryptsetup takes the PBKDF options for every verb that makes a key slot.
	slotMakers := []string{"luksFormat", "luksAddKey", "luksChangeKey"}
	return []optDef{
		{long: "keyslot-cipher", kind: optString, arg: "STRING", only: slotMakers, apply: str(func(o *options) *string { return &o.l2.keyslotCipher })},
		{long: "keyslot-key-size", kind: optInt, num: numUint32, arg: "BITS", only: slotMakers, apply: num(func(o *options) *int64 { return &o.l2.keyslotKeyLen })},
		{long: "label", kind: optString, arg: "STRING", only: labels, apply: str(func(o *options) *string { return &o.l2.label })},
		{long: "luks2-keyslots-size", kind: optString, arg: "bytes", only: format, apply: str(func(o *options) *string { return &o.l2.keyslotsSize })},
		{long: "luks2-metadata-size", kind: optString, arg: "bytes", only: format, apply: str(func(o *options) *string { return &o.l2.metadataSize })},
		{long: "pbkdf", kind: optString, arg: "STRING", only: slotMakers, apply: str(func(o *options) *string { return &o.l2.pbkdf })},
		{long: "pbkdf-memory", kind: optInt, num: numUint32, arg: "kilobytes", only: slotMakers, apply: num(func(o *options) *int64 { return &o.l2.pbkdfMemory })},
		{long: "pbkdf-parallel", kind: optInt, num: numUint32, arg: "threads", only: slotMakers, apply: num(func(o *options) *int64 { return &o.l2.pbkdfParallel })},
		{long: "new-key-slot", kind: optInt, num: numInt32, arg: "INT", only: []string{"luksAddKey"}, apply: num(func(o *options) *int64 { return &o.l2.newKeySlot })},
		{long: "new-keyfile", kind: optString, arg: "STRING", only: []string{"luksAddKey", "luksChangeKey"}, apply: str(func(o *options) *string { return &o.l2.newKeyfile })},
		{long: "priority", kind: optString, arg: "STRING", only: []string{"config"}, apply: str(func(o *options) *string { return &o.l2.priority })},
		{long: "subsystem", kind: optString, arg: "STRING", only: labels, apply: str(func(o *options) *string { return &o.l2.subsystem })},
	}
}

// mergeOptionDefs inserts extra into base before the first entry whose name sorts after
// it, keeping the usage text in cryptsetup's (alphabetical) order; the first three
// entries (help, usage, version) stay first.
func mergeOptionDefs(base, extra []optDef) []optDef {
	out := append([]optDef(nil), base...)
	for _, e := range extra {
		i := min(3, len(out))
		for i < len(out) && out[i].alias == "" && out[i].long < e.long {
			i++
		}
		out = append(out[:i], append([]optDef{e}, out[i:]...)...)
	}
	return out
}

// parseCryptSize is cryptsetup's tools_string_to_size: a decimal number with an optional
// unit: S (512-byte sectors), K/M/G/T (powers of 1024, also as KiB...), KB/MB/GB/TB
// (powers of 1000).
func parseCryptSize(s string) (uint64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		return 0, err
	}
	suf := s[i:]
	if suf == "" {
		return n, nil
	}
	if len(suf) > 3 || (len(suf) == 3 && suf[1:] != "iB") || (len(suf) == 2 && suf[1] != 'B') {
		return 0, strconv.ErrSyntax
	}
	base := uint64(1024)
	if len(suf) == 2 {
		base = 1000
	}
	var mult uint64
	switch strings.ToUpper(suf[:1]) {
	case "S":
		mult = 512
	case "K":
		mult = base
	case "M":
		mult = base * base
	case "G":
		mult = base * base * base
	case "T":
		mult = base * base * base * base
	default:
		return 0, strconv.ErrSyntax
	}
	if n != 0 && n > math.MaxUint64/mult {
		return 0, strconv.ErrRange
	}
	return n * mult, nil
}

// formatsLUKS2 reports whether luksFormat makes LUKS2: cryptsetup 2.6's default type,
// also for --type luks.
func formatsLUKS2(o *options) bool {
	return o.typ == "" || o.typ == "luks" || o.typ == "luks2"
}

// luks2SizeOption parses --luks2-metadata-size or --luks2-keyslots-size; a bad unit is
// cryptsetup's usage error.
func luks2SizeOption(o *options, name, raw string) (uint64, error) {
	if !o.set[name] {
		return 0, nil
	}
	n, err := parseCryptSize(raw)
	if err != nil {
		return 0, &usageError{msg: fmt.Sprintf("Invalid size specification in parameter --%s.", name)}
	}
	return n, nil
}
