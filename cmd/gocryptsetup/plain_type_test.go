package main

import (
	"os"
	"path/filepath"
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
