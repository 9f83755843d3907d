// Package awstest starts the local AWS emulators the tests run against: moto_server (the EC2
// Query API) and amazon-ec2-metadata-mock (IMDS). Both are bound to 127.0.0.1 on a free port and
// stopped when the test ends — their whole process group, and on Linux also when the test
// binary dies without running its cleanups (a -timeout panic, SIGKILL). A missing program
// skips the test locally and fails it under CI=true (see internal/testenv).
//
// The tests use real programs rather than in-process fakes so that the SDK's serializers,
// signers, retryers and the IMDSv2 token flow are exercised exactly as against AWS.
package awstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/build"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// Region is the region the emulators are configured for.
const Region = "us-east-1"

// Dummy credentials: moto routes a request to the EC2 backend by the service name in the
// SigV4 credential scope, so requests must be signed, but the keys are not checked.
const (
	AccessKeyID     = "AKIAIOSFODNN7EXAMPLE"
	SecretAccessKey = "cloudluks-test-secret"
)

// MotoHint and MetadataMockHint say how to install the emulators.
const (
	MotoHint         = "pip install 'moto[server]==5.2.1'"
	MetadataMockHint = "go install github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock@v1.13.0"
)

// startTimeout bounds how long an emulator may take to answer after start (moto imports a
// large Python package tree; a cold start on a loaded 2-core machine takes several seconds).
const startTimeout = 60 * time.Second

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("awstest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartMoto starts `moto_server -H 127.0.0.1 -p PORT`, waits until it answers HTTP and returns
// its endpoint ("http://127.0.0.1:PORT"). The server is killed when t ends. Each call gets a
// fresh, empty emulator.
func StartMoto(t testing.TB) string {
	t.Helper()
	bin := testenv.LookPath(t, "moto_server", MotoHint)
	return startServer(t, "moto_server", func(port int) *exec.Cmd {
		return exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	}, "/moto-api/")
}

// MetadataConfig is what the metadata mock reports about "this" instance.
type MetadataConfig struct {
	InstanceID string // e.g. the ID of an instance made in moto
	AZ         string // e.g. "us-east-1c"
	Region     string // "" = derived from AZ
	// AllowV1 serves IMDSv1 (GET without a session token) too, as instances launched with
	// HttpTokens=optional do; the default is IMDSv2 only.
	AllowV1 bool
}

// MetadataMockPath returns the ec2-metadata-mock program ($PATH, then $GOPATH/bin), or skips
// or fails t when it is missing.
func MetadataMockPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("ec2-metadata-mock"); err == nil {
		return p
	}
	for _, dir := range filepath.SplitList(build.Default.GOPATH) {
		p := filepath.Join(dir, "bin", "ec2-metadata-mock")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	testenv.Missing(t, "ec2-metadata-mock", MetadataMockHint)
	return ""
}

// StartMetadataMock runs amazon-ec2-metadata-mock on 127.0.0.1 in IMDSv2-only mode (unless
// cfg.AllowV1), with the
// instance ID, availability zone and region of cfg in both the metadata paths and the
// instance identity document, and returns its endpoint for
// AWS_EC2_METADATA_SERVICE_ENDPOINT / imds.Options.Endpoint.
func StartMetadataMock(t testing.TB, cfg MetadataConfig) string {
	t.Helper()
	bin := MetadataMockPath(t)
	if cfg.Region == "" {
		cfg.Region = RegionOf(cfg.AZ)
	}
	home := t.TempDir()
	doc := map[string]any{
		"metadata": map[string]any{"values": map[string]any{
			"instance-id":                 cfg.InstanceID,
			"placement-availability-zone": cfg.AZ,
			"placement-region":            cfg.Region,
		}},
		"dynamic": map[string]any{"values": map[string]any{
			"instance-identity-document": map[string]any{
				"accountId":        "123456789012",
				"imageId":          "ami-12c6146b",
				"availabilityZone": cfg.AZ,
				"version":          "2017-09-30",
				"privateIp":        "10.0.7.10",
				"instanceId":       cfg.InstanceID,
				"pendingTime":      "2019-10-31T07:02:24Z",
				"architecture":     "x86_64",
				"instanceType":     "m4.xlarge",
				"region":           cfg.Region,
			},
		}},
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("awstest: metadata config: %v", err)
	}
	cfgPath := filepath.Join(home, "aemm-config.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatalf("awstest: metadata config: %v", err)
	}
	return startServer(t, "ec2-metadata-mock", func(port int) *exec.Cmd {
		args := []string{"-n", "127.0.0.1", "-p", strconv.Itoa(port), "-c", cfgPath}
		if !cfg.AllowV1 {
			args = append(args, "-I")
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "HOME="+home)
		cmd.Dir = home
		return cmd
	}, "/latest/meta-data/")
}

// RegionOf strips the zone letter from an availability zone name ("us-east-1c" → "us-east-1").
func RegionOf(az string) string {
	return strings.TrimRightFunc(az, func(r rune) bool { return r >= 'a' && r <= 'z' })
}

// startServer starts the command made by mk on a free port, waits until probePath answers any
// HTTP status, and registers a cleanup that kills the process group. A port lost to a race
// (the process exits early) is retried with another port.
func startServer(t testing.TB, name string, mk func(port int) *exec.Cmd, probePath string) string {
	t.Helper()
	var lastErr error
	for try := 0; try < 3; try++ {
		port := FreePort(t)
		cmd := mk(port)
		cmd.SysProcAttr = procAttr()
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("awstest: start %s: %v", name, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			// Kill the whole group: a pyenv shim or wrapper may have forked.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
		if err := waitHTTP(endpoint+probePath, exited); err != nil {
			stop()
			lastErr = fmt.Errorf("%w; output:\n%s", err, out.String())
			continue
		}
		if ok, err := listensOn(cmd.Process.Pid, port); !ok {
			// Another program answered on the port: ours lost the race for it.
			stop()
			lastErr = fmt.Errorf("port %d answered, but not by %s (pid %d) (%v); output:\n%s", port, name, cmd.Process.Pid, err, out.String())
			continue
		}
		t.Cleanup(func() {
			stop()
			if t.Failed() {
				t.Logf("%s output:\n%s", name, tail(out.String(), 4000))
			}
		})
		return endpoint
	}
	t.Fatalf("awstest: %s did not start: %v", name, lastErr)
	return ""
}

func waitHTTP(url string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("process exited before answering")
		case <-ctx.Done():
			return fmt.Errorf("no answer from %s within %v: %v", url, startTimeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// NewEC2Client returns a plain SDK client for endpoint with dummy credentials and SDK retries
// off: the tests use it to look at the emulator's state behind the code under test.
func NewEC2Client(endpoint string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey}, nil
		}),
		Retryer: aws.NopRetryer{},
	})
}

