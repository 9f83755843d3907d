package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/luks"
)

const testPass = "correct horse battery staple"

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == hookProbeArg {
		os.Exit(hookProbe(os.Args[2]))
	}
	if len(os.Args) >= 2 && os.Args[1] == runProgramArg {
		os.Exit(run(context.Background(), os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	testMain(m)
}

func TestSetupFromNewVolume(t *testing.T) {
	h := newHarness(t, testPass+"\n")
	mp := tempMountPoint(t)
	nvme := devPath(t, "nvme1n1") // appears at the attach
	code := h.run("setup", "--type", "luks1", "--mount-point", mp, "--root", "/r", "--pbkdf-force-iterations", "1000")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", h.stdout, h.stderr)

	out := h.stdout.String()
	// Every step announces itself, in order, numbered out of nine.
	wantSteps := []string{
		"Step 1/9: create EBS volume (10 GiB gp3 in us-east-1c)...",
		"Step 2/9: attach vol-00000000000000001 to i-0123456789abcdef0 and resolve its local device...",
		"Step 3/9: luksFormat " + nvme + " (aes-xts-plain64, 512-bit, sha256)...",
		"Step 4/9: luksDump " + nvme + "...",
		"Step 5/9: luksOpen " + nvme + " my_enc_fs...",
		"Step 6/9: mkfs.ext4 -m 0 /dev/mapper/my_enc_fs...",
		"Step 7/9: mount /dev/mapper/my_enc_fs " + mp + "...",
		"Step 8/9: disable boot-time unlock (root /r)...",
		"Step 9/9: cryptsetup status my_enc_fs...",
	}
	last := -1
	for _, s := range wantSteps {
		i := strings.Index(out, s)
		require.GreaterOrEqual(t, i, 0, "missing %q in\n%s", s, out)
		require.Greater(t, i, last, "step out of order: %q", s)
		last = i
	}
	assert.Contains(t, out, "VOLUME vol-00000000000000001 10 us-east-1c available")
	assert.Contains(t, out, "ATTACHMENT vol-00000000000000001 i-0123456789abcdef0 /dev/sdf attached")
	assert.Contains(t, out, "/dev/mapper/my_enc_fs is active.")
	assert.Contains(t, out, "unlock --volume-id vol-00000000000000001")
	assert.Equal(t, []string{
		"wait vol-00000000000000001 /dev/sdf",
		"open " + nvme + " my_enc_fs",
		"mkfs mkfs.ext4 -m 0 /dev/mapper/my_enc_fs",
		"mount /dev/mapper/my_enc_fs " + mp,
	}, h.local.calls)
	assert.Equal(t, []string{"create us-east-1c 10 gp3", "attach vol-00000000000000001"}, h.cloud.calls)
	assert.True(t, h.boot.disabled["/r"])
	assert.DirExists(t, mp, "setup creates the mount point like the seed's mkdir")
	assert.NotContains(t, out+h.stderr.String(), testPass, "the passphrase is never printed")
}

func TestSetupSeedOptions(t *testing.T) {
	h := newHarness(t, testPass+"\n")
	xvdf := h.dev("xvdf")
	code := h.run("setup", "--type", "luks1", "--device", xvdf, "--mount-point", tempMountPoint(t),
		"--cipher", "aes-cbc-essiv:sha256", "--key-size", "256", "--hash", "sha1")
	require.Equal(t, 0, code, h.stderr.String())
	assert.Contains(t, h.stdout.String(), "Step 3/9: luksFormat "+xvdf+" (aes-cbc-essiv:sha256, 256-bit, sha1)...")
	assert.Contains(t, h.stdout.String(), "Step 1/9: create EBS volume...\n    skipped: using --device "+xvdf)
	hdr := readHeaderFile(t, xvdf)
	assert.Equal(t, []any{"aes", "cbc-essiv:sha256", "sha1", uint32(32)}, []any{hdr.CipherName, hdr.CipherMode, hdr.HashSpec, hdr.KeyBytes})

	// Without --key-size the size follows the mode, as in cryptsetup: 256 bits for cbc.
	h = newHarness(t, testPass+"\n")
	xvdf = h.dev("xvdf")
	require.Equal(t, 0, h.run("setup", "--type", "luks1", "--device", xvdf, "--mount-point", tempMountPoint(t), "--cipher", "aes-cbc-essiv:sha256"), h.stderr.String())
	hdr = readHeaderFile(t, xvdf)
	assert.Equal(t, []any{"cbc-essiv:sha256", "sha256", uint32(32)}, []any{hdr.CipherMode, hdr.HashSpec, hdr.KeyBytes})
	assert.Empty(t, h.cloud.calls, "--device never talks to EC2")
}

// A failed step names itself, undoes the local state it made, and says how to clean up EC2.
func TestSetupFailedStep(t *testing.T) {
	tests := []struct {
		name      string
		prepare   func(h *harness)
		wantStep  string
		wantCode  int
		wantCalls []string // suffix of the local calls: the cleanup
	}{
		{"mkfs fails", func(h *harness) { h.local.failMkfs = errors.New("mke2fs: exit status 1") },
			"step 6/9 failed (mkfs.ext4 -m 0 /dev/mapper/my_enc_fs): mke2fs: exit status 1", exitOtherFail,
			[]string{"close my_enc_fs"}},
		{"boot config fails", func(h *harness) { h.boot.fail = errors.New("grub.conf: permission denied") },
			"step 8/9 failed (disable boot-time unlock (root /)): grub.conf: permission denied", exitOtherFail,
			[]string{"umount MP", "close my_enc_fs"}},
		{"attach fails", func(h *harness) { h.cloud.failNext = errors.New("AttachmentLimitExceeded") },
			"step 2/9 failed (attach vol-00000000000000001 to i-0123456789abcdef0 and resolve its local device): AttachmentLimitExceeded", exitOtherFail,
			nil},
		{"wait for available fails", func(h *harness) { h.cloud.failCreateWait = errors.New("volume failed: error") },
			"step 1/9 failed (create EBS volume (10 GiB gp3 in us-east-1c)): volume failed: error", exitOtherFail,
			nil},
		{"open fails", func(h *harness) { h.local.failOpen = errors.New("dm: ENOMEM") },
			"step 5/9 failed (luksOpen DEV my_enc_fs): dm: ENOMEM", exitOtherFail,
			[]string{"open DEV my_enc_fs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testPass+"\n")
			nvme := devPath(t, "nvme1n1")
			tt.prepare(h)
			mp := tempMountPoint(t)
			code := h.run("setup", "--mount-point", mp)
			assert.Equal(t, tt.wantCode, code)
			assert.Contains(t, h.stderr.String(), strings.ReplaceAll(tt.wantStep, "DEV", nvme))
			assert.Empty(t, h.local.mappings, "no orphaned mapping")
			assert.Empty(t, h.local.mounts, "nothing left mounted")
			if tt.wantCalls != nil {
				calls := h.local.calls[len(h.local.calls)-len(tt.wantCalls):]
				for i := range tt.wantCalls {
					tt.wantCalls[i] = strings.ReplaceAll(strings.ReplaceAll(tt.wantCalls[i], "MP", mp), "DEV", nvme)
				}
				assert.Equal(t, tt.wantCalls, calls)
			}
			assert.Contains(t, h.stdout.String(), "teardown --volume-id vol-00000000000000001 --delete",
				"the created volume is never orphaned: the output says how to remove it")
		})
	}
}

// A failed setup on a volume given with --volume-id never suggests deleting it (it may
// hold the operator's data); a volume the run created is offered for deletion, and the
// note says truthfully whether it is attached.
func TestSetupFailureNote(t *testing.T) {
	const existing = "vol-0aaaaaaaaaaaaaaaa"
	tests := []struct {
		name     string
		args     []string
		prepare  func(h *harness)
		want     string
		wantNone string
	}{
		{"existing volume attached by this run", []string{"--volume-id", existing},
			func(h *harness) {
				h.cloud.volumes[existing] = ""
				h.local.failMkfs = errors.New("mke2fs: exit status 1")
			},
			"Note: volume " + existing + " stays attached; detach it with: encrypted-volume teardown --volume-id " + existing + " --detach\n",
			"--delete"},
		{"created and attached", nil,
			func(h *harness) { h.local.failMkfs = errors.New("mke2fs: exit status 1") },
			"Note: volume vol-00000000000000001 (created by this run) stays attached; remove it with: encrypted-volume teardown --volume-id vol-00000000000000001 --delete\n",
			""},
		{"created, attach failed", nil,
			func(h *harness) { h.cloud.failNext = errors.New("context canceled") },
			"Note: volume vol-00000000000000001 (created by this run) may be attached (the attach failed, but EC2 may have made it); remove it with: encrypted-volume teardown --volume-id vol-00000000000000001 --delete\n",
			"stays attached"},
		{"created, wait for available failed", nil,
			func(h *harness) { h.cloud.failCreateWait = errors.New("volume failed: error") },
			"Note: volume vol-00000000000000001 (created by this run) is not attached; remove it with: encrypted-volume teardown --volume-id vol-00000000000000001 --delete\n",
			"may be attached"},
		{"existing volume, attach failed", []string{"--volume-id", existing},
			func(h *harness) {
				h.cloud.volumes[existing] = ""
				h.cloud.failNext = errors.New("context canceled")
			},
			"Note: volume " + existing + " may be attached (the attach failed, but EC2 may have made it); detach it with: encrypted-volume teardown --volume-id " + existing + " --detach\n",
			"--delete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testPass+"\n")
			tt.prepare(h)
			code := h.run(append([]string{"setup", "--mount-point", tempMountPoint(t)}, tt.args...)...)
			require.NotEqual(t, 0, code)
			assert.Contains(t, h.stdout.String(), tt.want)
			if tt.wantNone != "" {
				assert.NotContains(t, h.stdout.String(), tt.wantNone)
			}
		})
	}
}

func TestSetupRefusesUsedDevice(t *testing.T) {
	ext := make([]byte, probeSize)
	ext[1080], ext[1081] = 0x53, 0xef
	luksDev := make([]byte, probeSize)
	copy(luksDev, luksMagic)
	tests := []struct {
		name    string
		content []byte
		want    string
	}{
		{"ext4", ext, "already holds a ext2/3/4 filesystem"},
		{"luks", luksDev, "already holds a LUKS header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testPass+"\n")
			xvdf := h.local.devWith("xvdf", tt.content)
			code := h.run("setup", "--device", xvdf, "--mount-point", tempMountPoint(t))
			assert.Equal(t, exitBusy, code)
			assert.Contains(t, h.stderr.String(), tt.want+"; refusing to format it without --force")
			assert.NotContains(t, h.stdout.String(), "Step 1/", "refused in the preflight, before any step")
			assert.Equal(t, len(testPass)+1, h.app.stdin.(*strings.Reader).Len(), "refused before the passphrase was asked for")
			assert.Empty(t, h.local.calls, "nothing was opened")
			assert.Equal(t, tt.content, readPrefix(t, xvdf, len(tt.content)), "nothing was formatted")

			h = newHarness(t, testPass+"\n")
			h.local.devWith("xvdf", tt.content)
			code = h.run("setup", "--device", xvdf, "--mount-point", tempMountPoint(t), "--force")
			assert.Equal(t, 0, code, h.stderr.String())
			assert.Contains(t, h.stdout.String(), "formatting anyway (--force)")
		})
	}
}

