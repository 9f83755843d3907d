package dm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/luks"
)

func TestCryptTableFromSegment(t *testing.T) {
	vk := luks.NewVolumeKey(testKey)
	defer vk.Wipe()
	seg := luks.DataSegment{Version: 2, Cipher: "aes-xts-plain64", KeyBytes: len(testKey), Offset: 16 << 20, SectorSize: 4096, IVTweak: 8}
	ct, err := CryptTableFromSegment(seg, vk, "7:0", 20971520)
	require.NoError(t, err)
	assert.Equal(t, "0 20938752 crypt aes-xts-plain64 <redacted> 8 7:0 32768 1 sector_size:4096", ct.String())

	_, err = CryptTableFromSegment(seg, vk, "7:0", 20971520+1)
	assert.ErrorIs(t, err, ErrInvalidParameter, "dynamic size not aligned to the sector size")
	seg.Size = 1 << 20
	ct, err = CryptTableFromSegment(seg, vk, "7:0", 20971520)
	require.NoError(t, err)
	assert.Equal(t, uint64(2048), ct.Length, "fixed-size segment")
	seg.Size = 1 << 40
	_, err = CryptTableFromSegment(seg, vk, "7:0", 20971520)
	assert.ErrorIs(t, err, luks.ErrDeviceTooSmall)
	seg.Size = 0
	_, err = CryptTableFromSegment(seg, vk, "7:0", 1000)
	assert.ErrorIs(t, err, luks.ErrDeviceTooSmall)
	seg.KeyBytes = 32
	_, err = CryptTableFromSegment(seg, vk, "7:0", 20971520)
	assert.ErrorIs(t, err, ErrInvalidParameter)
	assert.Equal(t, "CRYPT-LUKS2-0b6c5d530d0b4a639a397e1f2e4c5d6a-data", LUKS2UUID("0b6c5d53-0d0b-4a63-9a39-7e1f2e4c5d6a", "data"))
	assert.Equal(t, "cryptsetup:0b6c5d53-0d0b-4a63-9a39-7e1f2e4c5d6a-d0", LUKS2KeyDescription("0b6c5d53-0d0b-4a63-9a39-7e1f2e4c5d6a", 0))
}
