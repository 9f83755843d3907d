package sector

import (
	"crypto/cipher"
	"fmt"
)

func newSerpent(key []byte) (cipher.Block, error) {
	return nil, fmt.Errorf("%w: serpent not implemented yet", ErrUnsupportedCipher)
}
