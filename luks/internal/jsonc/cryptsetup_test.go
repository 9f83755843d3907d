package jsonc

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func cryptsetup(t *testing.T, stdin string, args ...string) {
	t.Helper()
	bin := "/usr/sbin/cryptsetup"
	if _, err := os.Stat(bin); err != nil {
		bin = testenv.LookPath(t, "cryptsetup", "apt-get install cryptsetup-bin")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "cryptsetup %s: %s", strings.Join(args, " "), out)
}

// jsonAreas returns the JSON areas of both LUKS2 header copies of an image.
func jsonAreas(t *testing.T, img string) [2][]byte {
	t.Helper()
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(b, []byte("LUKS\xba\xbe\x00\x02")))
	hdrSize := int(binary.BigEndian.Uint64(b[8:16]))
	require.True(t, bytes.HasPrefix(b[hdrSize:], []byte("SKUL\xba\xbe\x00\x02")))
	return [2][]byte{b[4096:hdrSize], b[hdrSize+4096 : 2*hdrSize]}
}

// TestCryptsetupMetadata re-serializes the JSON areas cryptsetup 2.6.1 writes, tokens of
// systemd, clevis and hand-made ones with every escaped character included, and expects
// the very bytes cryptsetup wrote.
func TestCryptsetupMetadata(t *testing.T) {
	dir := t.TempDir()
	fast := []string{"--pbkdf-force-iterations", "4", "--pbkdf-memory", "32", "--pbkdf-parallel", "1"}
	configs := []struct {
		name string
		args []string
		more func(t *testing.T, img string)
	}{
		{"argon2id", append([]string{"--pbkdf", "argon2id"}, fast...), nil},
		{"argon2i-4k-64k", append([]string{"--pbkdf", "argon2i", "--sector-size", "4096",
			"--luks2-metadata-size", "64k", "--luks2-keyslots-size", "1m", "--label", "l/\"x\"", "--subsystem", "sub"}, fast...), nil},
		{"pbkdf2-sha512-aes-cbc", []string{"--pbkdf", "pbkdf2", "--hash", "sha512", "--pbkdf-force-iterations", "1000",
			"-c", "aes-cbc-essiv:sha256", "-s", "256"}, nil},
		{"tokens-and-slots", append([]string{"--pbkdf", "argon2id"}, fast...), func(t *testing.T, img string) {
			tokens := []string{
				`{"type":"systemd-tpm2","keyslots":["0"],"tpm2-blob":"AJ4AIP/x","tpm2-pcrs":[7],"tpm2-pcr-bank":"sha256","tpm2-primary-alg":"ecc","tpm2-policy-hash":"3f9a","tpm2-pin":false}`,
				`{"type":"clevis","keyslots":["1"],"jwe":{"ciphertext":"a/b+c==","encrypted_key":"","iv":"x","protected":"eyJhbGciOiJFQ0RILUVTIn0","tag":"t"}}`,
				`{"type":"x-test","keyslots":[],"s":"q\"b\\s\/f\b\f\n\r\t\u0001\u001f\u007f\u00e9\ud83d\ude00 é","n":-12,"d":1.5e3,"z":null,"t":true,"a":[[],{}]}`,
			}
			kf := filepath.Join(dir, "k2")
			require.NoError(t, os.WriteFile(kf, []byte("second"), 0o600))
			cryptsetup(t, "pass", "luksAddKey", img, kf, "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000")
			for _, tok := range tokens {
				cryptsetup(t, tok, "token", "import", img)
			}
			cryptsetup(t, "", "config", img, "--label", "relabelled", "--priority", "prefer", "--key-slot", "1")
		}},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(dir, c.name+".img")
			require.NoError(t, os.WriteFile(img, nil, 0o600))
			require.NoError(t, os.Truncate(img, 32<<20))
			args := append([]string{"luksFormat", "--type", "luks2", "-q", "--batch-mode", img}, c.args...)
			cryptsetup(t, "pass", args...)
			if c.more != nil {
				c.more(t, img)
			}
			o := buildOracle()
			for i, area := range jsonAreas(t, img) {
				v, n, err := Parse(area)
				require.NoError(t, err, "copy %d", i)
				end := bytes.IndexByte(area, 0)
				require.Equal(t, end, n, "copy %d: Parse stops at the NUL padding", i)
				assert.Equal(t, string(area[:end]), string(Marshal(v)), "copy %d", i)
				if o != nil {
					checkAgainstJSONC(t, o, area)
				}
			}
		})
	}
}
