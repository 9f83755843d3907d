package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// open --type plain on the host, side by side with cryptsetup 2.6.1: every check that comes
// before device-mapper (option rules, arguments, cipher, device, the signature question)
// must fail with the same words and exit code. Mapping itself is tested in the VM
// (dmcrypt's TestVMPlain).
func TestOpenPlainChecksSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	dir := copyTemplates(t, "xts.img", "zero.img")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key"), []byte("0123456789abcdef0123456789abcdef"), 0o600))
	for _, args := range [][]string{
		{"open", "--type", "luks", "--shared", "zero.img", "x"},
		{"open", "--skip", "8", "zero.img", "x"},
		{"open", "-p", "8", "zero.img", "x"},
		{"open", "--offset", "8", "zero.img", "x"},
		{"open", "--sector-size", "4096", "zero.img", "x"},
		{"open", "--type", "plain", "--sector-size", "1000", "zero.img", "x"},
		{"open", "--type", "plain", "--sector-size", "8192", "zero.img", "x"},
		{"open", "--type", "plain", "--iv-large-sectors", "zero.img", "x"},
		{"open", "--type", "plain", "--sector-size", "512", "--iv-large-sectors", "zero.img", "x"},
		{"open", "--type", "plain", "--test-passphrase", "zero.img", "x"},
		{"open", "--type", "plain", "--size", "8", "--device-size", "4096", "zero.img", "x"},
		{"open", "--type", "plain", "--skip", "-1", "zero.img", "x"},
		{"open", "--type", "plain", "-s", "250", "zero.img", "x"},
		{"open", "--type", "plain", "zero.img"},
		{"plainOpen", "zero.img"},
		{"open", "--type", "plain", "-c", "rot13-cbc-plain", "zero.img", "x"},
		{"open", "--type", "plain", "-q", "-c", "aes-xts-plain64", "-s", "200", "zero.img", "x"},
		{"open", "--type", "plain", "-q", "-s", "8200", "zero.img", "x"},
		{"open", "--type", "plain", "-q", "-c", "aes xts", "zero.img", "x"},
		{"open", "--type", "plain", "-q", "--cipher=-xts", "zero.img", "x"},
		{"open", "--type", "plain", "-q", "--cipher=", "zero.img", "x"},
		{"open", "--type", "plain", "missing.img", "x"},
		{"create", "x", "missing.img"},
		// cryptsetup 2.6.1 opens plain devices with crypt_init(DEVICE): --header is ignored.
		{"open", "--type", "plain", "-q", "--header", "xts.img", "zero.img", "x"},
	} {
		want := runIn(t, dir, cs, "", args...)
		got := runIn(t, dir, binPath, "", args...)
		assert.Equal(t, want.code, got.code, "%v: %s / %s", args, want.stderr, got.stderr)
		assert.Equal(t, want.stdout, got.stdout, "%v", args)
		assert.Equal(t, lastLine(want.stderr), lastLine(got.stderr), "%v", args)
	}
}

// Without --offset a LUKS (or any signed) device makes cryptsetup warn and ask before a
// plain mapping could overwrite it; "no" aborts before any key is read.
func TestOpenPlainSignatureQuestionSideBySide(t *testing.T) {
	cs := cryptsetup(t)
	script := lookScript(t)
	for _, tc := range []struct {
		name, args, typed, code string
	}{
		{"luks refused", "open --type plain xts.img x", "no\n", "1"},
		{"plainOpen alias refused", "plainOpen xts.img x", "no\n", "1"},
		{"create alias refused", "create x xts.img", "no\n", "1"},
		{"key file refused", "open --type plain -d key xts.img x", "no\n", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dirA, dirB := copyTemplates(t, "xts.img"), copyTemplates(t, "xts.img")
			for _, d := range []string{dirA, dirB} {
				require.NoError(t, os.WriteFile(filepath.Join(d, "key"), []byte("0123456789abcdef0123456789abcdef"), 0o600))
			}
			want := underPty(t, script, dirA, cs, tc.args, tc.typed)
			got := underPty(t, script, dirB, binPath, tc.args, tc.typed)
			assert.Equal(t, want, got)
			assert.Contains(t, got, "Detected device signature(s) on xts.img. Proceeding further may damage existing data.")
			assert.True(t, strings.HasSuffix(got, "rc="+tc.code+"\n"), "exit code: %q", got)
		})
	}
}

func TestVerifyOpen(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"open", "--type", "plain", "--shared", "--skip", "8", "--offset", "8", "--sector-size", "4096", "--iv-large-sectors", "d", "n"}, ""},
		{[]string{"open", "--shared", "d", "n"}, "Option --shared is allowed only for open of plain device."},
		{[]string{"open", "--type", "luks1", "--skip", "1", "d", "n"}, "Option --skip is supported only for open of plain and loopaes devices."},
	} {
		o, _, err := parseArgs(tc.args[1:])
		require.NoError(t, err)
		assert.Equal(t, tc.want, verifyOpen(o), "%v", tc.args)
	}
	typ, args := openAliasType("create", []string{"name", "dev"})
	assert.Equal(t, "plain", typ)
	assert.Equal(t, []string{"dev", "name"}, args)
}
