package luks

import (
	"errors"
	"io"
)

var (
	ioEOF    = io.EOF
	errShort = errors.New("memDev: write beyond end")
)
