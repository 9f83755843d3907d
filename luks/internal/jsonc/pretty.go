package jsonc

import "bytes"

// MarshalPretty returns v as json-c 0.16 writes it with JSON_C_TO_STRING_PRETTY |
// JSON_C_TO_STRING_NOSLASHESCAPE (cryptsetup's luksDump --dump-json-metadata): two spaces
// per level, no space after the colon, every object and array, empty ones included, opened
// on its own line, and no newline after the last brace.
func MarshalPretty(v *Value) []byte { return appendPretty(nil, v, 0) }

func appendIndent(b []byte, level int) []byte {
	for range level {
		b = append(b, ' ', ' ')
	}
	return b
}

func appendPretty(b []byte, v *Value, level int) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	switch v.Kind {
	case Array:
		b = append(b, '[', '\n')
		for i, it := range v.Items {
			if i > 0 {
				b = append(b, ',', '\n')
			}
			b = appendIndent(b, level+1)
			b = appendPretty(b, it, level+1)
		}
		if len(v.Items) > 0 {
			b = append(b, '\n')
		}
		return append(appendIndent(b, level), ']')
	case Object:
		b = append(b, '{', '\n')
		for i, m := range v.Members {
			if i > 0 {
				b = append(b, ',', '\n')
			}
			b = appendIndent(b, level+1)
			k := m.Key
			if j := bytes.IndexByte([]byte(k), 0); j >= 0 {
				k = k[:j]
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendPretty(b, m.Value, level+1)
		}
		if len(v.Members) > 0 {
			b = append(b, '\n')
		}
		return append(appendIndent(b, level), '}')
	}
	return AppendMarshal(b, v)
}