// A --device that is not there is refused before the passphrase is asked for (the
// operator would type it twice for nothing) and before any step.
func TestSetupMissingDeviceBeforePassphrase(t *testing.T) {
	h := newHarness(t, testPass+"\n")
	missing := filepath.Join(t.TempDir(), "xvdz")
	code := h.run("setup", "--device", missing, "--mount-point", tempMountPoint(t))
	assert.Equal(t, exitNoDevice, code, h.stderr.String())
	assert.Contains(t, h.stderr.String(), missing+": device not found")
	assert.NotContains(t, h.stdout.String(), "Step 1/")
	assert.Equal(t, len(testPass)+1, h.app.stdin.(*strings.Reader).Len(), "the passphrase was never read")
	assert.Empty(t, h.local.calls)
}

// readHeaderFile reads the LUKS header the real luksFormat wrote to a test device.
func readHeaderFile(t *testing.T, path string) *luks.Header {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	hdr, err := luks.ReadHeader(f)
	require.NoError(t, err)
	return hdr
}

func readPrefix(t *testing.T, path string, n int) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b[:n]
}

func TestSetupConfirmation(t *testing.T) {
	tests := []struct {
		name     string
		answer   []string
		batch    bool
		wantCode int
		wantAsk  bool
	}{
		{"YES", []string{"YES"}, false, 0, true},
		{"lowercase yes aborts", []string{"yes"}, false, exitUsage, true},
		{"EOF aborts", nil, false, exitUsage, true},
		{"-q skips the question", nil, true, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "")
			ft := &fakeTerm{passwords: [][]byte{[]byte(testPass), []byte(testPass)}, lines: tt.answer}
			h.app.term = ft
			xvdf := h.dev("xvdf")
			args := []string{"setup", "--device", xvdf, "--mount-point", tempMountPoint(t)}
			if tt.batch {
				args = append(args, "-q")
			}
			code := h.run(args...)
			assert.Equal(t, tt.wantCode, code, h.stderr.String())
			out := h.stdout.String()
			assert.Contains(t, out, "Enter passphrase for "+xvdf+": ")
			assert.Contains(t, out, "Verify passphrase: ")
			if tt.wantAsk {
				assert.Contains(t, out, "WARNING!\n========\nThis will overwrite data on "+xvdf+" irrevocably.\n\nAre you sure? (Type 'yes' in capital letters): ")
			} else {
				assert.NotContains(t, out, "Are you sure?")
			}
			if tt.wantCode != 0 {
				assert.Contains(t, h.stderr.String(), "operation aborted")
				assert.NotContains(t, strings.Join(h.local.calls, "\n"), "format")
			}
		})
	}
}

