package luks

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// systemdTokenPlugin finds systemd's token plugin for typ where cryptsetup 2.6.1 loads it
// from (the Debian package systemd installs them).
func systemdTokenPlugin(t *testing.T, typ string) {
	t.Helper()
	for _, dir := range []string{"/lib/x86_64-linux-gnu/cryptsetup", "/usr/lib/x86_64-linux-gnu/cryptsetup"} {
		if _, err := os.Stat(filepath.Join(dir, "libcryptsetup-token-"+typ+".so")); err == nil {
			return
		}
	}
	testenv.Missing(t, "cryptsetup token plugin libcryptsetup-token-"+typ+".so", "apt-get install systemd")
}

// TestDumpSystemdTokensMatchCryptsetup dumps headers holding one systemd token each, valid
// ones as systemd-cryptenroll writes them and malformed ones, and compares with
// `cryptsetup luksDump` with systemd 252's plugins loaded. The tokens are imported with
// --disable-external-tokens: with the plugins loaded cryptsetup refuses to store most
// malformed ones. Where the 2.6.1/252 pair crashes (crash), the test checks that it does
// and that ours prints the dump without plugin lines (what cryptsetup prints with the
// plugins disabled).
func TestDumpSystemdTokensMatchCryptsetup(t *testing.T) {
	cryptsetupBin(t)
	for _, typ := range []string{"systemd-tpm2", "systemd-fido2", "systemd-pkcs11"} {
		systemdTokenPlugin(t, typ)
	}
	dir := t.TempDir()
	base := newImage(t, dir, "base.img", 16<<20)
	mustCS(t, []byte("pass0"), "luksFormat", "--type", "luks2", "-q", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "-", base)

	const (
		tpm  = `{"type":"systemd-tpm2","keyslots":["0"],`
		fido = `{"type":"systemd-fido2","keyslots":["0"],`
		p11  = `{"type":"systemd-pkcs11","keyslots":["0"],`
		// 48 bytes: three full lines of hex and a line break at every 16th byte.
		b48 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"
	)
	cases := []struct {
		name, json string
		extra      bool // the plugin prints its lines
		crash      bool
	}{
		// systemd-cryptenroll --tpm2-device=auto (252), with and without PIN, sha1 bank and RSA.
		{"tpm2 enrolled", tpm + `"tpm2-blob":"` + b48 + `","tpm2-pcrs":[7],"tpm2-pcr-bank":"sha256","tpm2-primary-alg":"ecc","tpm2-policy-hash":"3f9a0c51b2e4d6f80a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071","tpm2-pin":false}`, true, false},
		{"tpm2 pin rsa sha1", tpm + `"tpm2-blob":"AJ4AIP/x+w==","tpm2-pcrs":[0,7,11,23],"tpm2-pcr-bank":"SHA1","tpm2-primary-alg":"RSA","tpm2-policy-hash":" 0A0b ","tpm2-pin":true}`, true, false},
		{"tpm2 systemd 249 fields only", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[],"tpm2-policy-hash":""}`, true, false},
		{"tpm2 signed policy", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7.0,1e1],"tpm2-policy-hash":"ab","tpm2_pubkey_pcrs":[11],"tpm2_pubkey":"` + b48 + `"}`, true, false},
		{"tpm2 later systemd's fields", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7],"tpm2-policy-hash":"ab","tpm2-salt":"","tpm2_srk":"gQAAAQ==","tpm2_pubkey":""}`, true, false},
		{"tpm2 no pcrs", tpm + `"tpm2-blob":"AA==","tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 pcr 24", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[24],"tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 pcr negative", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[-1],"tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 pcr fraction", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[1.5],"tpm2-policy-hash":"ab"}`, false, false},
		// systemd 252's json_parse_number sums digits in doubles and scales by glibc's
		// exp10: not correctly rounded, so 70e-1, 0.07e2 and 230e-1 are not integers.
		{"tpm2 pcr 70e-1", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[70e-1],"tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 pcr 0.07e2", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[0.07e2],"tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 pcr 0.7e1", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[0.7e1],"tpm2-policy-hash":"ab"}`, true, false},
		{"tpm2 pcr 700e-2", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[700e-2],"tpm2-policy-hash":"ab"}`, true, false},
		{"tpm2 pcr 2.3e1", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[2.3e1],"tpm2-policy-hash":"ab"}`, true, false},
		{"tpm2 pcr 1.1e1", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[1.1e1],"tpm2-policy-hash":"ab"}`, true, false},
		{"tpm2 pcr 0.21e2", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[0.21e2],"tpm2-policy-hash":"ab"}`, true, false},
		{"tpm2 pcr 230e-1", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[230e-1],"tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 pcr 7E+0", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7E+0,0.0,-0],"tpm2-policy-hash":"ab"}`, true, false},
		{"tpm2 pcr 7.", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7.],"tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 empty fraction elsewhere", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7],"tpm2-policy-hash":"ab","x":1.e5}`, false, false},
		{"tpm2 pcr string", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":["7"],"tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 pcrs not array", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":7,"tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 bank md5", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7],"tpm2-pcr-bank":"md5","tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 bank null", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7],"tpm2-pcr-bank":null,"tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 alg padded", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7],"tpm2-primary-alg":"ecc ","tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 blob unpadded", tpm + `"tpm2-blob":"AA","tpm2-pcrs":[7],"tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 blob stray bits", tpm + `"tpm2-blob":"AB==","tpm2-pcrs":[7],"tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 blob after padding", tpm + `"tpm2-blob":"AA==AA==","tpm2-pcrs":[7],"tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 blob number", tpm + `"tpm2-blob":5,"tpm2-pcrs":[7],"tpm2-policy-hash":"ab"}`, false, false},
		{"tpm2 no policy hash", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7]}`, false, false},
		{"tpm2 policy hash odd", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7],"tpm2-policy-hash":"abc"}`, false, false},
		{"tpm2 policy hash not hex", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7],"tpm2-policy-hash":"zz"}`, false, false},
		{"tpm2 pin number", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7],"tpm2-policy-hash":"ab","tpm2-pin":1}`, false, false},
		{"tpm2 pubkey pcrs without key", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7],"tpm2-policy-hash":"ab","tpm2_pubkey_pcrs":[1]}`, false, false},
		{"tpm2 NaN elsewhere", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7],"tpm2-policy-hash":"ab","x":NaN}`, false, false},
		{"tpm2 leading zero elsewhere", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7],"tpm2-policy-hash":"ab","x":01.5}`, false, false},
		{"tpm2 NUL in a string", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7],"tpm2-policy-hash":"ab","x":"a\u0000b"}`, false, false},
		{"tpm2 invalid UTF-8", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7],"tpm2-policy-hash":"ab","x":"` + "\xff" + `"}`, false, false},
		{"tpm2 NUL in a key", tpm + `"tpm2-blob":"AA==","tpm2-pcrs":[7],"tpm2-policy-hash":"ab","x\u0000y":1}`, true, false},

		// systemd-cryptenroll --fido2-device=auto (252) and a 248-era token.
		{"fido2 enrolled", fido + `"fido2-credential":"` + b48 + `","fido2-salt":"c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdHNhbHQ=","fido2-rp":"io.systemd.cryptsetup","fido2-clientPin-required":true,"fido2-up-required":true,"fido2-uv-required":false}`, true, false},
		{"fido2 systemd 248", fido + `"fido2-credential":"AAEC","fido2-salt":"AAEC"}`, true, false},
		{"fido2 empty and odd flags", fido + `"fido2-credential":"","fido2-salt":"","fido2-rp":"","fido2-clientPin-required":5,"fido2-up-required":null,"fido2-uv-required":"true"}`, true, false},
		{"fido2 no credential", fido + `"fido2-salt":"AA=="}`, false, false},
		{"fido2 no salt", fido + `"fido2-credential":"AA=="}`, false, false},
		{"fido2 credential bad base64", fido + `"fido2-credential":"AA=","fido2-salt":"AA=="}`, false, false},
		{"fido2 salt bad base64", fido + `"fido2-credential":"AA==","fido2-salt":"A*=="}`, false, false},
		{"fido2 NUL in rp", fido + `"fido2-credential":"AA==","fido2-salt":"AA==","fido2-rp":"a\u0000b"}`, false, false},
		{"fido2 credential number", fido + `"fido2-credential":5,"fido2-salt":"AA=="}`, false, true},
		{"fido2 salt null", fido + `"fido2-credential":"AA==","fido2-salt":null}`, false, true},
		{"fido2 rp number", fido + `"fido2-credential":"AA==","fido2-salt":"AA==","fido2-rp":5}`, false, true},

		// systemd-cryptenroll --pkcs11-token-uri=… (252).
		{"pkcs11 enrolled", p11 + `"pkcs11-uri":"pkcs11:model=PKCS%2315%20emulated;manufacturer=piv_II;serial=5c8b3c3f0c0d2f1a;token=Test%20Token;id=%02;type=private","pkcs11-key":"` + b48 + b48 + `"}`, true, false},
		{"pkcs11 whitespace in key", p11 + `"pkcs11-uri":"pkcs11:","pkcs11-key":" AA\nE= \t"}`, true, false},
		{"pkcs11 empty key", p11 + `"pkcs11-uri":"","pkcs11-key":""}`, true, false},
		{"pkcs11 no uri", p11 + `"pkcs11-key":"AA=="}`, false, false},
		{"pkcs11 no key", p11 + `"pkcs11-uri":"pkcs11:"}`, false, false},
		{"pkcs11 key bad base64", p11 + `"pkcs11-uri":"pkcs11:","pkcs11-key":"AAE"}`, false, false},
		{"pkcs11 NaN elsewhere", p11 + `"pkcs11-uri":"pkcs11:","pkcs11-key":"AA==","x":[-Infinity]}`, false, false},
		{"pkcs11 uri number", p11 + `"pkcs11-uri":5,"pkcs11-key":"AA=="}`, false, true},
		{"pkcs11 uri null", p11 + `"pkcs11-uri":null,"pkcs11-key":"AA=="}`, false, true},
		{"pkcs11 key number", p11 + `"pkcs11-uri":"pkcs11:","pkcs11-key":5}`, false, true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := copyImage(t, base, filepath.Join(dir, fmt.Sprintf("t%02d.img", i)))
			mustCS(t, []byte(c.json), "token", "import", "--disable-external-tokens", img)
			plain := mustCS(t, nil, "luksDump", "--disable-external-tokens", img)
			f, err := os.Open(img)
			require.NoError(t, err)
			defer f.Close()
			h, err := ReadHeader2(f)
			require.NoError(t, err)
			var ours, noExt bytes.Buffer
			require.NoError(t, h.Dump(&ours, img))
			require.NoError(t, h.DumpWith(&noExt, img, DumpOptions{DisableExternalTokens: true}))
			assert.Equal(t, plain, noExt.String(), "DisableExternalTokens")
			if c.crash {
				// systemd's assert aborts (unbase64mem of NULL) or strdup(NULL) faults;
				// either way cryptsetup prints no dump.
				cmd := exec.Command(cryptsetupBin(t), "luksDump", img)
				out, err := cmd.Output()
				require.Error(t, err)
				ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
				require.True(t, ws.Signaled(), "cryptsetup should crash on this token: %v", err)
				assert.Contains(t, []syscall.Signal{syscall.SIGABRT, syscall.SIGSEGV}, ws.Signal())
				assert.Empty(t, out)
				assert.Equal(t, plain, ours.String())
				return
			}
			r := runCS(t, nil, "luksDump", img)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, r.stdout, ours.String())
			assert.Equal(t, c.extra, r.stdout != plain, "whether the plugin printed lines")
		})
	}
}
