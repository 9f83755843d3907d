package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// options holds every command-line option. Each field keeps cryptsetup's meaning; set records
// which long names were given (so "given as 0" and "absent" differ, as in popt).
type options struct {
	typ             string
	cipher          string
	keySize         int // bits
	hash            string
	iterTime        int // ms
	forceIterations int64
	keyFile         string
	keyfileOffset   int64
	keyfileSize     int64
	newKeyfileOff   int64
	newKeyfileSize  int64
	keySlot         int
	uuid            string
	alignPayload    int64
	header          string
	backupFile      string
	volumeKeyFile   string
	dumpVolumeKey   bool
	dumpJSON        bool // --dump-json-metadata (LUKS2 luksDump)
	noExtTokens     bool // --disable-external-tokens: no token plugin lines in luksDump
	testPassphrase  bool
	batch           bool
	verbose         bool
	debug           bool
	verifyPass      bool
	tries           int
	offset          int64 // -o/--offset: 512-byte sectors, cryptsetup's; refused by read/write
	size            int64 // -b/--size: 512-byte sectors, cryptsetup's; refused by read
	offsetBytes     int64 // --offset-bytes (read/write extensions)
	sizeBytes       int64 // --size-bytes (read extension; 0: to the end)
	benchTime       time.Duration
	l2              luks2Opts // LUKS2 format options (options_luks2.go)
	tok             tokenOpts // token action options (cmd_token.go)

	// Plain-mode options (open --type plain).
	skip           int64 // -p/--skip: IV offset, 512-byte sectors
	shared         bool
	sectorSize     int64 // --sector-size, bytes
	ivLargeSectors bool
	deviceSize     int64 // --device-size, bytes

	// Mapping options, parsed here so the mapping verbs (open NAME, close, status) only read them.
	readonly            bool
	allowDiscards       bool
	perfSameCPUCrypt    bool
	perfSubmitFromCrypt bool
	perfNoReadWQ        bool
	perfNoWriteWQ       bool
	deferred            bool // close: remove at the last close when in use
	cancelDeferred      bool // close: withdraw a deferred removal instead

	help    bool
	usage   bool
	version bool

	set map[string]bool
}

type optKind int

const (
	optBool optKind = iota
	optString
	optInt
)

// optDef describes one option the way popt's table does: a long name, an optional short letter,
// and the placeholder shown in the usage text.
type optDef struct {
	long  string
	short byte
	kind  optKind
	arg   string // placeholder for --usage ("STRING", "BITS", ...)
	alias string // long name this one stands for (--dump-master-key → dump-volume-key)
	num   numType
	// only lists the actions that accept the option (nil: all), cryptsetup 2.6's
	// OPT_*_ACTIONS; read and write are this program's extensions.
	only  []string
	apply func(o *options, s string, n int64)
}

// numType is the C type cryptsetup 2.6 parses a numeric option into (its CRYPT_ARG_*); the
// range check is part of the parse, so "-l 4294967296" is popt's "invalid numeric value".
type numType int

const (
	numInt64  numType = iota // the read/write extensions' own options
	numUint32                // CRYPT_ARG_UINT32
	numInt32                 // CRYPT_ARG_INT32
	numUint64                // CRYPT_ARG_UINT64 (above math.MaxInt64 saturates; only offsets use it)
	numSize                  // a size with an optional unit, tools_string_to_size (parseSize)
)