func TestPassphraseSources(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(keyFile, []byte("from-file\nwith newline"), 0o600))
	tests := []struct {
		name    string
		src     passSource
		verify  bool
		want    string
		wantErr error
	}{
		{"key file keeps every byte", passSource{keyFile: keyFile}, false, "from-file\nwith newline", nil},
		{"key file - reads all of stdin", passSource{keyFile: "-", stdin: strings.NewReader("a\nb\n")}, false, "a\nb\n", nil},
		{"stdin stops at the first newline", passSource{stdin: strings.NewReader("line1\nline2\n")}, false, "line1", nil},
		{"stdin without newline", passSource{stdin: strings.NewReader("abc")}, false, "abc", nil},
		{"empty stdin", passSource{stdin: strings.NewReader("")}, false, "", errEmptyPass},
		{"terminal", passSource{term: &fakeTerm{passwords: [][]byte{[]byte("tty")}}}, false, "tty", nil},
		{"terminal verify ok", passSource{term: &fakeTerm{passwords: [][]byte{[]byte("tty"), []byte("tty")}}}, true, "tty", nil},
		{"terminal verify mismatch", passSource{term: &fakeTerm{passwords: [][]byte{[]byte("tty"), []byte("tyt")}}}, true, "", errPassMismatch},
		{"terminal empty", passSource{term: &fakeTerm{passwords: [][]byte{{}}}}, false, "", errEmptyPass},
		{"missing key file", passSource{keyFile: filepath.Join(dir, "nope")}, false, "", os.ErrNotExist},
		{"long key file on stdin", passSource{keyFile: "-", stdin: strings.NewReader(strings.Repeat("k", 5000))}, false, strings.Repeat("k", 5000), nil},
		{"long line on stdin", passSource{stdin: strings.NewReader(strings.Repeat("l", 3000) + "\nrest")}, false, strings.Repeat("l", 3000), nil},
		{"key file at the size limit", passSource{keyFile: "-", stdin: bytes.NewReader(bytes.Repeat([]byte{7}, maxKeyFileSize))}, false, string(bytes.Repeat([]byte{7}, maxKeyFileSize)), nil},
		{"key file over the size limit", passSource{keyFile: "-", stdin: bytes.NewReader(make([]byte, maxKeyFileSize+1))}, false, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.src.prompt = &bytes.Buffer{}
			got, err := tt.src.read("/dev/x", tt.verify)
			if tt.name == "key file over the size limit" {
				require.ErrorIs(t, err, luks.ErrKeyFileTooLarge)
				return
			}
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

// A passphrase line read from stdin leaves what follows it for someone else.
func TestReadLineLeavesTheRest(t *testing.T) {
	r := strings.NewReader("first\nsecond\n")
	l, err := passSource{stdin: r, prompt: io.Discard}.read("/dev/x", false)
	require.NoError(t, err)
	assert.Equal(t, "first", string(l))
	rest := make([]byte, 20)
	n, _ := r.Read(rest)
	assert.Equal(t, "second\n", string(rest[:n]), "nothing after the newline is consumed")
}

func TestUnlockFailures(t *testing.T) {
	setup := func(t *testing.T) (*harness, string) {
		h := newHarness(t, testPass+"\n")
		nvme := h.dev("nvme1n1")
		h.local.resolved["vol-0123456789abcdef0"] = nvme
		mp := tempMountPoint(t)
		require.Equal(t, 0, h.run("setup", "--volume-id", "vol-0123456789abcdef0", "--no-aws", "--mount-point", mp), h.stderr.String())
		require.Equal(t, 0, h.run("teardown", "--mount-point", mp), h.stderr.String())
		require.Empty(t, h.local.mappings)
		h.stdout.Reset()
		h.stderr.Reset()
		h.setStdin(testPass + "\n")
		return h, mp
	}
	t.Run("wrong passphrase", func(t *testing.T) {
		h, mp := setup(t)
		h.setStdin("not the passphrase\n")
		code := h.run("unlock", "--volume-id", "vol-0123456789abcdef0", "--no-aws", "--mount-point", mp)
		assert.Equal(t, exitNoPerm, code)
		assert.Contains(t, h.stderr.String(), "step 2/4 failed (luksOpen "+devPath(t, "nvme1n1")+" my_enc_fs): "+devPath(t, "nvme1n1")+": No key available with this passphrase.")
		assert.Empty(t, h.local.mappings)
		assert.Empty(t, h.local.mounts)
	})
	t.Run("device missing", func(t *testing.T) {
		h, mp := setup(t)
		code := h.run("unlock", "--volume-id", "vol-0fffffffffffffff0", "--no-aws", "--mount-point", mp)
		assert.Equal(t, exitNoDevice, code)
		assert.Contains(t, h.stderr.String(), "step 1/4 failed (resolve the local device of vol-0fffffffffffffff0)")
		assert.Empty(t, h.local.mappings)
	})
	t.Run("mount point busy", func(t *testing.T) {
		h, mp := setup(t)
		h.local.mounts = append(h.local.mounts, mountEntry{Source: "tmpfs", MountPoint: mp, FSType: "tmpfs"})
		code := h.run("unlock", "--volume-id", "vol-0123456789abcdef0", "--no-aws", "--mount-point", mp)
		assert.Equal(t, exitBusy, code)
		assert.Contains(t, h.stderr.String(), "step 3/4 failed (mount /dev/mapper/my_enc_fs "+mp+"): mount point "+mp+" is busy: tmpfs is already mounted there")
		assert.Empty(t, h.local.mappings, "the mapping opened by step 2 is closed again")
		assert.Contains(t, h.stdout.String(), "Cleanup: closed my_enc_fs")
	})
	t.Run("mapping exists", func(t *testing.T) {
		h, mp := setup(t)
		h.local.mappings["my_enc_fs"] = "/dev/other"
		code := h.run("unlock", "--volume-id", "vol-0123456789abcdef0", "--no-aws", "--mount-point", mp)
		assert.Equal(t, exitBusy, code)
		assert.Contains(t, h.stderr.String(), "mapping my_enc_fs already exists (on /dev/other)")
		assert.Equal(t, "/dev/other", h.local.mappings["my_enc_fs"], "someone else's mapping is left alone")
	})
	t.Run("success then status then teardown", func(t *testing.T) {
		h, mp := setup(t)
		require.Equal(t, 0, h.run("unlock", "--volume-id", "vol-0123456789abcdef0", "--no-aws", "--mount-point", mp), h.stderr.String())
		assert.Contains(t, h.stdout.String(), "Step 4/4: post-mount hooks (0)...\n    skipped: none configured")
		h.stdout.Reset()
		require.Equal(t, 0, h.run("status", "--volume-id", "vol-0123456789abcdef0", "--no-aws", "--mount-point", mp))
		out := h.stdout.String()
		assert.Contains(t, out, "device:    "+devPath(t, "nvme1n1")+" (LUKS header)")
		assert.Contains(t, out, "mapping:   my_enc_fs open on "+devPath(t, "nvme1n1"))
		assert.Contains(t, out, "mounted:   /dev/mapper/my_enc_fs on "+mp)
		assert.Contains(t, out, "boot:      boot-time unlock disabled (fake)")
		h.stdout.Reset()
		require.Equal(t, 0, h.run("teardown", "--mount-point", mp))
		assert.Empty(t, h.local.mappings)
		assert.Empty(t, h.local.mounts)
		// Idempotent: a second teardown skips everything.
		h.stdout.Reset()
		require.Equal(t, 0, h.run("teardown", "--mount-point", mp))
		assert.Contains(t, h.stdout.String(), "Step 1/4: umount "+mp+"...\n    skipped: nothing from /dev/mapper/my_enc_fs is mounted")
		assert.Contains(t, h.stdout.String(), "Step 2/4: luksClose my_enc_fs...\n    skipped: no mapping named my_enc_fs")
	})
}

func TestTeardownDetachDelete(t *testing.T) {
	h := newHarness(t, testPass+"\n")
	mp := tempMountPoint(t)
	require.Equal(t, 0, h.run("setup", "--mount-point", mp), h.stderr.String())
	require.Equal(t, 0, h.run("teardown", "--mount-point", mp, "--volume-id", "vol-00000000000000001", "--delete"), h.stderr.String())
	assert.Equal(t, []string{"create us-east-1c 10 gp3", "attach vol-00000000000000001", "detach vol-00000000000000001", "delete vol-00000000000000001"}, h.cloud.calls)
	assert.Empty(t, h.cloud.volumes)
	assert.Empty(t, h.local.mappings)

	// Idempotent: the volume is gone, so a second teardown --delete has nothing to do.
	h.stdout.Reset()
	require.Equal(t, 0, h.run("teardown", "--mount-point", mp, "--volume-id", "vol-00000000000000001", "--delete"), h.stderr.String())
	out := h.stdout.String()
	assert.Contains(t, out, "Step 3/4: detach vol-00000000000000001...\n    skipped: volume vol-00000000000000001 does not exist (already deleted)")
	assert.Contains(t, out, "Step 4/4: delete vol-00000000000000001...\n    skipped: volume vol-00000000000000001 does not exist (already deleted)")
	assert.Contains(t, out, "Done.")
}

// teardown --detach with the wrong --name (or --mount-point) skips the unmount and close
// and then must not detach a volume whose device is still mapped and mounted: it stops with
// exit code 5 naming what uses it, and EC2 is never asked to detach.
func TestTeardownRefusesDetachInUse(t *testing.T) {
	h := newHarness(t, testPass+"\n")
	mp := tempMountPoint(t)
	require.Equal(t, 0, h.run("setup", "--mount-point", mp), h.stderr.String())
	h.stdout.Reset()
	code := h.run("teardown", "--name", "other", "--mount-point", mp, "--volume-id", "vol-00000000000000001", "--detach")
	assert.Equal(t, exitBusy, code)
	assert.Contains(t, h.stderr.String(), "step 3/4 failed (detach vol-00000000000000001): vol-00000000000000001 ("+devPath(t, "nvme1n1")+") is still in use on this instance: held by dm-0 (mapping my_enc_fs)")
	assert.NotContains(t, h.cloud.calls, "detach vol-00000000000000001")
	assert.Equal(t, "/dev/sdf", h.cloud.volumes["vol-00000000000000001"], "still attached")

	// With the right name everything is released first, and the detach goes through.
	h.stderr.Reset()
	require.Equal(t, 0, h.run("teardown", "--mount-point", mp, "--volume-id", "vol-00000000000000001", "--detach"), h.stderr.String())
	assert.Contains(t, h.cloud.calls, "detach vol-00000000000000001")
}

// What uses a block device, from a sysfs tree: device-mapper holders (named), holders of
// partitions, and mounts of the device or a partition.
func TestDeviceUsers(t *testing.T) {
	sys := t.TempDir()
	mk := func(path, content string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(sys, path)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(sys, path), []byte(content), 0o644))
	}
	// nvme1n1 (259:1) held by dm-0 "my_enc_fs"; nvme2n1 (259:2) with partition p1 (259:3)
	// held by md0; nvme3n1 (259:4) unused.
	require.NoError(t, os.MkdirAll(filepath.Join(sys, "dev/block/259:1/holders/dm-0"), 0o755))
	mk("class/block/dm-0/dm/name", "my_enc_fs\n")
	require.NoError(t, os.MkdirAll(filepath.Join(sys, "dev/block/259:2/holders"), 0o755))
	mk("dev/block/259:2/nvme2n1p1/partition", "1\n")
	mk("dev/block/259:2/nvme2n1p1/dev", "259:3\n")
	require.NoError(t, os.MkdirAll(filepath.Join(sys, "dev/block/259:2/nvme2n1p1/holders/md0"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(sys, "dev/block/259:4/holders"), 0o755))
	mounts := []mountEntry{{MajorMinor: "259:3", MountPoint: "/data"}, {MajorMinor: "253:0", MountPoint: "/encrypted_vol"}}

	assert.Equal(t, "held by dm-0 (mapping my_enc_fs)", deviceUsers(sys, "259:1", mounts))
	assert.Equal(t, "held by md0, mounted on /data", deviceUsers(sys, "259:2", mounts))
	assert.Equal(t, "", deviceUsers(sys, "259:4", mounts))
	assert.Equal(t, "", deviceUsers(sys, "259:9", nil), "unknown device")
	assert.Equal(t, "mounted on /encrypted_vol", deviceUsers(sys, "253:0", mounts))
}

// status does not wait for a device that is not there (the resolver would wait minutes): it
// reports "not found" and goes on to the other questions.
func TestStatusDoesNotWaitForTheDevice(t *testing.T) {
	h := newHarness(t, "")
	h.cloud.volumes["vol-0123456789abcdef0"] = "/dev/sdf" // attached, but no node here
	h.local.blockResolve = true
	mp := tempMountPoint(t)
	done := make(chan int, 1)
	go func() {
		done <- h.run("status", "--volume-id", "vol-0123456789abcdef0", "--mount-point", mp)
	}()
	var code int
	select {
	case code = <-done:
	case <-time.After(time.Minute): // far beyond statusResolveTimeout; only a wait without bound hits it
		t.Fatal("status is still waiting for the device")
	}
	require.Equal(t, 6, code, "attached, not mounted: needs unlock; stderr: %s", h.stderr.String())
	assert.Empty(t, h.stderr.String(), "the answer is the exit code, not an error")
	out := h.stdout.String()
	assert.Contains(t, out, "needs unlock: yes")
	assert.Contains(t, out, "device:    not found (no block device for it appeared within 3s)")
	assert.Contains(t, out, "mapping:   my_enc_fs is not open")
}

// A volume that does not exist stays exit code 4 everywhere but teardown.
func TestUnknownVolumeExitCode(t *testing.T) {
	h := newHarness(t, "")
	err := h.cloud.Delete(context.Background(), "vol-0000000000000000f")
	require.ErrorIs(t, err, errVolumeGone)
	assert.Equal(t, exitNoDevice, exitCode(err))
	assert.Contains(t, err.Error(), "vol-0000000000000000f")
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown verb "frobnicate"`},
		{[]string{"setup", "--name", "a/b"}, `--name "a/b" is not a usable device-mapper name`},
		{[]string{"setup", "--mount-point", "rel"}, "--mount-point must be an absolute path"},
		{[]string{"setup", "--volume-id", "i-123"}, `--volume-id "i-123" does not look like vol-`},
		{[]string{"teardown", "--delete"}, "--detach/--delete need --volume-id"},
		{[]string{"teardown", "--delete", "--volume-id", "vol-1", "--no-aws"}, "cannot be combined with --no-aws"},
		{[]string{"unlock", "--no-aws"}, "--no-aws needs --device or --volume-id"},
		{[]string{"setup", "--key-size", "100"}, "--key-size must be a positive multiple of 8"},
		{[]string{"setup", "--mkfs", "mkfs.ext4 '"}, "--mkfs: hook syntax: unterminated single quote"},
		{[]string{"unlock", "--device", "/dev/x", "--hook", `"`}, "not a command"},
		{[]string{"status", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			h := newHarness(t, "")
			assert.Equal(t, exitUsage, h.run(tt.args...))
			assert.Contains(t, h.stderr.String(), tt.want)
		})
	}
}

