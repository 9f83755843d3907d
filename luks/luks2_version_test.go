package luks

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLUKS2PrimaryUnknownVersion: LUKS magic with version 3 in the primary is refused with
// ErrUnsupportedVersion, as cryptsetup 2.6.1 refuses it ("Unsupported LUKS version 3."),
// although the secondary LUKS2 header is intact. The checksum is resealed so the version
// is the only fault.
func TestLUKS2PrimaryUnknownVersion(t *testing.T) {
	match := 0
	defer func() { t.Logf("3 hostile LUKS2 headers, %d decisions match cryptsetup (luksDump)", match) }()
	for _, v := range []uint16{3, 0xffff} {
		im := newL2Image(baseImage2(t))
		binary.BigEndian.PutUint16(im.b[6:], v)
		im.seal(0)
		p := filepath.Join(t.TempDir(), "v.img")
		require.NoError(t, os.WriteFile(p, im.b, 0o600))
		r := runCS(t, nil, "luksDump", p)
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "Unsupported LUKS version")

		_, err := ReadHeader2(bytes.NewReader(im.b))
		if assert.ErrorIs(t, err, ErrUnsupportedVersion, "version %d", v) && r.code != 0 {
			match++
		}
		_, err = Load(bytes.NewReader(im.b))
		assert.ErrorIs(t, err, ErrUnsupportedVersion, "version %d", v)
		_, _, _, err = UnlockAny(context.Background(), bytes.NewReader(im.b), []byte("pass0"), UnlockOptions{})
		assert.ErrorIs(t, err, ErrUnsupportedVersion, "version %d", v)
	}
	// Version 0 is not "another version" to cryptsetup: the secondary header is used.
	im := newL2Image(baseImage2(t))
	binary.BigEndian.PutUint16(im.b[6:], 0)
	im.seal(0)
	p := filepath.Join(t.TempDir(), "v0.img")
	require.NoError(t, os.WriteFile(p, im.b, 0o600))
	csOK := assert.Equal(t, 0, runCS(t, nil, "luksDump", p).code)
	_, err := ReadHeader2(bytes.NewReader(im.b))
	if assert.NoError(t, err) && csOK {
		match++
	}
}
