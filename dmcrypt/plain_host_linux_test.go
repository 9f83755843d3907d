//go:build linux

package dmcrypt

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cloudluks/cloudluks/dmcrypt/internal/dm"
	"github.com/cloudluks/cloudluks/luks"
)

// Bad parameters are refused before the kernel is asked anything, so these run on any host
// (the VM test repeats them next to cryptsetup and checks nothing is left behind).
func TestPlainRefusedBeforeDeviceMapper(t *testing.T) {
	ctx := context.Background()
	slot := 0
	for _, c := range []struct {
		name string
		err  error
		open func() error
	}{
		{"bad name", ErrInvalidName, func() error {
			_, err := OpenPlain(ctx, "/dev/null", "a/b", []byte("x"), PlainParams{}, OpenOptions{})
			return err
		}},
		{"header", ErrInvalidParameter, func() error {
			_, err := OpenPlain(ctx, "/dev/null", "p", []byte("x"), PlainParams{}, OpenOptions{Header: "/h"})
			return err
		}},
		{"key slot", ErrInvalidParameter, func() error {
			_, err := OpenEphemeral(ctx, "/dev/null", "p", PlainParams{}, OpenOptions{Keyslot: &slot})
			return err
		}},
		{"unknown cipher", luks.ErrUnsupportedCipher, func() error {
			_, err := OpenPlain(ctx, "/dev/null", "p", []byte("x"), PlainParams{Cipher: "rot13-ecb"}, OpenOptions{})
			return err
		}},
		{"unknown hash", luks.ErrUnsupportedHash, func() error {
			_, err := OpenPlain(ctx, "/dev/null", "p", []byte("x"), PlainParams{Hash: "md4"}, OpenOptions{})
			return err
		}},
		{"short plain passphrase", luks.ErrShortPlainPassphrase, func() error {
			_, err := OpenPlain(ctx, "/dev/null", "p", []byte("x"), PlainParams{Hash: "plain:8"}, OpenOptions{})
			return err
		}},
		{"raw key size", ErrInvalidParameter, func() error {
			_, err := OpenPlainKey(ctx, "/dev/null", "p", make([]byte, 16), PlainParams{}, OpenOptions{})
			return err
		}},
		{"raw key hashed", ErrInvalidParameter, func() error {
			_, err := OpenPlainKey(ctx, "/dev/null", "p", make([]byte, 32), PlainParams{Hash: "sha256"}, OpenOptions{})
			return err
		}},
		{"ephemeral hash", ErrInvalidParameter, func() error {
			_, err := OpenEphemeral(ctx, "/dev/null", "p", PlainParams{Hash: "sha256"}, OpenOptions{})
			return err
		}},
		{"xts key size", luks.ErrInvalidKeySize, func() error {
			_, err := OpenEphemeral(ctx, "/dev/null", "p", PlainParams{Cipher: "aes-xts-plain64", KeySize: 24}, OpenOptions{})
			return err
		}},
		{"sector size", ErrInvalidParameter, func() error {
			_, err := OpenEphemeral(ctx, "/dev/null", "p", PlainParams{SectorSize: 2000}, OpenOptions{})
			return err
		}},
	} {
		assert.ErrorIs(t, c.open(), c.err, c.name)
	}
	// A luks parameter error is this package's too.
	_, err := OpenPlain(ctx, "/dev/null", "p", []byte("x"), PlainParams{Hash: "sha256:x"}, OpenOptions{})
	assert.ErrorIs(t, err, ErrInvalidParameter)
	assert.ErrorIs(t, err, luks.ErrInvalidParameter)
}

func TestEphemeralStatus(t *testing.T) {
	assert.Equal(t, "CRYPT-PLAIN-swap", dm.PlainUUID("swap"))
	assert.Equal(t, "CRYPT-PLAIN-EPHEMERAL-swap", dm.EphemeralUUID("swap"))
	for _, c := range []struct {
		name, uuid string
		want       bool
	}{
		{"swap", "CRYPT-PLAIN-EPHEMERAL-swap", true},
		{"swap", "CRYPT-PLAIN-swap", false},
		// cryptsetup's mapping named EPHEMERAL-swap: its uuid ends in its own name.
		{"EPHEMERAL-swap", "CRYPT-PLAIN-EPHEMERAL-swap", false},
		{"swap", "CRYPT-LUKS1-0e6c6e564e8e455495d78dc6342abbd7-swap", false},
	} {
		s := &MappingStatus{Name: c.name, UUID: c.uuid, Type: dm.TypeFromUUID(c.uuid)}
		assert.Equal(t, c.want, s.Ephemeral(), "%s %s", c.name, c.uuid)
	}
}