// optionTable lists the options in the order the usage text shows them.
func optionTable() []optDef {
	str := func(p func(*options) *string) func(*options, string, int64) {
		return func(o *options, s string, _ int64) { *p(o) = s }
	}
	flag := func(p func(*options) *bool) func(*options, string, int64) {
		return func(o *options, _ string, _ int64) { *p(o) = true }
	}
	num := func(p func(*options) *int64) func(*options, string, int64) {
		return func(o *options, _ string, n int64) { *p(o) = n }
	}
	return mergeOptionDefs([]optDef{
		{long: "help", short: '?', kind: optBool, apply: flag(func(o *options) *bool { return &o.help })},
		{long: "usage", kind: optBool, apply: flag(func(o *options) *bool { return &o.usage })},
		{long: "version", short: 'V', kind: optBool, apply: flag(func(o *options) *bool { return &o.version })},
		{long: "align-payload", kind: optInt, num: numUint32, arg: "SECTORS", only: []string{"luksFormat"}, apply: num(func(o *options) *int64 { return &o.alignPayload })},
		{long: "allow-discards", kind: optBool, only: []string{"open"}, apply: flag(func(o *options) *bool { return &o.allowDiscards })},
		{long: "batch-mode", short: 'q', kind: optBool, apply: flag(func(o *options) *bool { return &o.batch })},
		{long: "benchmark-time", kind: optInt, arg: "msecs", apply: func(o *options, _ string, n int64) { o.benchTime = time.Duration(n) * time.Millisecond }},
		{long: "cancel-deferred", kind: optBool, only: []string{"close"}, apply: flag(func(o *options) *bool { return &o.cancelDeferred })},
		{long: "cipher", short: 'c', kind: optString, arg: "STRING", apply: str(func(o *options) *string { return &o.cipher })},
		{long: "device-size", kind: optInt, num: numSize, arg: "bytes", only: []string{"open"}, apply: num(func(o *options) *int64 { return &o.deviceSize })},
		{long: "debug", kind: optBool, apply: flag(func(o *options) *bool { return &o.debug })},
		{long: "deferred", kind: optBool, only: []string{"close"}, apply: flag(func(o *options) *bool { return &o.deferred })},
		{long: "disable-external-tokens", kind: optBool, apply: flag(func(o *options) *bool { return &o.noExtTokens })},
		{long: "dump-json-metadata", kind: optBool, apply: flag(func(o *options) *bool { return &o.dumpJSON })},
		{long: "dump-volume-key", kind: optBool, apply: flag(func(o *options) *bool { return &o.dumpVolumeKey })},
		{long: "hash", short: 'h', kind: optString, arg: "STRING", apply: str(func(o *options) *string { return &o.hash })},
		{long: "header", kind: optString, arg: "STRING", apply: str(func(o *options) *string { return &o.header })},
		{long: "header-backup-file", kind: optString, arg: "STRING", apply: str(func(o *options) *string { return &o.backupFile })},
		{long: "iv-large-sectors", kind: optBool, only: []string{"open"}, apply: flag(func(o *options) *bool { return &o.ivLargeSectors })},
		{long: "iter-time", short: 'i', kind: optInt, num: numUint32, arg: "msecs", only: []string{"luksFormat", "luksAddKey", "luksChangeKey", "benchmark"}, apply: func(o *options, _ string, n int64) { o.iterTime = int(n) }},
		{long: "key-file", short: 'd', kind: optString, arg: "STRING", apply: str(func(o *options) *string { return &o.keyFile })},
		{long: "key-size", short: 's', kind: optInt, num: numUint32, arg: "BITS", only: []string{"luksFormat", "open", "luksAddKey", "benchmark"}, apply: func(o *options, _ string, n int64) { o.keySize = int(n) }},
		{long: "key-slot", short: 'S', kind: optInt, num: numInt32, arg: "INT", only: []string{"luksFormat", "luksDump", "open", "luksAddKey", "luksChangeKey", "read", "write", "token", "config"}, apply: func(o *options, _ string, n int64) { o.keySlot = int(n) }},
		{long: "keyfile-offset", kind: optInt, num: numUint64, arg: "bytes", apply: num(func(o *options) *int64 { return &o.keyfileOffset })},
		{long: "keyfile-size", short: 'l', kind: optInt, num: numUint32, arg: "bytes", apply: num(func(o *options) *int64 { return &o.keyfileSize })},
		{long: "volume-key-file", kind: optString, arg: "STRING", apply: str(func(o *options) *string { return &o.volumeKeyFile })},
		{long: "new-keyfile-offset", kind: optInt, num: numUint64, arg: "bytes", apply: num(func(o *options) *int64 { return &o.newKeyfileOff })},
		{long: "new-keyfile-size", kind: optInt, num: numUint32, arg: "bytes", apply: num(func(o *options) *int64 { return &o.newKeyfileSize })},
		{long: "offset", short: 'o', kind: optInt, arg: "SECTORS", only: []string{"luksFormat", "open", "read", "write"}, apply: num(func(o *options) *int64 { return &o.offset })},
		{long: "offset-bytes", kind: optInt, arg: "BYTES", only: []string{"read", "write"}, apply: num(func(o *options) *int64 { return &o.offsetBytes })},
		{long: "pbkdf-force-iterations", kind: optInt, num: numUint32, arg: "LONG", only: []string{"luksFormat", "luksAddKey", "luksChangeKey"}, apply: num(func(o *options) *int64 { return &o.forceIterations })},
		{long: "perf-no_read_workqueue", kind: optBool, apply: flag(func(o *options) *bool { return &o.perfNoReadWQ })},
		{long: "perf-no_write_workqueue", kind: optBool, apply: flag(func(o *options) *bool { return &o.perfNoWriteWQ })},
		{long: "perf-same_cpu_crypt", kind: optBool, apply: flag(func(o *options) *bool { return &o.perfSameCPUCrypt })},
		{long: "perf-submit_from_crypt_cpus", kind: optBool, apply: flag(func(o *options) *bool { return &o.perfSubmitFromCrypt })},
		{long: "readonly", short: 'r', kind: optBool, apply: flag(func(o *options) *bool { return &o.readonly })},
		{long: "sector-size", kind: optInt, num: numUint32, arg: "INT", only: []string{"open", "luksFormat"}, apply: num(func(o *options) *int64 { return &o.sectorSize })},
		{long: "shared", kind: optBool, only: []string{"open"}, apply: flag(func(o *options) *bool { return &o.shared })},
		{long: "size", short: 'b', kind: optInt, arg: "SECTORS", only: []string{"open", "read"}, apply: num(func(o *options) *int64 { return &o.size })},
		{long: "size-bytes", kind: optInt, arg: "BYTES", only: []string{"read"}, apply: num(func(o *options) *int64 { return &o.sizeBytes })},
		{long: "skip", short: 'p', kind: optInt, num: numUint64, arg: "SECTORS", only: []string{"open"}, apply: num(func(o *options) *int64 { return &o.skip })},
		{long: "test-passphrase", kind: optBool, only: []string{"open"}, apply: flag(func(o *options) *bool { return &o.testPassphrase })},
		{long: "tries", short: 'T', kind: optInt, num: numUint32, arg: "INT", apply: func(o *options, _ string, n int64) { o.tries = int(n) }},
		{long: "type", short: 'M', kind: optString, arg: "STRING", apply: str(func(o *options) *string { return &o.typ })},
		{long: "uuid", kind: optString, arg: "STRING", only: []string{"luksFormat", "luksUUID"}, apply: str(func(o *options) *string { return &o.uuid })},
		{long: "verbose", short: 'v', kind: optBool, apply: flag(func(o *options) *bool { return &o.verbose })},
		{long: "verify-passphrase", short: 'y', kind: optBool, apply: flag(func(o *options) *bool { return &o.verifyPass })},
		{long: "dump-master-key", kind: optBool, alias: "dump-volume-key", apply: flag(func(o *options) *bool { return &o.dumpVolumeKey })},
		{long: "master-key-file", kind: optString, arg: "STRING", alias: "volume-key-file", apply: str(func(o *options) *string { return &o.volumeKeyFile })},
	}, append(luks2OptionDefs(), tokenOptionDefs()...))
}

