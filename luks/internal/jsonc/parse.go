package jsonc

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"
)

// DefaultMaxDepth is json-c's JSON_TOKENER_DEFAULT_DEPTH: a value nested 32 containers
// deep is refused.
const DefaultMaxDepth = 32

// DefaultMaxSize is the largest JSON area LUKS2 allows: 4 MiB of metadata less the 4 KiB
// binary header.
const DefaultMaxSize = 4<<20 - 4096

// Limits bound what Parse accepts; zero fields take the defaults above.
type Limits struct {
	MaxDepth int
	MaxSize  int
}

// Parse reads one JSON object or array from the start of data as json_tokener_parse_ex does and
// returns it with the number of bytes consumed: the value and the white space and
// comments after it. A NUL byte ends the input, as it ends json-c's. What follows (the NUL padding of a LUKS2 JSON area, or anything
// else) is left to the caller, as cryptsetup leaves it to its own checks.
func Parse(data []byte) (*Value, int, error) { return ParseLimits(data, Limits{}) }

// ParseLimits is Parse with explicit limits.
func ParseLimits(data []byte, lim Limits) (*Value, int, error) {
	if lim.MaxDepth <= 0 {
		lim.MaxDepth = DefaultMaxDepth
	}
	if lim.MaxSize <= 0 {
		lim.MaxSize = DefaultMaxSize
	}
	if len(data) > lim.MaxSize {
		return nil, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), lim.MaxSize)
	}
	// json-c reads a NUL byte as the end of its input, wherever it occurs.
	if i := bytes.IndexByte(data, 0); i >= 0 {
		data = data[:i]
	}
	p := &parser{data: data, maxDepth: lim.MaxDepth}
	if err := p.ws(); err != nil {
		return nil, p.pos, err
	}
	// LUKS2 metadata is an object; a top-level scalar is refused rather than reproducing
	// where json-c ends one.
	if p.pos < len(p.data) && p.data[p.pos] != '{' && p.data[p.pos] != '[' {
		return nil, p.pos, p.errf(ErrSyntax, "object or array expected")
	}
	v, err := p.value(0)
	if err != nil {
		return nil, p.pos, err
	}
	if err := p.ws(); err != nil {
		return nil, p.pos, err
	}
	return v, p.pos, nil
}

type parser struct {
	data     []byte
	pos      int
	maxDepth int
}

func (p *parser) errf(base error, format string, a ...any) error {
	return fmt.Errorf("%w at offset %d: %s", base, p.pos, fmt.Sprintf(format, a...))
}

func (p *parser) eof() error { return fmt.Errorf("%w at offset %d", ErrEOF, p.pos) }

// isSpace is json-c's white space: \v and \f are not.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// ws skips white space and comments.
func (p *parser) ws() error {
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case isSpace(c):
			p.pos++
		case c == '/':
			if p.pos+1 >= len(p.data) {
				p.pos++
				return p.eof()
			}
			switch p.data[p.pos+1] {
			case '*':
				// json-c looks for a '*' and then takes the next byte: "/" ends the
				// comment, anything else (another '*' too) does not, so "/***/" stays open.
				i := p.pos + 2
				for {
					j := indexFrom(p.data, i, "*")
					if j < 0 || j+1 >= len(p.data) {
						p.pos = len(p.data)
						return p.eof()
					}
					if p.data[j+1] == '/' {
						p.pos = j + 2
						break
					}
					i = j + 2
				}
			case '/':
				i := indexFrom(p.data, p.pos+2, "\n")
				if i < 0 {
					p.pos = len(p.data)
					return p.eof()
				}
				p.pos = i + 1
			default:
				p.pos++
				return p.errf(ErrSyntax, "expected comment")
			}
		default:
			return nil
		}
	}
	return nil
}

func indexFrom(b []byte, from int, sep string) int {
	for i := from; i+len(sep) <= len(b); i++ {
		if string(b[i:i+len(sep)]) == sep {
			return i
		}
	}
	return -1
}

