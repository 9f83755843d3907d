package main

import (
	"errors"
	"strings"

	"github.com/cloudluks/cloudluks/dmcrypt"
)

// cmdStatus prints what `cryptsetup status NAME` prints for any crypt mapping (ours or
// cryptsetup's); an inactive name prints "… is inactive." on stdout and exits 4. A path under
// /dev/mapper is accepted like a name.
func cmdStatus(a *app, args []string) error {
	arg := args[0]
	name := strings.TrimPrefix(arg, dmcrypt.MapperDir+"/")
	s, err := dmcrypt.Status(name)
	if errors.Is(err, dmcrypt.ErrNotFound) || errors.Is(err, dmcrypt.ErrInvalidName) {
		if ferr := dmcrypt.FormatInactive(a.stdout, arg); ferr != nil {
			return ferr
		}
		return &cliError{code: exitDevice}
	}
	if err != nil {
		return mappingError(name, name, err)
	}
	return s.Format(a.stdout, arg)
}
