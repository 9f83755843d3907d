package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLuks2ConfigSideBySide runs cryptsetup 2.6.1's config action and ours on copies of
// the same images: the same exit code, stdout and stderr (for usage errors the message
// after popt's usage block), and the same image bytes after
// (both header copies, sequence ID one up per write: the priority and the labels are two
// writes). It covers labels and subsystems set, cleared and cut to 47 bytes, priorities
// prefer/ignore/normal (normal drops the member), inactive and out-of-range slots, the
// usage errors, LUKS1, a device without a header, a missing device and --header.
func TestLuks2ConfigSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	src := t.TempDir()
	luks2HeaderImages(t, src)
	// An image with slot 1 (argon2id) at priority prefer and a label, made by cryptsetup.
	copyFile(t, filepath.Join(src, "a.img"), filepath.Join(src, "p.img"))
	r := runIn(t, src, cs, "pass0\npass1\n", "luksAddKey", "p.img", "-S", "1", "--pbkdf", "argon2id", "--pbkdf-force-iterations", "4", "--pbkdf-memory", "32", "--pbkdf-parallel", "1")
	require.Equal(t, 0, r.code, r.stderr)
	r = runIn(t, src, cs, "", "config", "p.img", "--priority", "prefer", "-S", "1", "--label", "old", "--subsystem", "oldsub")
	require.Equal(t, 0, r.code, r.stderr)

	long := strings.Repeat("x", 60)
	cases := [][]string{
		{"config", "a.img", "--label", "hello", "--subsystem", "sub"},
		{"config", "-v", "g.img", "--label", "ours"},
		{"config", "p.img", "--label", ""},
		{"config", "p.img", "--subsystem", "only-sub"},
		{"config", "b.img", "--label", long, "--subsystem", long},
		{"config", "a.img", "--label", `a"b\c/é`},
		{"config", "a.img", "--priority", "prefer", "-S", "0"},
		{"config", "-v", "p.img", "--priority", "normal", "-S", "1"},
		{"config", "p.img", "--priority", "ignore", "-S", "1"},
		{"config", "p.img", "--priority", "prefer", "-S", "1"},
		{"config", "p.img", "--priority", "ignore", "-S", "0", "--label", "both", "--subsystem", "s"},
		{"config", "g.img", "--priority", "prefer", "--key-slot", "0"},
		{"config", "-v", "a.img", "--priority", "ignore", "-S", "5", "--label", "never"},
		{"config", "a.img", "--priority", "ignore", "-S", "40"},
		{"config", "a.img", "--priority", "ignore", "-S", "-1"},
		{"config", "a.img", "--priority", "Prefer", "-S", "0"},
		{"config", "a.img", "--priority", "ignore"},
		{"config", "a.img"},
		{"config", "-S", "0", "a.img"},
		{"config"},
		{"config", "a.img", "--uuid", "5", "--label", "x"},
		{"luksDump", "a.img", "--priority", "prefer"},
		{"config", "a.img", "--type", "luks1", "--label", "t1"},
		{"config", "a.img", "--type", "luks2", "--label", "t2"},
		{"config", "l1.img", "--label", "x"},
		{"config", "-v", "l1.img", "--priority", "prefer", "-S", "0"},
		{"config", "zero.img", "--label", "x"},
		{"config", "missing.img", "--label", "x"},
		{"config", "zero.img", "--header", "a.img", "--label", "hdr"},
		{"config", "a.img", "--header", "missing.img", "--label", "hdr"},
	}
	images := []string{"a.img", "b.img", "g.img", "p.img", "l1.img", "zero.img"}
	for _, args := range cases {
		dirs := [2]string{t.TempDir(), t.TempDir()}
		var res [2]result
		for i, p := range []string{cs, binPath} {
			for _, img := range images {
				copyFile(t, filepath.Join(src, img), filepath.Join(dirs[i], img))
			}
			res[i] = runIn(t, dirs[i], p, "", args...)
		}
		assert.Equal(t, res[0].code, res[1].code, "%v: %s", args, res[1].stderr)
		assert.Equal(t, res[0].stdout, res[1].stdout, "%v", args)
		if strings.HasPrefix(res[0].stderr, "Usage:") {
			// popt's usage block lists each program's own options; the message is the last line.
			assert.True(t, strings.HasPrefix(res[1].stderr, "Usage:"), "%v: %s", args, res[1].stderr)
			assert.Equal(t, lastLine(res[0].stderr), lastLine(res[1].stderr), "%v", args)
		} else {
			assert.Equal(t, res[0].stderr, res[1].stderr, "%v", args)
		}
		for _, img := range images {
			want, err := os.ReadFile(filepath.Join(dirs[0], img))
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join(dirs[1], img))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, got), "%v: %s differs from cryptsetup's", args, img)
		}
	}

	// The result is what cryptsetup reads back, after two writes (epoch two up).
	dir := t.TempDir()
	copyFile(t, filepath.Join(src, "p.img"), filepath.Join(dir, "p.img"))
	before := runIn(t, dir, cs, "", "luksDump", "p.img")
	require.Equal(t, 0, before.code, before.stderr)
	m := regexp.MustCompile(`Epoch:         \t(\d+)\n`).FindStringSubmatch(before.stdout)
	require.NotNil(t, m, before.stdout)
	epoch, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	r = runIn(t, dir, binPath, "", "config", "p.img", "--priority", "ignore", "-S", "1", "--label", "new", "--subsystem", "ns")
	require.Equal(t, 0, r.code, r.stderr)
	d := runIn(t, dir, cs, "", "luksDump", "p.img")
	require.Equal(t, 0, d.code, d.stderr)
	assert.Contains(t, d.stdout, "Label:         \tnew\n")
	assert.Contains(t, d.stdout, "Subsystem:     \tns\n")
	assert.Contains(t, d.stdout, "\tPriority:   ignored\n")
	assert.Contains(t, d.stdout, fmt.Sprintf("Epoch:         \t%d\n", epoch+2))
	assert.NotContains(t, before.stdout, "Label:         \tnew\n")
}
