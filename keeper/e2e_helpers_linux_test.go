//go:build linux

package keeper_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/cloudluks/cloudluks/internal/testenv"
	"github.com/cloudluks/cloudluks/keeper"
	"github.com/cloudluks/cloudluks/luks"
)

// e2eVault is the keeper's Secrets: one passphrase per volume, handed out as copies (the
// keeper zeroes what it gets).
type e2eVault struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (v *e2eVault) Passphrase(vol string) ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p, ok := v.m[vol]
	if !ok {
		return nil, keeper.ErrNoPassphrase
	}
	return bytes.Clone(p), nil
}

// lockedBuffer is an io.Writer several goroutines write to (an audit log, a request log).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// auditLine is the part of a keeper audit line the test reads.
type auditLine struct {
	Target   string `json:"target"`
	BootID   string `json:"boot_id"`
	Step     string `json:"step"`
	Decision string `json:"decision"`
	Detail   string `json:"detail"`
}

func parseAudit(t *testing.T, b []byte) []auditLine {
	t.Helper()
	var out []auditLine
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var a auditLine
		require.NoError(t, json.Unmarshal(l, &a), "audit line %s", l)
		out = append(out, a)
	}
	return out
}

// unlocksFor counts the audit lines saying this keeper's key opened the volume on boot.
func unlocksFor(lines []auditLine, boot string) int {
	n := 0
	for _, a := range lines {
		if a.Decision == string(keeper.OutcomeUnlocked) && (boot == "" || a.BootID == boot) {
			n++
		}
	}
	return n
}

// newPassphrase is random and long enough that finding it anywhere is no accident.
func newPassphrase(t *testing.T) []byte {
	b := make([]byte, 24)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return []byte("e2e-pass-" + hex.EncodeToString(b))
}

// makeEncryptedDisk formats a LUKS1 image with pass on the host and puts an ext4 file system
// made by the real mkfs.ext4 into its payload through luks.Volume (the host kernel has no
// dm-crypt), so the instance only opens and mounts it. It returns the image, the header UUID
// and a copy of the volume key (for the secret checks).
func makeEncryptedDisk(t *testing.T, pass []byte, size int64) (img, uuid string, vk []byte) {
	t.Helper()
	mkfs := testenv.LookPath(t, "mkfs.ext4", "apt-get install e2fsprogs")
	dir := t.TempDir()
	img = filepath.Join(dir, "volume.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Truncate(size))
	h, key, err := luks.Format(context.Background(), f, pass, luks.FormatOptions{ForceIterations: 1000})
	require.NoError(t, err)
	defer key.Wipe()
	vol, err := luks.NewVolume(f, h, key)
	require.NoError(t, err)
	defer vol.Close()

	fsImg := filepath.Join(dir, "fs.img")
	require.NoError(t, os.WriteFile(fsImg, nil, 0o600))
	require.NoError(t, os.Truncate(fsImg, vol.Size()))
	out, err := exec.Command(mkfs, "-q", "-F", "-L", "data", fsImg).CombinedOutput()
	require.NoError(t, err, "%s", out)
	src, err := os.Open(fsImg)
	require.NoError(t, err)
	defer src.Close()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < vol.Size(); off += int64(len(buf)) {
		n, err := src.ReadAt(buf, off)
		if n == 0 && err == io.EOF {
			break
		}
		if err != nil && err != io.EOF {
			require.NoError(t, err)
		}
		if bytes.Count(buf[:n], []byte{0}) == n {
			continue // sparse stays sparse; the payload of a fresh image reads as what luks wrote
		}
		_, err = vol.WriteAt(buf[:n], off)
		require.NoError(t, err)
	}
	require.NoError(t, f.Sync())
	return img, h.UUID, bytes.Clone(key.Bytes())
}

// secretForms are the spellings of a secret a leak could take.
func secretForms(s []byte) [][]byte {
	return [][]byte{
		s,
		[]byte(hex.EncodeToString(s)),
		[]byte(strings.ToUpper(hex.EncodeToString(s))),
		[]byte(base64.StdEncoding.EncodeToString(s)),
		[]byte(base64.RawURLEncoding.EncodeToString(s)),
	}
}

// requireAbsent fails when any form of secret occurs in data.
func requireAbsent(t *testing.T, what string, secret []byte, where string, data []byte) {
	t.Helper()
	for i, f := range secretForms(secret) {
		if bytes.Contains(data, f) {
			t.Errorf("the %s (form %d) appears in %s", what, i, where)
		}
	}
}

// fileContains reports whether the file at path holds needle, reading it in chunks (disk
// images are large and sparse).
func fileContains(t *testing.T, path string, needle []byte) bool {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 4<<20)
	keep := len(needle) - 1
	carry := 0
	for {
		n, err := f.Read(buf[carry:])
		if n > 0 {
			if bytes.Contains(buf[:carry+n], needle) {
				return true
			}
			if carry+n > keep {
				copy(buf, buf[carry+n-keep:carry+n])
				carry = keep
			}
		}
		if err == io.EOF {
			return false
		}
		require.NoError(t, err)
	}
}