// usageError is a command-line mistake: cryptsetup prints the usage summary, then
// "PROG: MESSAGE" (or "--opt: MESSAGE" for popt's own errors), and exits 1.
type usageError struct {
	subject string // "" → the program name
	msg     string
}

func (e *usageError) Error() string { return e.msg }

// parseArgs parses args (without the program name) the way cryptsetup's popt table does:
// options may appear before, between or after the positional arguments; short options take
// their value attached ("-s256") or as the next argument ("-s 256"), and may be bundled
// ("-qv"); long options take "--opt=value" or "--opt value"; "--" ends the options.
func parseArgs(args []string) (*options, []string, error) {
	o := &options{keySlot: -1, tries: 3, set: map[string]bool{}}
	table := optionTable()
	byLong := map[string]*optDef{}
	byShort := map[byte]*optDef{}
	for i := range table {
		d := &table[i]
		byLong[d.long] = d
		if d.short != 0 {
			byShort[d.short] = d
		}
	}
	var pos []string
	apply := func(d *optDef, val string, shown string) error {
		name := d.long
		if d.alias != "" {
			name = d.alias
		}
		var n int64
		if d.kind == optInt {
			v, err := parseNumber(val, d.num)
			if err == errSizeSpec { // parseSize returns it unwrapped
				return &usageError{msg: fmt.Sprintf("Invalid size specification in parameter --%s.", d.long)}
			}
			if err != nil {
				return &usageError{msg: "invalid numeric value"}
			}
			n = v
		}
		d.apply(o, val, n)
		o.set[name] = true
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			d, ok := byLong[name]
			if !ok {
				return nil, nil, &usageError{subject: a, msg: "unknown option"}
			}
			if d.kind == optBool {
				if hasVal {
					return nil, nil, &usageError{subject: a, msg: "option does not take an argument"}
				}
				if err := apply(d, "", a); err != nil {
					return nil, nil, err
				}
				continue
			}
			if !hasVal {
				if i+1 >= len(args) {
					return nil, nil, &usageError{subject: a, msg: "missing argument"}
				}
				i++
				val = args[i]
			}
			if err := apply(d, val, a); err != nil {
				return nil, nil, err
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				d, ok := byShort[a[j]]
				if !ok {
					return nil, nil, &usageError{subject: "-" + string(a[j]), msg: "unknown option"}
				}
				if d.kind == optBool {
					if err := apply(d, "", a); err != nil {
						return nil, nil, err
					}
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, nil, &usageError{subject: "-" + string(a[j]), msg: "missing argument"}
					}
					i++
					val = args[i]
				}
				if err := apply(d, val, a); err != nil {
					return nil, nil, err
				}
				break
			}
		default:
			pos = append(pos, a) // includes "-" (stdin) as a positional
		}
	}
	if err := o.check(); err != nil {
		return nil, nil, err
	}
	return o, pos, nil
}

