package luks

import (
	"errors"
	"fmt"
	"io"
)

var (
	ioEOF    = io.EOF
	errShort = errors.New("memDev: write beyond end")
)

func fmtAll(v any) string {
	return fmt.Sprintf("%v %s %x %X %q %#v %+v %d", v, v, v, v, v, v, v, v)
}
