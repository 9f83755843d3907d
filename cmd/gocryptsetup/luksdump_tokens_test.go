package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// TestLuksDumpDisableExternalTokens: luksDump prints the lines systemd 252's token plugins
// add, and --disable-external-tokens leaves them out (the luks2-keyring handler, built
// in, still prints), as cryptsetup 2.6.1 does with the plugins installed; on LUKS1 the
// option changes nothing.
func TestLuksDumpDisableExternalTokens(t *testing.T) {
	cs := cryptsetup(t)
	found := false
	for _, dir := range []string{"/lib/x86_64-linux-gnu/cryptsetup", "/usr/lib/x86_64-linux-gnu/cryptsetup"} {
		if _, err := os.Stat(filepath.Join(dir, "libcryptsetup-token-systemd-tpm2.so")); err == nil {
			found = true
		}
	}
	if !found {
		testenv.Missing(t, "cryptsetup token plugin libcryptsetup-token-systemd-tpm2.so", "apt-get install systemd")
	}
	dir := t.TempDir()
	luks2HeaderImages(t, dir)
	copyFile(t, filepath.Join(dir, "a.img"), filepath.Join(dir, "t.img"))
	for _, tok := range []string{
		`{"type":"systemd-tpm2","keyslots":["0"],"tpm2-blob":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g","tpm2-pcrs":[0,7],"tpm2-pcr-bank":"sha256","tpm2-primary-alg":"ecc","tpm2-policy-hash":"3f9a0c51","tpm2-pin":true}`,
		`{"type":"systemd-fido2","keyslots":["0"],"fido2-credential":"AAEC","fido2-salt":"AAEC","fido2-rp":"io.systemd.cryptsetup","fido2-clientPin-required":false,"fido2-up-required":true,"fido2-uv-required":false}`,
		`{"type":"systemd-pkcs11","keyslots":["0"],"pkcs11-uri":"pkcs11:token=T","pkcs11-key":"AAECAw=="}`,
	} {
		r := runIn(t, dir, cs, tok, "token", "import", "--disable-external-tokens", "t.img")
		require.Equal(t, 0, r.code, r.stderr)
	}
	r := runIn(t, dir, cs, "", "token", "add", "--key-description", "user:k", "t.img")
	require.Equal(t, 0, r.code, r.stderr)

	for _, args := range [][]string{
		{"luksDump", "t.img"},
		{"luksDump", "--disable-external-tokens", "t.img"},
		{"--disable-external-tokens", "luksDump", "l1.img"},
	} {
		c := runIn(t, dir, cs, "", args...)
		g := runIn(t, dir, binPath, "", args...)
		require.Equal(t, 0, c.code, "%v: %s", args, c.stderr)
		assert.Equal(t, c, g, "%v", args)
	}
	with := runIn(t, dir, binPath, "", "luksDump", "t.img").stdout
	without := runIn(t, dir, binPath, "", "luksDump", "--disable-external-tokens", "t.img").stdout
	assert.Contains(t, with, "tpm2-hash-pcrs:")
	assert.NotContains(t, without, "tpm2-hash-pcrs:")
	assert.NotContains(t, without, "fido2-credential:")
	assert.NotContains(t, without, "pkcs11-uri:")
	assert.Contains(t, without, "Key description: user:k")
}