// Env returns environment variables that point the AWS SDK's default configuration (and so
// any program using config.LoadDefaultConfig) at the emulators, isolated from the user's
// ~/.aws files. metadataEndpoint may be "".
func Env(ec2Endpoint, metadataEndpoint string) []string {
	env := []string{
		"AWS_ENDPOINT_URL_EC2=" + ec2Endpoint,
		"AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_V1_DISABLED=true",
	}
	if metadataEndpoint != "" {
		env = append(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+metadataEndpoint)
	} else {
		env = append(env, "AWS_EC2_METADATA_DISABLED=true")
	}
	return env
}

// MotoAMI is an x86_64 image in moto's built-in catalogue (Ubuntu 14.04).
const MotoAMI = "ami-1e749f67"

// EC2Instances is the part of the EC2 client RunInstance needs.
type EC2Instances interface {
	DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
}

// RunInstance launches one instance in az using an AMI moto ships, with extra block-device
// mappings (each gets a fresh EBS volume in moto), and returns its ID.
func RunInstance(t testing.TB, ctx context.Context, client EC2Instances, az string, devices ...string) string {
	t.Helper()
	// Ask for one of moto's built-in AMIs by ID first: listing every image makes moto load
	// its per-region catalogue, which takes seconds.
	imgs, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{MotoAMI}})
	if err != nil || len(imgs.Images) == 0 {
		imgs, err = client.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	}
	if err != nil {
		t.Fatalf("awstest: DescribeImages: %v", err)
	}
	var ami string
	for _, img := range imgs.Images {
		if img.ImageId != nil && img.Architecture == types.ArchitectureValuesX8664 {
			ami = *img.ImageId
			break
		}
	}
	if ami == "" {
		t.Fatalf("awstest: moto lists no x86_64 AMI (%d images)", len(imgs.Images))
	}
	var bdm []types.BlockDeviceMapping
	for _, d := range devices {
		bdm = append(bdm, types.BlockDeviceMapping{
			DeviceName: aws.String(d),
			Ebs:        &types.EbsBlockDevice{VolumeSize: aws.Int32(1), DeleteOnTermination: aws.Bool(true)},
		})
	}
	out, err := client.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId:             aws.String(ami),
		MinCount:            aws.Int32(1),
		MaxCount:            aws.Int32(1),
		InstanceType:        types.InstanceTypeM5Large,
		Placement:           &types.Placement{AvailabilityZone: aws.String(az)},
		BlockDeviceMappings: bdm,
	})
	if err != nil {
		t.Fatalf("awstest: RunInstances: %v", err)
	}
	if len(out.Instances) != 1 || out.Instances[0].InstanceId == nil {
		t.Fatalf("awstest: RunInstances returned %d instances", len(out.Instances))
	}
	return *out.Instances[0].InstanceId
}
