// Package jsonc is an ordered JSON tree with a reader and a writer that behave like json-c
// 0.16, the library cryptsetup 2.6 uses for the LUKS2 metadata area.
//
// cryptsetup builds its JSON with json_object_object_add (members keep insertion order)
// and writes it with json_object_to_json_string_ext(JSON_C_TO_STRING_PLAIN |
// JSON_C_TO_STRING_NOSLASHESCAPE). Writing a header cryptsetup reads back byte for byte
// therefore needs a tree that keeps member order and a writer with json-c's escaping; Go
// maps and encoding/json give neither.
//
// # Reading
//
// Parse accepts the JSON cryptsetup or any older version of it wrote, in any member order,
// plus the relaxations of json-c's default (non-strict) tokener that cost nothing to mirror:
// `\/`, single-quoted strings, literals in any case (TRUE, Null), /* */ and // comments,
// a trailing comma in an object or array, leading zeros in numbers, raw control
// characters and bytes that are not UTF-8 inside strings. json-c's treatment of odd input
// is reproduced where it changes the tree: a repeated key replaces the earlier value in
// the earlier position; a key is cut at an escaped NUL (json-c keeps keys as C strings);
// an unpaired UTF-16 surrogate becomes U+FFFD; an integer beyond the 64-bit range is
// clamped to it. Nesting deeper than json-c's 32 levels is refused with ErrDepth, input
// over Limits.MaxSize with ErrTooLarge. NaN, Infinity and -Infinity (any case) are read as
// json-c reads them, as doubles written back as NaN, Infinity, -Infinity: cryptsetup loads a
// header holding one (in a token, say), so the LUKS2 reader must too.
//
// Numbers keep their text: an integer is normalised as json-c prints an int64 or uint64
// ("-0" reads as 0, "007" as 7), a number with a fraction or exponent keeps its literal
// text exactly, as json-c's json_object_new_double_s does; that includes an empty
// fraction ("1.", "-0.", "1.e5"), which json-c reads and writes back unchanged. An exponent
// without digits ("1e", which json-c reads as if the e were absent) is refused.
//
// # Writing
//
// Marshal prints a tree as json-c does with PLAIN|NOSLASHESCAPE: no whitespace, members
// in order, `"` `\` and the control characters \b \f \n \r \t escaped by name, other
// bytes below 0x20 as \u00xx (lower-case hex), everything else, non-ASCII and DEL
// included, as is.
package jsonc

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Kind is the type of a Value.
type Kind uint8

// The kinds of JSON values.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "boolean"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Value is one node of the tree. Text holds a String's bytes or a Number's text; Items
// an Array's elements; Members an Object's members in order.
type Value struct {
	Kind    Kind
	Bool    bool
	Text    string
	Items   []*Value
	Members []Member
}

// Member is one key and value of an Object.
type Member struct {
	Key   string
	Value *Value
}

// Errors returned by Parse, each wrapped with the byte offset where parsing stopped.
var (
	ErrSyntax   = errors.New("jsonc: syntax error")
	ErrEOF      = errors.New("jsonc: unexpected end of data")
	ErrDepth    = errors.New("jsonc: nesting too deep")
	ErrTooLarge = errors.New("jsonc: input too large")
)

// Constructors for the leaves and containers cryptsetup writes.

// NewObject returns an empty object.
func NewObject() *Value { return &Value{Kind: Object} }

// NewArray returns an array of the given values.
func NewArray(items ...*Value) *Value { return &Value{Kind: Array, Items: items} }

// NewString returns a string value.
func NewString(s string) *Value { return &Value{Kind: String, Text: s} }

// NewInt returns an integer number (json_object_new_int64).
func NewInt(n int64) *Value { return &Value{Kind: Number, Text: strconv.FormatInt(n, 10)} }

// NewUint returns an unsigned integer number (json_object_new_uint64).
func NewUint(n uint64) *Value { return &Value{Kind: Number, Text: strconv.FormatUint(n, 10)} }

// NewBool returns a boolean value.
func NewBool(b bool) *Value { return &Value{Kind: Bool, Bool: b} }

