package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/dmcrypt"
	"github.com/cloudluks/cloudluks/internal/awstest"
)

// Setup with an input luksFormat or device-mapper would refuse, a kernel without
// device-mapper, a --root whose boot configuration step 8 cannot find, a --service that
// is not there, a mapping name already taken or a busy mount point stops before its first
// side effect: against moto, the number of volumes is
// the same before and after, and no CreateVolume or AttachVolume request was sent at all.
func TestSetupInvalidInputCreatesNoVolume(t *testing.T) {
	moto := awstest.StartMoto(t)
	client := awstest.NewEC2Client(moto)
	ctx := context.Background()
	instance := awstest.RunInstance(t, ctx, client, "us-east-1c")
	imds := awstest.StartMetadataMock(t, awstest.MetadataConfig{InstanceID: instance, AZ: "us-east-1c"})
	ec2Rec, ec2URL := newRecorder(t, moto)
	setEnv(t, awstest.Env(ec2URL, imds))

	keyFile := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(keyFile, []byte("a passphrase"), 0o600))
	count := func() int {
		out, err := client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
		require.NoError(t, err)
		return len(out.Volumes)
	}
	before := count()

	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	emptyRoot := t.TempDir()
	al1 := bootRoot(t, "al1-2011.09")
	for _, tc := range []struct {
		name    string
		args    []string
		want    string                      // in the message: the flag that was refused
		prepare func(h *harness, mp string) // nil: the fakes as they are
		code    int                         // 0: 1, a usage error
	}{
		{"unknown cipher", []string{"--cipher", "rot13-ecb"}, "--cipher rot13-ecb", nil, 0},
		{"unknown mode", []string{"--cipher", "aes-nonsense-plain64"}, "--cipher aes-nonsense-plain64", nil, 0},
		{"null cipher", []string{"--cipher", "cipher_null-ecb"}, "--cipher cipher_null-ecb does not encrypt", nil, 0},
		{"unknown hash", []string{"--hash", "md4"}, `hash "md4"`, nil, 0},
		{"key size the cipher refuses", []string{"--cipher", "aes-xts-plain64", "--key-size", "128"}, "--key-size 128", nil, 0},
		{"key size not bytes", []string{"--key-size", "12"}, "--key-size must be", nil, 0},
		{"mapping name with NUL", []string{"--name", "bad\x00name"}, "--name", nil, 0},
		{"mapping name too long", []string{"--name", longName()}, "--name", nil, 0},
		{"mapping name with a blank", []string{"--name", "my data"}, "cannot hold a blank", nil, 0},
		{"mapping name control", []string{"--name", "control"}, "--name", nil, 0},
		{"mkfs not on PATH", []string{"--mkfs", "mkfs.no-such-filesystem"}, "mkfs.no-such-filesystem not found on PATH", nil, 0},
		{"mount point is a file", []string{"--mount-point", notDir}, "exists and is not a directory", nil, 0},
		{"no device-mapper", nil, "device-mapper: no device-mapper in this kernel", func(h *harness, _ string) {
			h.local.noDM = errors.New("device-mapper: no device-mapper in this kernel")
		}, 0},
		// The real boot adapter on a root with nothing step 8 could edit.
		{"--root without a boot configuration", []string{"--root", emptyRoot}, "--root " + emptyRoot + ": no boot loader, crypttab or fstab found", func(h *harness, _ string) {
			h.app.boot = grubBoot{}
		}, 0},
		{"--service not a name", []string{"--service", "../mysqld"}, `--service "../mysqld": not a service name`, nil, 0},
		{"--service unknown under --root", []string{"--root", al1, "--service", "mysqld"}, "--service mysqld: no such service: neither systemd nor an init script", func(h *harness, _ string) {
			h.app.boot = grubBoot{}
		}, 0},
		{"--wait negative", []string{"--wait", "-1s"}, "--wait must not be negative", nil, 0},
		{"mapping name taken", []string{"--name", "taken"}, "mapping taken already exists (on /dev/xvdg)", func(h *harness, _ string) {
			h.local.mappings["taken"] = "/dev/xvdg"
		}, 5},
		{"mount point busy", nil, "is busy: /dev/xvdh1 is already mounted there", func(h *harness, mp string) {
			h.local.mounts = append(h.local.mounts, mountEntry{Source: "/dev/xvdh1", MountPoint: mp, FSType: "ext4"})
		}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "")
			h.app.newCloud = newEBSCloud(h.stdout)
			mp := tempMountPoint(t)
			if tc.prepare != nil {
				tc.prepare(h, mp)
			}
			args := append([]string{"setup", "--key-file", keyFile, "--size", "1", "--mount-point", mp}, tc.args...)
			code := h.run(args...)
			want := tc.code
			if want == 0 {
				want = 1
			}
			assert.Equal(t, want, code, "stdout:\n%s\nstderr:\n%s", h.stdout, h.stderr)
			assert.Contains(t, h.stderr.String(), tc.want, "refused for the flag under test")
			assert.NotContains(t, h.stdout.String(), "Step 1/", "no step ran")
			assert.Empty(t, h.local.calls, "no local side effect")
		})
	}
	assert.Equal(t, before, count(), "no volume was created")
	assert.Zero(t, ec2Rec.n["CreateVolume"], "CreateVolume was never sent")
	assert.Zero(t, ec2Rec.n["AttachVolume"], "AttachVolume was never sent")
}

func longName() string {
	b := make([]byte, 128)
	for i := range b {
		b[i] = 'v'
	}
	return string(b)
}

// device-mapper refusing a caller that is not root is cryptsetup's "no permission" (exit 2),
// not a usage error, and is found before any step.
func TestSetupDeviceMapperNotRoot(t *testing.T) {
	h := newHarness(t, testPass+"\n")
	// What sysLocal.DeviceMapper makes of dmcrypt's answer for a non-root caller.
	h.local.noDM = deviceMapperErr(fmt.Errorf("DM_LIST_DEVICES: %w", dmcrypt.ErrNotRoot))
	code := h.run("setup", "--device", h.dev("xvdf"), "--mount-point", tempMountPoint(t))
	assert.Equal(t, exitNoPerm, code, h.stderr.String())
	assert.Equal(t, 2, code)
	assert.Contains(t, h.stderr.String(), "device-mapper: ")
	assert.Contains(t, h.stderr.String(), "run as root")
	assert.NotContains(t, h.stdout.String(), "Step 1/")
	assert.Empty(t, h.local.calls)

	assert.Equal(t, exitNoPerm, exitCode(mapDMErr(fmt.Errorf("open: %w", os.ErrPermission))), "EPERM from the kernel")
}
