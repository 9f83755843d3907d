package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/internal/awstest"
	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/cloudluks/cloudluks/keeper/vault"
	"github.com/cloudluks/cloudluks/luks"
)

// The three commands an operator runs, end to end against the real instance side: vault add
// (the passphrase piped), trust (a fingerprint given by hand), run --once through a real sshd
// into the real `encrypted-volume serve` on a LUKS image, with EC2 in moto. The image is a
// plain file with no NVMe serial behind it, so the keeper must refuse (exit 2) after reading
// the header — and neither the passphrase nor the volume key crosses the session, the audit
// log or the program's output.
func TestOperatorCommandsAgainstRealServe(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		testenv.Missing(t, "ssh-keygen", "apt-get install openssh-client")
	}
	dir := t.TempDir()
	serve := filepath.Join(dir, "encrypted-volume")
	out, err := exec.Command("go", "build", "-o", serve, "../encrypted-volume").CombinedOutput()
	require.NoError(t, err, "%s", out)

	const diskPass = "disk passphrase e41f"
	img := filepath.Join(dir, "volume.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(4<<20))
	h, vk, err := luks.Format(context.Background(), f, []byte(diskPass), luks.FormatOptions{ForceIterations: 1000})
	require.NoError(t, err)
	key := bytes.Clone(vk.Bytes())
	vk.Wipe()
	f.Close()

	clientKey := filepath.Join(dir, "id_ed25519")
	o, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", clientKey).CombinedOutput()
	require.NoError(t, err, "%s", o)
	pub, err := os.ReadFile(clientKey + ".pub")
	require.NoError(t, err)
	rec := filepath.Join(dir, "stdin.rec")
	root := filepath.Join(dir, "root")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	forced := `restrict,command="tee -a ` + rec + ` | ` + serve + ` serve --device ` + img +
		` --name data --mount /data --lock-dir ` + filepath.Join(dir, "lock") + ` --root ` + root + `" `
	s := startSSHD(t, forced+strings.TrimSpace(string(pub)))

	ctx := context.Background()
	moto := awstest.StartMoto(t)
	client := awstest.NewEC2Client(moto)
	id := awstest.RunInstance(t, ctx, client, "us-east-1a", "/dev/sdf")
	vols, err := client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{id}},
		{Name: aws.String("attachment.device"), Values: []string{"/dev/sdf"}},
	}})
	require.NoError(t, err)
	volID := aws.ToString(vols.Volumes[0].VolumeId)
	for _, kv := range awstest.Env(moto, "") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	u, err := user.Current()
	require.NoError(t, err)
	audit := filepath.Join(dir, "audit.jsonl")
	cfg := writeConfig(t, dir, `audit_log = "`+audit+`"`, "[ssh]\nuser = \""+u.Username+"\"\nkey = \""+clientKey+"\"\n[[target]]\nname = \"web-1/data\"\ninstance = \""+id+"\"\nvolume = \""+volID+"\"\nmapping = \"data\"\nmount = \"/data\"\n  [target.ssh]\n  address = \""+s.addr+"\"\n")
	v, err := vault.Create(filepath.Join(dir, "vault.age"), []byte("vault pass"), vault.Options{WorkFactor: 10})
	require.NoError(t, err)
	v.Close()

	// 1. keeper vault add; with --header a mistyped passphrase is refused, not stored.
	hb := filepath.Join(dir, "header.bak")
	raw, err := os.ReadFile(img)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(hb, raw[:2<<20], 0o600))
	r := kp(t, "vault pass\ntypo\n", "-c", cfg, "vault", "add", volID, "--header", hb)
	assert.Equal(t, cli.ExitPermission, r.code)
	assert.Contains(t, r.stderr, "No key available with this passphrase.")
	r = kp(t, "vault pass\n", "-c", cfg, "vault", "add", volID, "--header", hb, "--uuid", uuid1)
	assert.Equal(t, cli.ExitUsage, r.code, "--uuid disagrees with the header")
	r = kp(t, "vault pass\n"+diskPass+"\n", "-c", cfg, "vault", "add", volID, "--header", hb, "--label", "web-1/data")
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stderr, "the passphrase opens key slot 0")
	r = kp(t, "vault pass\n", "-c", cfg, "vault", "list")
	assert.Contains(t, r.stdout, volID+"  "+h.UUID+"  web-1/data")
	// 2. keeper trust
	r = kp(t, "", "-c", cfg, "trust", id, "--fingerprint", s.fp)
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	// 3. keeper run --once
	r = kp(t, "vault pass\n", "-c", cfg, "run", "--once")
	assert.Equal(t, cli.ExitPermission, r.code)
	assert.Equal(t, "web-1/data\t"+id+"\trefused\t", r.stdout[:len("web-1/data\t"+id+"\trefused\t")])
	assert.Contains(t, r.stderr, "device serial is not the volume ID")

	sent, err := os.ReadFile(rec)
	require.NoError(t, err)
	require.NotEmpty(t, sent, "the keeper talked to serve")
	log, err := os.ReadFile(audit)
	require.NoError(t, err)
	assert.Contains(t, string(log), `"step":"serial"`)
	for what, b := range map[string][]byte{"the session": sent, "the audit log": log, "stdout": []byte(r.stdout), "stderr": []byte(r.stderr)} {
		assert.False(t, bytes.Contains(b, key), "the volume key in %s", what)
		assert.False(t, bytes.Contains(b, []byte(diskPass)), "the passphrase in %s", what)
	}
	st, err := os.Stat(audit)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}