func TestUsage(t *testing.T) {
	h := newHarness(t, "")
	assert.Equal(t, 0, h.run("--help"))
	for _, v := range []string{"setup", "teardown", "unlock", "status"} {
		assert.Regexp(t, regexp.MustCompile(`(?m)^  `+v+` `), h.stdout.String())
	}
	// "VERB -h" and "help VERB": summary, example and flags on stdout.
	for _, args := range [][]string{{"setup", "-h"}, {"setup", "--help"}, {"help", "setup"}} {
		h.stdout.Reset()
		h.stderr.Reset()
		assert.Equal(t, 0, h.run(args...), "%v", args)
		assert.Contains(t, h.stdout.String(), "Usage: encrypted-volume setup [flags]\n\ncreate/attach a volume", "%v", args)
		assert.Contains(t, h.stdout.String(), "\nExample:\n  encrypted-volume setup --size 10 ", "%v", args)
		assert.Contains(t, h.stdout.String(), "-pbkdf-force-iterations", "%v", args)
		assert.Empty(t, h.stderr.String(), "%v", args)
	}
	h.stdout.Reset()
	assert.Equal(t, exitUsage, h.run("help", "nope"))
	assert.Empty(t, h.stdout.String())
	assert.Contains(t, h.stderr.String(), `encrypted-volume: unknown verb "nope"`)

	// The real entry point: no arguments is the usage on stderr and exit 1, unknown flags too.
	var out, errb bytes.Buffer
	assert.Equal(t, 1, run(context.Background(), nil, strings.NewReader(""), &out, &errb))
	assert.Empty(t, out.String())
	assert.Contains(t, errb.String(), "usage: encrypted-volume <verb>")
	out.Reset()
	errb.Reset()
	assert.Equal(t, 0, run(context.Background(), []string{"--version"}, strings.NewReader(""), &out, &errb))
	assert.Regexp(t, `^encrypted-volume \S+( rev [0-9a-f]{1,7}(-dirty)?)?\n$`, out.String())
	assert.Empty(t, errb.String())
	out.Reset()
	assert.Equal(t, exitUsage, run(context.Background(), []string{"unlock", "--no-such-flag"}, strings.NewReader(""), &out, &out))
	assert.Contains(t, out.String(), "flag provided but not defined: -no-such-flag")
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errUsage, 1},
		{errAborted, 1},
		{&stepError{N: 2, Total: 4, Err: errWrongPassphrase}, 2},
		{errPassMismatch, 2},
		{&stepError{Err: errDeviceMissing}, 4},
		{errBusy, 5},
		{errAlreadyUsed, 5},
		{errors.New("other"), 1},
		{context.Canceled, 1},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, exitCode(tt.err), "%v", tt.err)
	}
}

