package dm

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
// are fresh slices (the caller may wipe them), each allocated once at its final size so no
// discarded copy of a key argument is left behind by a growing append.
func splitArgs(params []byte) [][]byte {
	out := make([][]byte, 0, countArgs(params))
	for i := 0; i < len(params); {
		if isDMSpace(params[i]) {
			i++
			continue
		}
		// First pass: the argument's length after unescaping and where it ends.
		n, end := 0, i
		for end < len(params) && !isDMSpace(params[end]) {
			if params[end] == '\\' && end+1 < len(params) {
				end++
			}
			end++
			n++
		}
		arg := make([]byte, 0, n)
		for j := i; j < end; j++ {
			if params[j] == '\\' && j+1 < len(params) {
				j++
			}
			arg = append(arg, params[j])
		}
		out = append(out, arg)
		i = end
	}
	return out
}

// countArgs returns how many arguments splitArgs finds in params.
func countArgs(params []byte) int {
	n := 0
	for i := 0; i < len(params); {
		if isDMSpace(params[i]) {
			i++
			continue
		}
		n++
		for i < len(params) && !isDMSpace(params[i]) {
			if params[i] == '\\' && i+1 < len(params) {
				i++
			}
			i++
		}
	}
	return n
}
