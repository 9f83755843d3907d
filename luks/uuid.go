package luks

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// randomUUID makes a version-4 UUID in libuuid's lower-case text form.
func randomUUID(rnd io.Reader) (string, error) {
	var u [16]byte
	if _, err := io.ReadFull(rnd, u[:]); err != nil {
		return "", fmt.Errorf("generating UUID: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return formatUUID(u), nil
}

func formatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// canonicalUUID accepts what libuuid's uuid_parse accepts (36 characters, hex digits with
// dashes at 8, 13, 18, 23, either case) and returns uuid_unparse's lower-case form.
func canonicalUUID(s string) (string, error) {
	bad := fmt.Errorf("%w: wrong LUKS UUID format provided: %q", ErrInvalidParameter, s)
	if len(s) != 36 {
		return "", bad
	}
	var u [16]byte
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return "", bad
			}
			i++
			continue
		}
		b, err := hex.DecodeString(s[i : i+2])
		if err != nil {
			return "", bad
		}
		u[j] = b[0]
		j++
		i += 2
	}
	return strings.ToLower(formatUUID(u)), nil
}