// parseNumber parses like cryptsetup's tools_parse_arg_value: base 10 only (strtoll/strtoull
// with base 10: leading white space and a sign allowed, nothing after the digits), then the
// range of the option's C type. As in strtoull, "-N" for an unsigned type wraps around, so
// it is out of range for uint32 and huge for uint64.
func parseNumber(s string, t numType) (int64, error) {
	if t == numSize {
		return parseSize(s)
	}
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	mag, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, err // ERANGE
	}
	switch t {
	case numUint32, numUint64:
		if neg && mag != 0 {
			if t == numUint32 {
				return 0, strconv.ErrRange
			}
			mag = -mag // strtoull's wrap-around
		}
		if t == numUint32 && mag > math.MaxUint32 {
			return 0, strconv.ErrRange
		}
		return int64(min(mag, math.MaxInt64)), nil
	case numInt32:
		if (!neg && mag > math.MaxInt32) || (neg && mag > -math.MinInt32) {
			return 0, strconv.ErrRange
		}
	default:
		if (!neg && mag > math.MaxInt64) || (neg && mag > 1<<63) {
			return 0, strconv.ErrRange
		}
	}
	if neg {
		return -int64(mag), nil
	}
	return int64(mag), nil
}

// checkAllowed refuses an option the action does not take, as cryptsetup's tools_check_args
// does (the first such option in table order), then the cross-option rules cryptsetup
// checks after it; all are usage errors.
func (o *options) checkAllowed(action string) error {
	for _, d := range optionTable() {
		if d.only == nil || !o.set[d.long] || slices.Contains(d.only, action) {
			continue
		}
		return &usageError{msg: fmt.Sprintf("Option --%s is not allowed with %s action.", d.long, action)}
	}
	// Checks cryptsetup makes after the per-action ones.
	switch {
	case action == "luksFormat" && o.set["offset"] && o.set["align-payload"] && formatsLUKS2(o):
		return &usageError{msg: "Options --align-payload and --offset cannot be combined."}
	case action == "luksFormat" && o.set["offset"] && !formatsLUKS2(o):
		// cryptsetup's --offset sets the data offset in 512-byte sectors; luks.Format has
		// no exact-offset layout, and ignoring the option would give a different layout
		// without a word. Refused until it is implemented.
		return &usageError{msg: "Option --offset with luksFormat action is not supported by gocryptsetup; use --align-payload."}
	case action == "open" && verifyOpen(o) != "":
		return &usageError{msg: verifyOpen(o)}
	case o.set["pbkdf-force-iterations"] && o.set["iter-time"]:
		return &usageError{msg: "PBKDF forced iterations cannot be combined with iteration time option."}
	case o.set["keyslot-cipher"] != o.set["keyslot-key-size"]:
		return &usageError{msg: "Options --keyslot-cipher and --keyslot-key-size must be used together."}
	}
	return nil
}