func (p *parser) value(depth int) (*Value, error) {
	if depth >= p.maxDepth {
		return nil, p.errf(ErrDepth, "more than %d levels", p.maxDepth)
	}
	if p.pos >= len(p.data) {
		return nil, p.eof()
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"' || c == '\'':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return &Value{Kind: String, Text: s}, nil
	case c == '-' && p.pos+1 < len(p.data) && p.data[p.pos+1]|0x20 == 'i':
		// json-c reads -Infinity (any case) as a double.
		p.pos++
		return p.literal("infinity", &Value{Kind: Number, Text: "-Infinity"})
	case c == 'i' || c == 'I':
		return p.literal("infinity", &Value{Kind: Number, Text: "Infinity"})
	case (c == 'n' || c == 'N') && p.pos+1 < len(p.data) && p.data[p.pos+1]|0x20 == 'a':
		// json-c's null state also matches NaN (any case), a double.
		return p.literal("nan", &Value{Kind: Number, Text: "NaN"})
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't' || c == 'T':
		return p.literal("true", &Value{Kind: Bool, Bool: true})
	case c == 'f' || c == 'F':
		return p.literal("false", &Value{Kind: Bool})
	case c == 'n' || c == 'N':
		return p.literal("null", &Value{Kind: Null})
	default:
		return nil, p.errf(ErrSyntax, "unexpected character %q", c)
	}
}

// literal matches true/false/null in any case, as json-c's non-strict tokener does.
func (p *parser) literal(word string, v *Value) (*Value, error) {
	for i := 0; i < len(word); i++ {
		if p.pos >= len(p.data) {
			return nil, p.eof()
		}
		c := p.data[p.pos]
		if c|0x20 != word[i] {
			return nil, p.errf(ErrSyntax, "%s expected", word)
		}
		p.pos++
	}
	// json-c decides a literal is complete on the byte after it.
	if p.pos >= len(p.data) {
		return nil, p.eof()
	}
	return v, nil
}

