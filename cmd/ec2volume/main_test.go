package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/internal/awstest"
)

// binary is the ec2volume program, built once for all CLI tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ec2volume-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "ec2volume")
	cmd := exec.Command("go", "build", "-o", binary, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// ec2volume runs the program with env (on top of a minimal PATH/HOME) and returns what it printed.
func ec2volume(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	t.Logf("ec2volume %s → %d\nstdout: %sstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// fields splits the single TAB-separated line of out.
func fields(t *testing.T, out string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 1, "one line: %q", out)
	return strings.Split(lines[0], "\t")
}

var reStamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$`)

func TestCLI(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	direct := awstest.NewEC2Client(moto)
	instance := awstest.RunInstance(t, ctx, direct, "us-east-1c", "/dev/sdf")
	md := awstest.StartMetadataMock(t, awstest.MetadataConfig{InstanceID: instance, AZ: "us-east-1c"})
	env := awstest.Env(moto, md)

	// create: AZ from instance metadata; VOLUME id size snapshot zone state time type
	r := ec2volume(t, env, "create", "--size", "10")
	require.Equal(t, 0, r.code)
	f := fields(t, r.stdout)
	require.Len(t, f, 8)
	assert.Equal(t, "VOLUME", f[0])
	assert.Regexp(t, `^vol-[0-9a-f]+$`, f[1])
	assert.Equal(t, []string{"10", "", "us-east-1c", "available"}, f[2:6])
	assert.Regexp(t, reStamp, f[6])
	assert.Equal(t, "gp3", f[7])
	vol1 := f[1]

	// create -o json with a name and tags; the same name again gives the same volume
	r = ec2volume(t, env, "-o", "json", "create", "--size", "2", "--type", "gp2", "--name", "db", "--tag", "project=seed", "--tag", "role=db")
	require.Equal(t, 0, r.code)
	var v2 struct {
		ID    string            `json:"volumeId"`
		Size  int               `json:"size"`
		AZ    string            `json:"availabilityZone"`
		State string            `json:"state"`
		Type  string            `json:"volumeType"`
		Tags  map[string]string `json:"tags"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v2))
	assert.Equal(t, 2, v2.Size)
	assert.Equal(t, "us-east-1c", v2.AZ)
	assert.Equal(t, "available", v2.State)
	assert.Equal(t, "gp2", v2.Type)
	assert.Equal(t, "seed", v2.Tags["project"])
	r = ec2volume(t, env, "create", "--size", "2", "--type", "gp2", "--name", "db", "--tag", "project=seed", "--tag", "role=db", "-o", "json")
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, `"volumeId": "`+v2.ID+`"`, "idempotent by name")

	// attach: /dev/sdf is the instance's, so /dev/sdg; instance from metadata
	r = ec2volume(t, env, "-v", "attach", vol1)
	require.Equal(t, 0, r.code)
	f = fields(t, r.stdout)
	require.Len(t, f, 6)
	assert.Equal(t, []string{"ATTACHMENT", vol1, instance, "/dev/sdg", "attached"}, f[:5])
	assert.Regexp(t, reStamp, f[5])
	assert.Contains(t, r.stderr, "attached", "-v reports state changes")

	r = ec2volume(t, env, "attach", v2.ID, "--device", "/dev/sdk", "--instance-id", instance, "-o", "json")
	require.Equal(t, 0, r.code)
	var att map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &att))
	assert.Equal(t, "/dev/sdk", att["device"])
	assert.Equal(t, "attached", att["state"])

	// list by tag: VOLUME, ATTACHMENT, TAG lines
	r = ec2volume(t, env, "list", "--tag", "project=seed")
	require.Equal(t, 0, r.code)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 6, "VOLUME, ATTACHMENT, 4 TAGs (incl. the creation token and Name)")
	assert.Contains(t, lines, "TAG\tvolume\t"+v2.ID+"\tName\tdb", "the creation name is the Name tag")
	r = ec2volume(t, env, "list", "--tag", "Name=db", "-o", "json")
	require.Equal(t, 0, r.code)
	var listed []struct {
		ID   string            `json:"volumeId"`
		Tags map[string]string `json:"tags"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &listed))
	require.Len(t, listed, 1)
	assert.Equal(t, v2.ID, listed[0].ID)
	assert.Equal(t, "db", listed[0].Tags["Name"])

	// attach at a name the instance already uses (/dev/sdk, just above) is refused before EC2
	r = ec2volume(t, env, "create", "--size", "1")
	require.Equal(t, 0, r.code)
	spare := fields(t, r.stdout)[1]
	r = ec2volume(t, env, "attach", spare, "-d", "/dev/sdk")
	assert.Equal(t, exitInUse, r.code)
	assert.Contains(t, r.stderr, "/dev/sdk")
	assert.Contains(t, r.stderr, "already used by instance "+instance)
	assert.Empty(t, r.stdout)
	r = ec2volume(t, env, "list", spare)
	require.Equal(t, 0, r.code)
	assert.True(t, strings.HasPrefix(r.stdout, "VOLUME\t"+spare+"\t1\t\tus-east-1c\tavailable\t"), "not attached")
	require.Equal(t, 0, ec2volume(t, env, "delete", spare).code)
	assert.True(t, strings.HasPrefix(lines[0], "VOLUME\t"+v2.ID+"\t2\t\tus-east-1c\tin-use\t"))
	assert.True(t, strings.HasPrefix(lines[1], "ATTACHMENT\t"+v2.ID+"\t"+instance+"\t/dev/sdk\tattached\t"))
	assert.Contains(t, lines, "TAG\tvolume\t"+v2.ID+"\tproject\tseed")
	r = ec2volume(t, env, "list", vol1)
	require.Equal(t, 0, r.code)
	assert.True(t, strings.HasPrefix(r.stdout, "VOLUME\t"+vol1+"\t10\t\tus-east-1c\tin-use\t"))
	assert.NotContains(t, r.stdout, v2.ID)
	r = ec2volume(t, env, "create", "--size", "1", "--no-wait", "-z", "us-east-1c", "--type", "standard")
	require.Equal(t, 0, r.code)
	f = fields(t, r.stdout)
	assert.Equal(t, []string{"1", "", "us-east-1c"}, f[2:5])
	assert.Contains(t, []string{"creating", "available"}, f[5], "as EC2 answered the create")
	assert.Equal(t, "standard", f[7])
	r = ec2volume(t, env, "list", "--tag", "project=none", "-o", "json")
	require.Equal(t, 0, r.code)
	assert.Equal(t, "[]\n", r.stdout)

	// device: resolved in a (fake) NVMe sysfs; missing → exit 3
	root := t.TempDir()
	sys, dev := filepath.Join(root, "sys"), filepath.Join(root, "dev")
	serialDir := filepath.Join(sys, "block", "nvme2n1", "device")
	require.NoError(t, os.MkdirAll(serialDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(serialDir, "serial"), []byte(strings.ReplaceAll(vol1, "-", "")), 0o644))
	require.NoError(t, os.MkdirAll(dev, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dev, "nvme2n1"), nil, 0o644))
	r = ec2volume(t, env, "device", vol1, "--sys-root", sys, "--dev-root", dev)
	require.Equal(t, 0, r.code)
	assert.Equal(t, filepath.Join(dev, "nvme2n1")+"\n", r.stdout)
	r = ec2volume(t, env, "device", v2.ID, "--sys-root", sys, "--dev-root", dev, "--wait", "10ms")
	assert.Equal(t, 4, r.code)
	assert.Contains(t, r.stderr, v2.ID)
	assert.Contains(t, r.stderr, "local block device not found")

	// delete refuses an attached volume
	r = ec2volume(t, env, "delete", vol1)
	assert.Equal(t, 5, r.code)
	assert.Contains(t, r.stderr, vol1)
	assert.Contains(t, r.stderr, instance)
	assert.Contains(t, r.stderr, "detach it first")

	// detach, detach again (success), delete, delete again (not found)
	r = ec2volume(t, env, "detach", vol1)
	require.Equal(t, 0, r.code)
	f = fields(t, r.stdout)
	assert.Equal(t, []string{"ATTACHMENT", vol1, instance, "/dev/sdg", "detached"}, f[:5])
	r = ec2volume(t, env, "detach", vol1)
	require.Equal(t, 0, r.code)
	assert.Equal(t, []string{"ATTACHMENT", vol1, "", "", "detached"}, fields(t, r.stdout)[:5])
	r = ec2volume(t, env, "delete", vol1)
	require.Equal(t, 0, r.code)
	assert.Equal(t, "VOLUME\t"+vol1+"\n", r.stdout)
	r = ec2volume(t, env, "delete", vol1)
	assert.Equal(t, 4, r.code)
	assert.Contains(t, r.stderr, "InvalidVolume.NotFound")

	// delete --detach, JSON
	r = ec2volume(t, env, "-o", "json", "delete", v2.ID, "--detach")
	require.Equal(t, 0, r.code)
	assert.JSONEq(t, `{"volumeId":"`+v2.ID+`","state":"deleted"}`, r.stdout)

	// region from instance metadata when AWS_REGION is unset
	var noRegion []string
	for _, e := range env {
		if !strings.HasPrefix(e, "AWS_REGION=") {
			noRegion = append(noRegion, e)
		}
	}
	r = ec2volume(t, noRegion, "list", "--instance-id", instance)
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "ATTACHMENT\t", "the instance's own volumes, found in the metadata's region")
	assert.Contains(t, r.stdout, "\t"+instance+"\t/dev/sdf\tattached")
}

func TestCLIErrors(t *testing.T) {
	moto := awstest.StartMoto(t)
	noMetadata := awstest.Env(moto, "")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no arguments", nil, 1, "usage: ec2volume"},
		{"no command", []string{"-v"}, 1, "usage: ec2volume"},
		{"unknown command", []string{"format"}, exitUsage, `unknown command "format"`},
		{"bad output", []string{"-o", "yaml", "list"}, exitUsage, `-o "yaml"`},
		{"create without size", []string{"create"}, exitUsage, "a size or a snapshot is required"},
		{"create bad type", []string{"create", "--size", "1", "--type", "gp9"}, exitUsage, `volume type "gp9"`},
		{"create bad iops", []string{"create", "--size", "10", "--type", "gp2", "--iops", "3000"}, exitUsage, "takes no IOPS"},
		{"create bad tag", []string{"create", "--size", "1", "--tag", "=x"}, exitUsage, "want key=value"},
		{"create no AZ, no metadata", []string{"create", "--size", "1"}, exitUsage, "no availability zone given"},
		{"attach no volume", []string{"attach"}, exitUsage, "want 1 argument(s)"},
		{"attach no instance, no metadata", []string{"attach", "vol-0123456789abcdef0"}, exitUsage, "no instance given"},
		{"attach unknown volume", []string{"attach", "vol-0123456789abcdef0", "--instance-id", "i-0123456789abcdef0"}, 4, "vol-0123456789abcdef0"},
		{"detach unknown volume", []string{"detach", "vol-0123456789abcdef0"}, 4, "InvalidVolume.NotFound"},
		{"device two volumes", []string{"device", "vol-1", "vol-2"}, exitUsage, "want 1 argument(s)"},
		{"help", []string{"list", "-h"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ec2volume(t, noMetadata, tt.args...)
			assert.Equal(t, tt.code, r.code)
			assert.Contains(t, r.stderr, tt.want)
			if tt.name == "help" {
				// The verb's help, its example and its flags go to stdout.
				assert.Contains(t, r.stdout, "Usage: ec2volume list ")
				assert.Contains(t, r.stdout, "-tag")
				assert.Empty(t, r.stderr)
			}
			if tt.code != 0 {
				assert.Empty(t, r.stdout)
			}
		})
	}
}

// TestVersion: --version on stdout, exit 0, with no AWS configuration at all.
func TestVersion(t *testing.T) {
	r := ec2volume(t, nil, "--version")
	assert.Equal(t, 0, r.code)
	assert.Regexp(t, `^ec2volume \S+( rev [0-9a-f]{1,7}(-dirty)?)?\n$`, r.stdout)
	assert.Empty(t, r.stderr)
}

// TestExitCodeTable: the numbers are the table every cloudluks program shares (usage 1,
// not found 4, in use 5), written out so a change of the table shows here.
func TestExitCodeTable(t *testing.T) {
	assert.Equal(t, 1, exitCode(errUsage))
	assert.Equal(t, 1, exitCode(errors.New("EC2 refused")))
	assert.Equal(t, 4, exitCode(ebs.ErrNotFound))
	assert.Equal(t, 4, exitCode(ebs.ErrDeviceNotFound))
	assert.Equal(t, 5, exitCode(ebs.ErrInUse))
}

// TestVerbHelp: "help COMMAND" and "COMMAND --help" print the synopsis, summary and example
// on stdout without contacting EC2; an unknown command is a usage error.
func TestVerbHelp(t *testing.T) {
	for _, args := range [][]string{{"help", "create"}, {"create", "--help"}, {"create", "-h"}} {
		var out, errb bytes.Buffer
		assert.Equal(t, 0, run(args, &out, &errb), "%v", args)
		assert.True(t, strings.HasPrefix(out.String(), "Usage: ec2volume create --size GiB"), "%v: %q", args, out.String())
		assert.Contains(t, out.String(), "\nExample:\n  ec2volume create --size 10 --name mysql-data\n", "%v", args)
		assert.Empty(t, errb.String(), "%v", args)
	}
	var out, errb bytes.Buffer
	assert.Equal(t, 0, run([]string{"create", "--help"}, &out, &errb))
	assert.Contains(t, out.String(), "-size", "the verb's flags follow")
	out.Reset()
	assert.Equal(t, 1, run([]string{"help", "nope"}, &out, &errb))
	assert.Empty(t, out.String())
	assert.Contains(t, errb.String(), `ec2volume: unknown command "nope"`)
}