// check applies cryptsetup's cross-option rules that it reports as usage errors.
func (o *options) check() error {
	if msg := checkDeviceSize(o); msg != "" {
		return &usageError{msg: msg}
	}
	if o.set["key-size"] && o.keySize%8 != 0 {
		return &usageError{msg: "Key size must be a multiple of 8 bits"}
	}
	// popt's callback for --keyslot-key-size: 0 is a bad number, then the multiple of 8.
	if o.set["keyslot-key-size"] && o.l2.keyslotKeyLen == 0 {
		return &usageError{msg: "invalid numeric value"}
	}
	if o.set["keyslot-key-size"] && o.l2.keyslotKeyLen%8 != 0 {
		return &usageError{msg: "Key size must be a multiple of 8 bits"}
	}
	if msg := checkSectorSize(o); msg != "" {
		return &usageError{msg: msg}
	}
	if o.set["key-slot"] && o.keySlot < 0 {
		return &usageError{msg: "Key slot is invalid."}
	}
	for _, n := range []string{"keyfile-offset", "keyfile-size", "new-keyfile-offset", "new-keyfile-size", "offset", "size", "skip", "offset-bytes", "size-bytes", "align-payload", "iter-time", "benchmark-time"} {
		if !o.set[n] {
			continue
		}
		var v int64
		switch n {
		case "keyfile-offset":
			v = o.keyfileOffset
		case "keyfile-size":
			v = o.keyfileSize
		case "new-keyfile-offset":
			v = o.newKeyfileOff
		case "new-keyfile-size":
			v = o.newKeyfileSize
		case "offset":
			v = o.offset
		case "size":
			v = o.size
		case "skip":
			v = o.skip
		case "offset-bytes":
			v = o.offsetBytes
		case "size-bytes":
			v = o.sizeBytes
		case "align-payload":
			v = o.alignPayload
		case "iter-time":
			v = int64(o.iterTime)
		case "benchmark-time":
			v = int64(o.benchTime)
		}
		if v < 0 {
			return &usageError{msg: "Negative number for option not permitted."}
		}
	}
	if o.set["tries"] && o.tries < 1 {
		o.tries = 1
	}
	return nil
}

// writeUsage prints the popt-style option summary (the same shape as cryptsetup's) to w.
func writeUsage(w io.Writer, prog string) {
	var items []string
	shortBools := "?Vqrvy"
	items = append(items, "[-"+shortBools+"]")
	for _, d := range optionTable() {
		var s string
		switch {
		case d.short != 0 && d.kind == optBool:
			s = fmt.Sprintf("[-%c|--%s]", d.short, d.long)
		case d.short != 0:
			s = fmt.Sprintf("[-%c|--%s=%s]", d.short, d.long, d.arg)
		case d.kind == optBool:
			s = fmt.Sprintf("[--%s]", d.long)
		default:
			s = fmt.Sprintf("[--%s=%s]", d.long, d.arg)
		}
		items = append(items, s)
	}
	items = append(items, "[OPTION...] <action> <action-specific>")
	line := "Usage: " + prog
	for _, it := range items {
		if len(line)+1+len(it) > 79 {
			fmt.Fprintln(w, line)
			line = "       "
		}
		line += " " + it
	}
	fmt.Fprintln(w, line)
}
