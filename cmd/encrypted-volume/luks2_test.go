package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// cryptsetupRun runs real cryptsetup with stdin and returns its exit code and output.
func cryptsetupRun(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	cs := testenv.LookPath(t, "cryptsetup", "apt-get install cryptsetup-bin")
	cmd := exec.Command(cs, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	require.NoError(t, err)
	return 0, string(out)
}

// setup makes LUKS2 by default, as cryptsetup 2.6's luksFormat does: step 4 prints what
// cryptsetup luksDump prints for the volume, cryptsetup opens it with the passphrase, the
// mapping gets the LUKS2 header; --type luks1 still makes the walkthrough's LUKS1.
func TestSetupLUKS2ByDefault(t *testing.T) {
	h := newHarness(t, testPass+"\n")
	xvdf := h.dev("xvdf")
	mp := tempMountPoint(t)
	require.Equal(t, 0, h.run("setup", "--device", xvdf, "--mount-point", mp), h.stderr.String())
	out := h.stdout.String()
	assert.Contains(t, out, "Step 3/9: luksFormat "+xvdf+" (LUKS2, aes-xts-plain64, 512-bit, argon2id)...")
	code, dump := cryptsetupRun(t, "", "luksDump", xvdf)
	require.Equal(t, 0, code, dump)
	assert.Contains(t, out, "Step 4/9: luksDump "+xvdf+"...\n"+dump+"Step 5/9:", "step 4 is cryptsetup's luksDump")
	code, msg := cryptsetupRun(t, testPass+"\n", "open", "--test-passphrase", "--type", "luks2", xvdf)
	assert.Equal(t, 0, code, msg)
	assert.Equal(t, []int{2}, h.local.versions)

	// The same volume unlocks, reports and tears down as LUKS2.
	require.Equal(t, 0, h.run("teardown", "--mount-point", mp), h.stderr.String())
	h.setStdin(testPass + "\n")
	require.Equal(t, 0, h.run("unlock", "--device", xvdf, "--mount-point", mp), h.stderr.String())
	assert.Equal(t, []int{2, 2}, h.local.versions)

	h1 := newHarness(t, testPass+"\n")
	xvdg := h1.dev("xvdg")
	require.Equal(t, 0, h1.run("setup", "--type", "luks1", "--device", xvdg, "--mount-point", tempMountPoint(t)), h1.stderr.String())
	assert.Contains(t, h1.stdout.String(), "Step 3/9: luksFormat "+xvdg+" (aes-xts-plain64, 512-bit, sha256)...")
	code, msg = cryptsetupRun(t, "", "isLuks", "--type", "luks1", xvdg)
	assert.Equal(t, 0, code, msg)
	assert.Equal(t, []int{1}, h1.local.versions)
}

// Bad --type and PBKDF options are refused before anything is written.
func TestSetupTypeOptionsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--type", "luks3"},
		{"--type", "luks1", "--pbkdf", "argon2id"},
		{"--type", "luks1", "--pbkdf-memory", "64"},
		{"--pbkdf", "scrypt"},
		{"--pbkdf", "argon2id", "--pbkdf-force-iterations", "3", "--pbkdf-memory", "64"},
		{"--pbkdf-force-iterations", "4", "--pbkdf-memory", "8"},
		{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "999"},
		{"--pbkdf-memory", "4194305"},
	} {
		h := newHarness(t, testPass+"\n")
		xvdf := h.dev("xvdf")
		code := h.run(append([]string{"setup", "--device", xvdf, "--mount-point", tempMountPoint(t)}, args...)...)
		assert.Equal(t, exitOtherFail, code, "%v: %s", args, h.stderr.String())
		b, err := os.ReadFile(xvdf)
		require.NoError(t, err)
		assert.Equal(t, make([]byte, len(b)), b, "%v: nothing written", args)
		assert.Empty(t, h.local.calls, "%v: no side effect", args)
	}
}

// A volume formatted by cryptsetup 2.6's defaults (LUKS2, argon2id) — the walkthrough on a
// current distribution — unlocks, reports its status and tears down here.
func TestUnlockCryptsetupLUKS2Volume(t *testing.T) {
	h := newHarness(t, testPass+"\n")
	nvme := h.dev("nvme1n1")
	code, msg := cryptsetupRun(t, testPass+"\n", "luksFormat", "-q", "--pbkdf-force-iterations", "4", "--pbkdf-memory", "32", "--pbkdf-parallel", "1", nvme)
	require.Equal(t, 0, code, msg)
	const vol = "vol-0123456789abcdef0"
	h.local.resolved[vol] = nvme
	mp := tempMountPoint(t)
	require.Equal(t, 0, h.run("unlock", "--volume-id", vol, "--no-aws", "--mount-point", mp), h.stderr.String())
	assert.Equal(t, []int{2}, h.local.versions)
	h.stdout.Reset()
	require.Equal(t, 0, h.run("status", "--volume-id", vol, "--no-aws", "--mount-point", mp))
	out := h.stdout.String()
	assert.Contains(t, out, "device:    "+nvme+" (LUKS header)")
	assert.Contains(t, out, "mapping:   my_enc_fs open on "+nvme)
	assert.Contains(t, out, "mounted:   /dev/mapper/my_enc_fs on "+mp)
	require.Equal(t, 0, h.run("teardown", "--mount-point", mp))
	assert.Empty(t, h.local.mappings)
	assert.Empty(t, h.local.mounts)

	h.setStdin("wrong\n")
	assert.Equal(t, exitNoPerm, h.run("unlock", "--volume-id", vol, "--no-aws", "--mount-point", mp))
	assert.Contains(t, h.stderr.String(), nvme+": No key available with this passphrase.")
}