// statusJSON runs status --json for volumeID, requires exit code want and returns the
// decoded object.
func statusJSON(t *testing.T, h *harness, volumeID, mountPoint string, want int) map[string]any {
	t.Helper()
	h.stdout.Reset()
	code := h.run("status", "--json", "--volume-id", volumeID, "--mount-point", mountPoint)
	require.Equal(t, want, code, "stdout: %s stderr: %s", h.stdout, h.stderr)
	var r map[string]any
	require.NoError(t, json.Unmarshal(h.stdout.Bytes(), &r), h.stdout.String())
	return r
}

// status --json answers the monitor's questions in one object, and the exit code alone says
// whether an unlock is needed: 6 while the volume is attached and not mounted, 0 once it is
// mounted, 0 for a volume that is not here at all.
func TestStatusJSONAndNeedsUnlock(t *testing.T) {
	h := newHarness(t, "")
	bootID := filepath.Join(t.TempDir(), "boot_id")
	require.NoError(t, os.WriteFile(bootID, []byte("0b6c2cc4-5a2f-4b1e-9a61-3f0c3c9d1e2a\n"), 0o644))
	h.app.bootID = bootID
	h.cloud.volumes["vol-0123456789abcdef0"] = "/dev/sdf"
	nvme := h.dev("nvme1n1")
	h.local.anyVol = nvme
	mp := tempMountPoint(t)

	r := statusJSON(t, h, "vol-0123456789abcdef0", mp, 6)
	assert.Equal(t, "vol-0123456789abcdef0", r["volumeId"])
	assert.Equal(t, true, r["attached"])
	assert.Equal(t, "/dev/sdf", r["attachedAs"])
	assert.Equal(t, nvme, r["device"])
	assert.Equal(t, false, r["mapped"])
	assert.Equal(t, false, r["mounted"])
	assert.Contains(t, r, "bootUnlockDisabled")
	assert.Equal(t, "0b6c2cc4-5a2f-4b1e-9a61-3f0c3c9d1e2a", r["bootId"])
	assert.Equal(t, true, r["needsUnlock"])

	// Mapped but not mounted: unlock would refuse the mapping, so not "needs unlock".
	h.local.mappings["my_enc_fs"] = nvme
	r = statusJSON(t, h, "vol-0123456789abcdef0", mp, 0)
	assert.Equal(t, true, r["mapped"])
	assert.Equal(t, false, r["mounted"])
	assert.Equal(t, false, r["needsUnlock"])

	// Unlocked: mapped and mounted, exit 0 and needsUnlock false.
	h.local.mounts = append(h.local.mounts, mountEntry{Source: "/dev/mapper/my_enc_fs", MountPoint: mp, FSType: "ext4"})
	r = statusJSON(t, h, "vol-0123456789abcdef0", mp, 0)
	assert.Equal(t, true, r["mapped"])
	assert.Equal(t, true, r["mounted"])
	assert.Equal(t, mp, r["mountPoint"])
	assert.Equal(t, false, r["needsUnlock"])

	// A volume not attached to this instance: nothing to unlock here.
	h2 := newHarness(t, "")
	h2.app.bootID = bootID
	h2.cloud.volumes["vol-0fffffffffffffff0"] = ""
	r = statusJSON(t, h2, "vol-0fffffffffffffff0", mp, 0)
	assert.Equal(t, false, r["attached"])
	assert.Equal(t, false, r["needsUnlock"])
}
