//go:build !linux

package secretrand

import "crypto/rand"

// Read fills b from crypto/rand: outside Linux the package does not know a path that
// avoids every intermediate copy, so the guarantee is best effort (see the package doc).
func Read(b []byte) error {
	_, err := rand.Read(b)
	return err
}
