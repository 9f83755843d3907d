package dm

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"data", "my_enc_fs", "a", "x.y", "...", "with space", strings.Repeat("n", 127)} {
		assert.NoError(t, ValidateName(ok), ok)
	}
	for _, bad := range []string{"", ".", "..", "control", "a/b", "/", "a\x00b", strings.Repeat("n", 128)} {
		require.ErrorIs(t, ValidateName(bad), ErrInvalidName, "%q", bad)
	}
}

func TestLUKS1UUID(t *testing.T) {
	assert.Equal(t, "CRYPT-LUKS1-0e6c6e564e8e455495d78dc6342abbd7-data",
		LUKS1UUID("0e6c6e56-4e8e-4554-95d7-8dc6342abbd7", "data"))
	long := LUKS1UUID("0e6c6e56-4e8e-4554-95d7-8dc6342abbd7", strings.Repeat("n", 127))
	assert.Len(t, long, 128, "cut to DM_UUID_LEN-1 like cryptsetup's dm_prepare_uuid")
	assert.Equal(t, "CRYPT-PLAIN-x", cryptUUID("PLAIN", "", "x"))
}

func TestTypeFromUUID(t *testing.T) {
	for uuid, want := range map[string]string{
		"CRYPT-LUKS1-0e6c6e564e8e455495d78dc6342abbd7-data": "LUKS1",
		"CRYPT-LUKS2-0e6c6e564e8e455495d78dc6342abbd7-data": "LUKS2",
		"CRYPT-PLAIN-x":                 "PLAIN",
		"CRYPT-":                        "",
		"CRYPT-LUKS1":                   "",
		"LVM-abc":                       "",
		"":                              "",
		"crypt-luks1-0e6c6e564e8e-data": "",
	} {
		assert.Equal(t, want, TypeFromUUID(uuid), uuid)
	}
}

func TestKeyDescription(t *testing.T) {
	assert.Equal(t, "cloudluks:CRYPT-LUKS1-abc-key_ring_x_y", KeyDescription("CRYPT-LUKS1-abc-key ring\\x\ty"))
	assert.Equal(t, "cloudluks:a_b", KeyDescription("a\xa0b"))
}
