package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestPlainTypeOutsideOpen: --type plain is a type for open only. The LUKS actions fail as
// cryptsetup's do (luksFormat writes nothing), luksOpen forces LUKS (so --skip is a usage
// error), and the actions that ignore the type still run.
func TestPlainTypeOutsideOpen(t *testing.T) {
	cs := cryptsetup(t)
	for _, args := range [][]string{
		{"luksFormat", "--type", "plain", "-q", iters, "zero.img"},
		{"luksFormat", "--type", "plain", "-q", "-v", iters, "zero.img"},
		{"luksFormat", "--type", "plain", "-q", iters, "missing.img"},
		{"isLuks", "--type", "plain", "xts.img"},
		{"isLuks", "--type", "plain", "-v", "xts.img"},
		{"isLuks", "--type", "plain", "missing.img"},
		{"luksUUID", "--type", "plain", "xts.img"},
		{"luksDump", "--type", "plain", "xts.img"},
		{"luksDump", "--type", "plain", "-v", "xts.img"},
		{"luksDump", "--type", "plain", "missing.img"},
		{"luksAddKey", "--type", "plain", "xts.img"},
		{"luksRemoveKey", "--type", "plain", "xts.img"},
		{"luksChangeKey", "--type", "plain", "xts.img"},
		{"luksKillSlot", "--type", "plain", "xts.img", "1"},
		{"luksKillSlot", "--type", "plain", "zero.img", "1"},
		{"luksHeaderBackup", "--type", "plain", "xts.img", "--header-backup-file", "hb"},
		{"luksOpen", "--type", "plain", "--skip", "1", "zero.img", "x"},
		{"luksOpen", "--type", "plain", "--test-passphrase", "xts.img"},
	} {
		dir := copyTemplates(t, "xts.img", "zero.img")
		want := runIn(t, dir, cs, "pass0\n", args...)
		dir2 := copyTemplates(t, "xts.img", "zero.img")
		got := runIn(t, dir2, binPath, "pass0\n", args...)
		assert.Equal(t, want.code, got.code, "%v: exit code", args)
		assert.Equal(t, lastLine(want.stderr), lastLine(got.stderr), "%v: stderr", args)
		assert.Equal(t, want.stdout, got.stdout, "%v: stdout", args)
		for _, f := range []string{"xts.img", "zero.img", "hb", "missing.img"} {
			a, b := fileSum(t, filepath.Join(dir, f)), fileSum(t, filepath.Join(dir2, f))
			assert.Equal(t, a, b, "%v: %s differs", args, f)
		}
		if _, err := os.Stat(filepath.Join(dir, "hb")); err == nil {
			t.Logf("%v: both wrote the backup", args)
		}
	}
}

// TestDeviceSizeSideBySide: --device-size is read as cryptsetup reads it — units, zero,
// multiples of 512 — with the same messages. A value cryptsetup accepts gets past option
// parsing here too (both then fail later without device-mapper, with different texts).
func TestDeviceSizeSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	dir := copyTemplates(t, "zero.img")
	for _, v := range []string{"0", "0M", "512", "1000", "01000", "1M", "1m", "1K", "1KiB", "1kiB", "1kB", "1KB", "1MB", "1TB", "1G", "1t", "1S", "3S", "1SB", "1SiB",
		"1M1", "1.5M", "-512", "+512", " 512", "512 ", "512b", "1P", "1Ki", "1iB", "0x200", "1e3", "",
		"18446744073709551615", "18446744073709551616", "9223372036854775808", "18014398509481984K", "18014398509481983K"} {
		args := []string{"open", "--type", "plain", "-q", "--device-size", v, "zero.img", "x"}
		want := runIn(t, dir, cs, "pw\n", args...)
		got := runIn(t, dir, binPath, "pw\n", args...)
		assert.Equal(t, want.code, got.code, "%q: exit code", v)
		w, g := lastLine(want.stderr), lastLine(got.stderr)
		if strings.HasPrefix(w, "PROG:") || strings.HasPrefix(g, "PROG:") {
			assert.Equal(t, w, g, "%q: usage error", v)
		}
	}
	// The bytes they stand for.
	for v, want := range map[string]int64{"1M": 1 << 20, "1MB": 1000000, "1S": 512, "3SB": 1536, "1KiB": 1024, "2k": 2048, "1T": 1 << 40, "1TB": 1e12, "4096": 4096} {
		got, err := parseSize(v)
		if assert.NoError(t, err, v) {
			assert.Equal(t, want, got, v)
		}
	}
}