// NewNull returns a null value.
func NewNull() *Value { return &Value{Kind: Null} }

// Get returns the value of key in an object, or nil when v is not an object or has no
// such member.
func (v *Value) Get(key string) *Value {
	if v == nil || v.Kind != Object {
		return nil
	}
	for _, m := range v.Members {
		if m.Key == key {
			return m.Value
		}
	}
	return nil
}

// Set gives key the value val as json_object_object_add does: an existing member keeps
// its position, a new one goes last. It returns v for chaining. v must be an object.
func (v *Value) Set(key string, val *Value) *Value {
	if v.Kind != Object {
		panic("jsonc: Set on " + v.Kind.String())
	}
	for i := range v.Members {
		if v.Members[i].Key == key {
			v.Members[i].Value = val
			return v
		}
	}
	v.Members = append(v.Members, Member{Key: key, Value: val})
	return v
}

// Delete removes key from an object (json_object_object_del); it reports whether the key
// was there.
func (v *Value) Delete(key string) bool {
	if v == nil || v.Kind != Object {
		return false
	}
	for i, m := range v.Members {
		if m.Key == key {
			v.Members = append(v.Members[:i], v.Members[i+1:]...)
			return true
		}
	}
	return false
}

// Clone returns a deep copy of v.
func (v *Value) Clone() *Value {
	if v == nil {
		return nil
	}
	c := &Value{Kind: v.Kind, Bool: v.Bool, Text: v.Text}
	if v.Items != nil {
		c.Items = make([]*Value, len(v.Items))
		for i, it := range v.Items {
			c.Items[i] = it.Clone()
		}
	}
	if v.Members != nil {
		c.Members = make([]Member, len(v.Members))
		for i, m := range v.Members {
			c.Members[i] = Member{Key: m.Key, Value: m.Value.Clone()}
		}
	}
	return c
}

// Equal reports whether a and b are the same tree, member order included.
func Equal(a, b *Value) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Kind != b.Kind || a.Bool != b.Bool || a.Text != b.Text ||
		len(a.Items) != len(b.Items) || len(a.Members) != len(b.Members) {
		return false
	}
	for i := range a.Items {
		if !Equal(a.Items[i], b.Items[i]) {
			return false
		}
	}
	for i := range a.Members {
		if a.Members[i].Key != b.Members[i].Key || !Equal(a.Members[i].Value, b.Members[i].Value) {
			return false
		}
	}
	return true
}

// Marshal returns v as json-c writes it with JSON_C_TO_STRING_PLAIN |
// JSON_C_TO_STRING_NOSLASHESCAPE. A nil *Value prints as null, as json-c prints NULL.
func Marshal(v *Value) []byte { return AppendMarshal(nil, v) }

// AppendMarshal appends the Marshal form of v to b.
func AppendMarshal(b []byte, v *Value) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	switch v.Kind {
	case Null:
		return append(b, "null"...)
	case Bool:
		if v.Bool {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case Number:
		return append(b, v.Text...)
	case String:
		return appendString(b, v.Text)
	case Array:
		b = append(b, '[')
		for i, it := range v.Items {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendMarshal(b, it)
		}
		return append(b, ']')
	case Object:
		b = append(b, '{')
		for i, m := range v.Members {
			if i > 0 {
				b = append(b, ',')
			}
			k := m.Key
			// json-c keeps keys as C strings and prints them with strlen.
			if j := bytes.IndexByte([]byte(k), 0); j >= 0 {
				k = k[:j]
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = AppendMarshal(b, m.Value)
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

const hexDigits = "0123456789abcdef"

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var esc string
		switch c {
		case '\b':
			esc = `\b`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		case '\t':
			esc = `\t`
		case '\f':
			esc = `\f`
		case '"':
			esc = `\"`
		case '\\':
			esc = `\\`
		default:
			if c >= 0x20 {
				continue
			}
		}
		b = append(b, s[start:i]...)
		if esc != "" {
			b = append(b, esc...)
		} else {
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