// recordingProxy returns a fault function for awstest.StartProxy that records every EC2
// request (URL and form body) and forwards it unchanged.
func recordingProxy(log *lockedBuffer) func(http.ResponseWriter, *http.Request, []byte) bool {
	return func(_ http.ResponseWriter, r *http.Request, body []byte) bool {
		fmt.Fprintf(log, "%s %s\n%s\n", r.Method, r.URL, body)
		for k, v := range r.Header {
			fmt.Fprintf(log, "%s: %s\n", k, strings.Join(v, ","))
		}
		return false
	}
}

// volumeAt returns the EBS volume mapped at device on instance, from EC2.
func volumeAt(t *testing.T, ctx context.Context, c *ec2.Client, instance, device string) string {
	t.Helper()
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instance}})
	require.NoError(t, err)
	require.Len(t, out.Reservations, 1)
	for _, m := range out.Reservations[0].Instances[0].BlockDeviceMappings {
		if m.DeviceName != nil && *m.DeviceName == device && m.Ebs != nil && m.Ebs.VolumeId != nil {
			return *m.Ebs.VolumeId
		}
	}
	t.Fatalf("no volume at %s on %s", device, instance)
	return ""
}

// inspector is the test's own unrestricted SSH login on the instance, to look around.
type inspector struct {
	t    *testing.T
	addr string
	key  ssh.Signer
	pin  ssh.PublicKey
	c    *ssh.Client
}

// run runs cmd in a shell on the instance, dialling (again) when needed, and returns its
// output and exit error.
func (in *inspector) run(ctx context.Context, cmd string) (string, error) {
	if in.c == nil {
		c, err := ssh.Dial("tcp", in.addr, &ssh.ClientConfig{
			User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(in.key)},
			HostKeyCallback: ssh.FixedHostKey(in.pin), Timeout: 20 * time.Second,
		})
		if err != nil {
			return "", err
		}
		in.c = c
	}
	s, err := in.c.NewSession()
	if err != nil {
		in.c.Close()
		in.c = nil
		return "", err
	}
	defer s.Close()
	type result struct {
		out []byte
		err error
	}
	ch := make(chan result, 1)
	go func() { out, err := s.CombinedOutput(cmd); ch <- result{out, err} }()
	select {
	case r := <-ch:
		return string(r.out), r.err
	case <-ctx.Done():
		in.close()
		return "", ctx.Err()
	}
}

func (in *inspector) must(ctx context.Context, cmd string) string {
	in.t.Helper()
	out, err := in.run(ctx, cmd)
	require.NoError(in.t, err, "%s: %s", cmd, out)
	return out
}

func (in *inspector) close() {
	if in.c != nil {
		in.c.Close()
		in.c = nil
	}
}

// mounted reports whether the instance has something mounted at mnt.
func (in *inspector) mounted(ctx context.Context, mnt string) bool {
	out, err := in.run(ctx, "cat /proc/mounts")
	if err != nil {
		in.close()
		return false
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == mnt {
			return true
		}
	}
	return false
}

// waitMounted polls until mnt is mounted on the instance and returns when it was seen.
func (in *inspector) waitMounted(ctx context.Context, mnt string) (time.Time, error) {
	for {
		if in.mounted(ctx, mnt) {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s not mounted on the instance: %w", mnt, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
