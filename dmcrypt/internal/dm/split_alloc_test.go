package dm

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// splitArgs copies the hex key out of a table read back from the kernel. Growing an argument
// with append would strand partial copies of the key in discarded arrays nobody can wipe, so
// every argument must be allocated once at its final size.
func TestSplitArgsAllocatesEachArgumentOnce(t *testing.T) {
	params := []byte("aes-xts-plain64 " + strings.Repeat("ab", 64) + " 0 7:0 4096 1 allow_discards")
	const nargs = 7
	var got [][]byte
	allocs := testing.AllocsPerRun(20, func() { got = splitArgs(params) })
	assert.Len(t, got, nargs)
	assert.LessOrEqual(t, allocs, float64(nargs+1), "one allocation per argument plus the list")
	for _, a := range got {
		assert.Equal(t, len(a), cap(a), "argument %q allocated at its exact size", a)
	}
	assert.Equal(t, [][]byte{[]byte(`a b`), []byte(`c\`), []byte(`d`)}, splitArgs([]byte(`a\ b  c\\ d`)))
}
