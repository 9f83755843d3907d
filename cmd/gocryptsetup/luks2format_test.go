package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// luks2Random hides salts and digests (the only random parts once --uuid is given) in a
// LUKS2 luksDump.
var luks2Random = regexp.MustCompile(`(?m)^(\t(?:Salt|Digest):\s+)((?:[0-9a-f]{2} )+\n(?:\t\s+(?:[0-9a-f]{2} )+\n)*)`)

// TestLuksFormatLUKS2SideBySide runs luksFormat with cryptsetup 2.6.1 and with gocryptsetup
// on identical images: same exit code, stdout and stderr, and, when both succeed, the same
// luksDump (salts and digests masked) and cryptsetup opens ours. The default --type is
// LUKS2, as in cryptsetup 2.6.
func TestLuksFormatLUKS2SideBySide(t *testing.T) {
	cs := cryptsetup(t)
	const uuid = "--uuid=5c2f9a40-1b7e-4c3d-8e6f-0a1b2c3d4e5f"
	fast := []string{iters, "--pbkdf", "argon2id", "--pbkdf-memory", "32", "--pbkdf-parallel", "1"}
	_ = fast
	tests := []struct {
		name     string
		args     []string
		code     int
		sameMsg  bool // compare the last stderr line only (usage errors)
		detached bool
	}{
		{name: "default type argon2id", args: []string{"-q", uuid, "--pbkdf-force-iterations=4", "--pbkdf-memory=32", "--pbkdf-parallel=1", "img"}},
		{name: "type luks", args: []string{"-q", "--type", "luks", uuid, "--pbkdf", "pbkdf2", iters, "img"}},
		{name: "luks2 options", args: []string{"-q", "-v", "--type", "luks2", uuid, "--pbkdf", "argon2i", "--pbkdf-force-iterations=5", "--pbkdf-memory=64",
			"--pbkdf-parallel=1", "--sector-size", "512", "--label", "my label", "--subsystem", "sys", "--luks2-metadata-size", "64k",
			"--luks2-keyslots-size", "2MiB", "-c", "aes-cbc-essiv:sha256", "-s", "256", "--hash", "sha512", "-S", "3", "img"}},
		{name: "offset", args: []string{"-q", uuid, "--pbkdf", "pbkdf2", iters, "--offset", "65536", "img"}},
		{name: "align-payload", args: []string{"-q", uuid, "--pbkdf", "pbkdf2", iters, "--align-payload", "8192", "--luks2-metadata-size", "32768", "img"}},
		{name: "detached", args: []string{"-q", uuid, "--pbkdf", "pbkdf2", iters, "--header", "hdr", "img"}, detached: true},
		{name: "bad metadata size", args: []string{"-q", uuid, "--luks2-metadata-size", "20k", "img"}, code: 1},
		{name: "bad size unit", args: []string{"-q", "--luks2-metadata-size", "16x", "img"}, code: 1, sameMsg: true},
		{name: "bad sector size", args: []string{"-q", "--sector-size", "1024x", "img"}, code: 1, sameMsg: true},
		{name: "sector size 8192", args: []string{"-q", "--sector-size", "8192", "img"}, code: 1, sameMsg: true},
		{name: "bad pbkdf", args: []string{"-q", "--pbkdf", "scrypt", "img"}, code: 1, sameMsg: true},
		{name: "force iterations too low", args: []string{"-q", "--pbkdf", "argon2id", "--pbkdf-force-iterations=3", "img"}, code: 1},
		{name: "memory too high", args: []string{"-q", "--pbkdf-memory", "4194305", "img"}, code: 1},
		{name: "bad uuid", args: []string{"-q", "--uuid", "x", "--pbkdf", "pbkdf2", iters, "img"}, code: 1},
		{name: "offset and align", args: []string{"-q", "--offset", "4096", "--align-payload", "4096", "img"}, code: 1, sameMsg: true},
		{name: "offset not 4k", args: []string{"-q", "--offset", "100", "--pbkdf", "pbkdf2", iters, "img"}, code: 1},
		{name: "key slot 32", args: []string{"-q", "-S", "32", "--pbkdf", "pbkdf2", iters, "img"}, code: 1},
		{name: "luks1 still available", args: []string{"-q", "--type", "luks1", uuid, iters, "img"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dirs := [2]string{t.TempDir(), t.TempDir()}
			for _, d := range dirs {
				require.NoError(t, os.WriteFile(filepath.Join(d, "img"), nil, 0o600))
				require.NoError(t, os.Truncate(filepath.Join(d, "img"), 40<<20))
			}
			args := append([]string{"luksFormat"}, tc.args...)
			want := runIn(t, dirs[0], cs, "secret\n", args...)
			got := runIn(t, dirs[1], binPath, "secret\n", args...)
			require.Equal(t, tc.code, want.code, "cryptsetup: %s", want.stderr)
			assert.Equal(t, want.code, got.code, "exit code (ours: %s)", got.stderr)
			if tc.sameMsg {
				assert.Equal(t, lastLine(want.stderr), strings.Replace(lastLine(got.stderr), "gocryptsetup", "cryptsetup", 1))
			} else {
				assert.Equal(t, want.stdout, got.stdout, "stdout")
				assert.Equal(t, want.stderr, got.stderr, "stderr")
			}
			if want.code != 0 {
				for _, d := range dirs[1:] {
					b, err := os.ReadFile(filepath.Join(d, "img"))
					require.NoError(t, err)
					assert.Equal(t, make([]byte, len(b)), b, "refused: nothing written")
				}
				return
			}
			hdr := "img"
			if tc.detached {
				hdr = "hdr"
			}
			da := runIn(t, dirs[0], cs, "", "luksDump", hdr)
			db := runIn(t, dirs[1], cs, "", "luksDump", hdr)
			require.Equal(t, 0, db.code, db.stderr)
			mask := func(s string) string { return luks2Random.ReplaceAllString(s, "${1}<random>\n") }
			if strings.Contains(tc.name, "luks1") {
				assert.Equal(t, shape(da.stdout), shape(db.stdout))
			} else {
				assert.Equal(t, mask(da.stdout), mask(db.stdout), "luksDump")
			}
			open := []string{"open", "--test-passphrase", "img"}
			if tc.detached {
				open = append(open, "--header", "hdr")
			}
			r := runIn(t, dirs[1], cs, "secret\n", open...)
			assert.Equal(t, 0, r.code, "cryptsetup opens ours: %s", r.stderr)
		})
	}
}
