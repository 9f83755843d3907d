package dmcrypt

import (
	"bytes"
	"fmt"
)

// isDMSpace reports whether the kernel's isspace() (lib/ctype.c, Latin-1 table) treats c as
// white space, which is what dm_split_args splits table parameters on: the ASCII spaces plus
// 0xA0 (no-break space in Latin-1).
func isDMSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0xa0:
		return true
	}
	return false
}

// appendEscaped appends arg to dst so that the kernel's dm_split_args reads it back as one
// argument: white space and backslashes get a backslash in front. NUL cannot be represented
// (the parameter string is NUL-terminated) and an empty argument would vanish; both are errors.
func appendEscaped(dst []byte, arg string) ([]byte, error) {
	if arg == "" {
		return dst, fmt.Errorf("%w: empty table argument", ErrInvalidParameter)
	}
	if bytes.IndexByte([]byte(arg), 0) >= 0 {
		return dst, fmt.Errorf("%w: NUL byte in table argument", ErrInvalidParameter)
	}
	for i := 0; i < len(arg); i++ {
		c := arg[i]
		if c == '\\' || isDMSpace(c) {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return dst, nil
}

// EscapeArg returns arg escaped as a device-mapper table argument (see appendEscaped).
func EscapeArg(arg string) (string, error) {
	b, err := appendEscaped(nil, arg)
	return string(b), err
}

// splitArgs splits a parameter string the way the kernel's dm_split_args does: runs of white
// space separate arguments, a backslash makes the next byte literal. The returned arguments
// are fresh slices (the caller may wipe them).
func splitArgs(params []byte) [][]byte {
	var out [][]byte
	var cur []byte
	in := false
	for i := 0; i < len(params); i++ {
		c := params[i]
		switch {
		case c == '\\' && i+1 < len(params):
			i++
			cur = append(cur, params[i])
			in = true
		case isDMSpace(c):
			if in {
				out = append(out, cur)
				cur, in = nil, false
			}
		default:
			cur = append(cur, c)
			in = true
		}
	}
	if in {
		out = append(out, cur)
	}
	return out
}
