package main

import (
	"errors"
	"strings"

	"github.com/cloudluks/cloudluks/dmcrypt"
)

// cmdStatus prints what `cryptsetup status NAME` prints for any crypt mapping (ours or
// cryptsetup's); an inactive name prints "… is inactive." on stdout and exits 4. A path
// (/dev/mapper/NAME, /dev/dm-N) is resolved to its name first; a missing path is inactive
// without asking the kernel, as in cryptsetup.
func cmdStatus(a *app, args []string) error {
	arg := args[0]
	name := arg
	var err error
	if strings.Contains(arg, "/") {
		name, err = dmcrypt.NameFromPath(arg)
	}
	var s *dmcrypt.MappingStatus
	if err == nil {
		s, err = dmcrypt.Status(name)
	}
	if errors.Is(err, dmcrypt.ErrNotFound) || errors.Is(err, dmcrypt.ErrInvalidName) {
		if ferr := dmcrypt.DumpInactive(a.stdout, arg); ferr != nil {
			return ferr
		}
		return &cliError{code: exitDevice}
	}
	if err != nil {
		return mappingError(name, name, err)
	}
	return s.Dump(a.stdout, arg)
}
