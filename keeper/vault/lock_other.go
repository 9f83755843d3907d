//go:build !unix

package vault

import "fmt"

// lock refuses to write where flock(2) is missing, rather than write unguarded.
func lock(path string) (func(), error) {
	return nil, fmt.Errorf("%s: %w: no file locking on this system", path, ErrInvalid)
}
