module github.com/cloudluks/cloudluks/luks/sector/_asm

go 1.26.0

require github.com/mmcloughlin/avo v0.6.0

// x/tools newer than avo v0.6.0 asks for: its v0.16.1 does not compile with Go 1.22 and later.
require (
	golang.org/x/mod v0.36.0 // indirect
	golang.org/x/sync v0.20.0 // indirect
	golang.org/x/tools v0.45.0 // indirect
)