func (p *parser) object(depth int) (*Value, error) {
	p.pos++ // '{'
	obj := &Value{Kind: Object, Members: []Member{}}
	if err := p.ws(); err != nil {
		return nil, err
	}
	for {
		if p.pos >= len(p.data) {
			return nil, p.eof()
		}
		c := p.data[p.pos]
		// json-c accepts "}" right after "{" and after a trailing ",".
		if c == '}' {
			p.pos++
			return obj, nil
		}
		if c != '"' && c != '\'' {
			return nil, p.errf(ErrSyntax, "quoted object property name expected")
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		if err := p.ws(); err != nil {
			return nil, err
		}
		if p.pos >= len(p.data) {
			return nil, p.eof()
		}
		if p.data[p.pos] != ':' {
			return nil, p.errf(ErrSyntax, "object property name separator ':' expected")
		}
		p.pos++
		if err := p.ws(); err != nil {
			return nil, err
		}
		val, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		// json-c stores keys as C strings: an escaped NUL ends the key.
		for i := 0; i < len(key); i++ {
			if key[i] == 0 {
				key = key[:i]
				break
			}
		}
		obj.Set(key, val)
		if err := p.ws(); err != nil {
			return nil, err
		}
		if p.pos >= len(p.data) {
			return nil, p.eof()
		}
		switch p.data[p.pos] {
		case '}':
			p.pos++
			return obj, nil
		case ',':
			p.pos++
			if err := p.ws(); err != nil {
				return nil, err
			}
		default:
			return nil, p.errf(ErrSyntax, "object value separator ',' expected")
		}
	}
}

func (p *parser) array(depth int) (*Value, error) {
	p.pos++ // '['
	arr := &Value{Kind: Array, Items: []*Value{}}
	if err := p.ws(); err != nil {
		return nil, err
	}
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return arr, nil
	}
	for {
		val, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		arr.Items = append(arr.Items, val)
		if err := p.ws(); err != nil {
			return nil, err
		}
		if p.pos >= len(p.data) {
			return nil, p.eof()
		}
		switch p.data[p.pos] {
		case ']':
			p.pos++
			return arr, nil
		case ',':
			p.pos++
			if err := p.ws(); err != nil {
				return nil, err
			}
			if p.pos < len(p.data) && p.data[p.pos] == ']' {
				p.pos++
				return arr, nil
			}
		default:
			return nil, p.errf(ErrSyntax, "array value separator ',' expected")
		}
	}
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func (p *parser) hex4() (rune, error) {
	var r rune
	for i := 0; i < 4; i++ {
		if p.pos >= len(p.data) {
			return 0, p.eof()
		}
		h := hexVal(p.data[p.pos])
		if h < 0 {
			return 0, p.errf(ErrSyntax, "invalid \\u escape")
		}
		r = r<<4 | rune(h)
		p.pos++
	}
	return r, nil
}

const (
	surrHigh = 0xd800
	surrLow  = 0xdc00
)

func isHigh(r rune) bool { return r&0xfc00 == surrHigh }
func isLow(r rune) bool  { return r&0xfc00 == surrLow }

// str reads a string quoted with " or ' (json-c's quote_char) and returns its bytes.
func (p *parser) str() (string, error) {
	quote := p.data[p.pos]
	p.pos++
	var out []byte
	start := p.pos
	for {
		if p.pos >= len(p.data) {
			return "", p.eof()
		}
		c := p.data[p.pos]
		if c == quote {
			out = append(out, p.data[start:p.pos]...)
			p.pos++
			return string(out), nil
		}
		if c != '\\' {
			p.pos++
			continue
		}
		out = append(out, p.data[start:p.pos]...)
		p.pos++
		if p.pos >= len(p.data) {
			return "", p.eof()
		}
		e := p.data[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, err := p.hex4()
			if err != nil {
				return "", err
			}
			for {
				if !isHigh(r) {
					if isLow(r) {
						r = utf8.RuneError
					}
					out = utf8.AppendRune(out, r)
					break
				}
				// A high surrogate pairs only with an immediately following \u low
				// surrogate; any other \u sequence is decoded on its own after a
				// U+FFFD for the lone high one.
				if p.pos+1 >= len(p.data) || p.data[p.pos] != '\\' || p.data[p.pos+1] != 'u' {
					out = utf8.AppendRune(out, utf8.RuneError)
					break
				}
				p.pos += 2
				r2, err := p.hex4()
				if err != nil {
					return "", err
				}
				if isLow(r2) {
					out = utf8.AppendRune(out, ((r&0x3ff)<<10|(r2&0x3ff))+0x10000)
					break
				}
				out = utf8.AppendRune(out, utf8.RuneError)
				r = r2
			}
		default:
			p.pos--
			return "", p.errf(ErrSyntax, "invalid string sequence")
		}
		start = p.pos
	}
}

var (
	minInt64  = big.NewInt(math.MinInt64)
	maxUint64 = new(big.Int).SetUint64(math.MaxUint64)
)

// number reads -?digits[.[digits]][(e|E)[+-]digits]. Integers are stored as json-c prints
// its int64/uint64 (clamped to their range as json_parse_int64/uint64 clamp); other
// numbers keep their text, as json_object_new_double_s keeps it.
func (p *parser) number() (*Value, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if digits() == 0 {
		return nil, p.errf(ErrSyntax, "number expected")
	}
	isDouble := false
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		isDouble = true
		p.pos++
		// json-c takes an empty fraction ("1.", "1.e5") as a double and prints it back as
		// written; cryptsetup opens a header holding one, so the reader must too.
		digits()
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		isDouble = true
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.errf(ErrSyntax, "digit expected in exponent")
		}
	}
	// json-c cannot tell that a number at the very end of its input is complete.
	if p.pos >= len(p.data) {
		return nil, p.eof()
	}
	if c := p.data[p.pos]; c == '.' || c == '+' || c == '-' || c == 'e' || c == 'E' {
		return nil, p.errf(ErrSyntax, "malformed number")
	}
	lit := string(p.data[start:p.pos])
	if isDouble {
		return &Value{Kind: Number, Text: lit}, nil
	}
	if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
		return &Value{Kind: Number, Text: strconv.FormatInt(n, 10)}, nil
	}
	if u, err := strconv.ParseUint(lit, 10, 64); err == nil {
		return &Value{Kind: Number, Text: strconv.FormatUint(u, 10)}, nil
	}
	b, _ := new(big.Int).SetString(lit, 10)
	if b.Sign() < 0 {
		b = minInt64
	} else {
		b = maxUint64
	}
	return &Value{Kind: Number, Text: b.String()}, nil
}
