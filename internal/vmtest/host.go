package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudluks/cloudluks/internal/testenv"
)

// The host side keeps one piece of process-wide state: the test binary and the initramfs
// images built from it. Building them costs seconds and they are identical for every VM test
// of a package, so they are made once per test process and removed by Main when m.Run returns.
var host struct {
	mainCalled atomic.Bool

	mu     sync.Mutex
	dir    string            // scratch directory for the binary and the images
	binary string            // static test binary for /init
	binErr error             // sticky build failure
	images map[string]string // image key → initramfs path

	cleanup bool // cleanupScratch registered (no Main)
}

// kernel is an unpacked Debian kernel package.
type kernel struct {
	Release string // e.g. 6.1.0-56-cloud-amd64
	Vmlinuz string
	ModDir  string // lib/modules/<release>/kernel
}

// kernelDir is the directory setup-kernel.sh unpacks into.
func kernelDir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	return DefaultDir
}

// errNoKernel is returned by findKernel when nothing usable is unpacked.
var errNoKernel = errors.New("no unpacked linux-image-*-cloud-amd64")

// findKernel returns the newest unpacked cloud kernel in dir.
func findKernel(dir string) (kernel, error) {
	matches, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	var ks []kernel
	for _, m := range matches {
		rel := strings.TrimPrefix(filepath.Base(m), "vmlinuz-")
		md := filepath.Join(dir, "lib", "modules", rel, "kernel")
		if st, err := os.Stat(md); err == nil && st.IsDir() {
			ks = append(ks, kernel{Release: rel, Vmlinuz: m, ModDir: md})
		}
	}
	if len(ks) == 0 {
		return kernel{}, fmt.Errorf("%w in %s", errNoKernel, dir)
	}
	sort.Slice(ks, func(i, j int) bool { return versionLess(ks[i].Release, ks[j].Release) })
	return ks[len(ks)-1], nil
}

// versionLess compares kernel releases numerically where both have digits ("6.1.0-9" <
// "6.1.0-56").
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		da, ra := splitNum(a)
		db, rb := splitNum(b)
		if da != "" && db != "" {
			x, _ := strconv.Atoi(da)
			y, _ := strconv.Atoi(db)
			if x != y {
				return x < y
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func splitNum(s string) (digits, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

// scratch returns the process's scratch directory, creating it on first use. Main removes
// it at the end; without Main (Options.Init), the test that made it does, through
// cleanupScratch.
func scratch() (string, error) {
	if host.dir == "" {
		d, err := os.MkdirTemp("", "vmtest-")
		if err != nil {
			return "", err
		}
		host.dir = d
	}
	return host.dir, nil
}

// testBinary returns a static build of the running test binary: the running one itself when
// it is already static (CGO_ENABLED=0), else `go test -c` of the package in the current
// directory (go test runs tests in the package directory) with CGO_ENABLED=0.
func testBinary(t *testing.T) (string, error) {
	host.mu.Lock()
	defer host.mu.Unlock()
	if host.binary != "" || host.binErr != nil {
		return host.binary, host.binErr
	}
	self, err := os.Executable()
	if err == nil && isStatic(self) {
		host.binary = self
		return self, nil
	}
	dir, err := scratch()
	if err != nil {
		host.binErr = err
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		if r := os.Getenv("GOROOT"); r != "" {
			goTool = filepath.Join(r, "bin", "go")
		} else {
			host.binErr = fmt.Errorf("vmtest: the running test binary is not static and no go command is in PATH: %w", err)
			return "", host.binErr
		}
	}
	out := filepath.Join(dir, "pkg.test")
	start := time.Now()
	cmd := exec.Command(goTool, append(append([]string{"test", "-c", "-o", out}, rebuildFlags(self)...), rebuildTarget(self))...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		host.binErr = fmt.Errorf("vmtest: building the static test binary (go test -c): %v\n%s", err, b)
		return "", host.binErr
	}
	t.Logf("vmtest: built static test binary in %s", time.Since(start).Round(time.Millisecond))
	host.binary = out
	return out, nil
}

// rebuildTarget names the package whose test binary is running: from its build information
// when readable (the package path plus ".test"), else the current directory, which is the
// package directory under go test.
func rebuildTarget(self string) string {
	if bi, err := buildinfo.ReadFile(self); err == nil && strings.HasSuffix(bi.Path, ".test") {
		return strings.TrimSuffix(bi.Path, ".test")
	}
	return "."
}

// rebuildFlags repeats the build tags the running binary was built with, so the guest runs
// the same test files.
func rebuildFlags(self string) []string {
	bi, err := buildinfo.ReadFile(self)
	if err != nil {
		return nil
	}
	for _, s := range bi.Settings {
		if s.Key == "-tags" && s.Value != "" {
			return []string{"-tags=" + s.Value}
		}
	}
	return nil
}

// initramfs returns the image for binary plus what opts asks for, building it on first use.
func initramfs(t *testing.T, k kernel, binary string, opts Options) (string, error) {
	tools, err := resolveTools(opts.Tools)
	if err != nil {
		return "", fmt.Errorf("vmtest: %w", err)
	}
	sort.Strings(tools)
	files := append([]string(nil), opts.Files...)
	sort.Strings(files)
	mods := append([]string(nil), opts.Modules...)
	sort.Strings(mods)
	var guestFiles []string
	for g, p := range opts.GuestFiles {
		guestFiles = append(guestFiles, g+"="+p)
	}
	sort.Strings(guestFiles)
	key := strings.Join([]string{k.Vmlinuz, binary, strings.Join(tools, ","), strings.Join(files, ","), strings.Join(mods, ","), strings.Join(guestFiles, ",")}, "\x00")

	host.mu.Lock()
	defer host.mu.Unlock()
	if p, ok := host.images[key]; ok {
		return p, nil
	}
	idx, err := moduleIndex(k.ModDir)
	if err != nil {
		return "", fmt.Errorf("vmtest: %w", err)
	}
	required := append(defaultModules(), mods...)
	order, err := loadOrder(idx, required, optionalModules(), readModinfo)
	if err != nil {
		return "", fmt.Errorf("vmtest: %w", err)
	}
	isOpt := map[string]bool{}
	for _, n := range optionalModules() {
		isOpt[modName(n)] = true
	}
	spec := initramfsSpec{Init: binary, Programs: tools, Files: files, GuestFiles: opts.GuestFiles}
	for _, n := range order {
		spec.Modules = append(spec.Modules, moduleRef{Name: n, Path: idx[n], Optional: isOpt[n]})
	}
	dir, err := scratch()
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, "initramfs-*.cpio")
	if err != nil {
		return "", err
	}
	start := time.Now()
	if err := writeInitramfs(f, spec); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if host.images == nil {
		host.images = map[string]string{}
	}
	host.images[key] = f.Name()
	st, _ := os.Stat(f.Name())
	var size int64
	if st != nil {
		size = st.Size()
	}
	t.Logf("vmtest: initramfs %s (%.1f MB, %d modules, %d tools) built in %s",
		filepath.Base(f.Name()), float64(size)/1e6, len(spec.Modules), len(tools), time.Since(start).Round(time.Millisecond))
	return f.Name(), nil
}

// cleanupScratch makes sure the scratch directory is removed when no Main will: at the end of
// t, forgetting what was built there (a later test builds again).
func cleanupScratch(t testing.TB) {
	if host.mainCalled.Load() {
		return
	}
	host.mu.Lock()
	defer host.mu.Unlock()
	if host.cleanup {
		return
	}
	host.cleanup = true
	t.Cleanup(func() {
		host.mu.Lock()
		defer host.mu.Unlock()
		if host.dir != "" && os.Getenv(EnvKeep) != "1" {
			os.RemoveAll(host.dir)
		}
		host.dir, host.images, host.cleanup = "", nil, false
		host.binary, host.binErr = "", nil
		static = map[string]string{}
	})
}

// hostMain runs the tests on the host and removes the scratch directory afterwards.
func hostMain(m *testing.M) int {
	host.mainCalled.Store(true)
	code := m.Run()
	host.mu.Lock()
	defer host.mu.Unlock()
	if host.dir != "" {
		if os.Getenv(EnvKeep) == "1" {
			fmt.Fprintf(os.Stderr, "vmtest: %s=1: keeping %s\n", EnvKeep, host.dir)
		} else {
			os.RemoveAll(host.dir)
		}
	}
	return code
}

// qemuArgs builds qemu's command line; image is the kernel (bzImage) to boot.
func qemuArgs(image, initrd, cmdline string, opts Options) []string {
	args := []string{
		"-M", "q35", "-cpu", "max", "-m", opts.memory(), "-smp", strconv.Itoa(DefaultCPUs),
		// KVM aborts or hangs on these machines; TCG works and exposes AES-NI via -cpu max.
		"-accel", "tcg",
		"-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", image, "-initrd", initrd, "-append", cmdline,
	}
	if n := opts.Net; n != nil {
		// restrict=on isolates the guest (no packets routed to the host or beyond) but keeps
		// explicit forwarding rules; the forward listens on 127.0.0.1 only. romfile= skips
		// the NIC's iPXE ROM: the kernel is booted directly.
		args = append(args,
			"-netdev", fmt.Sprintf("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:%d", n.HostPort, n.GuestPort),
			"-device", "virtio-net-pci,netdev=n0,romfile=")
	} else {
		args = append(args, "-nic", "none")
	}
	for i, d := range opts.Disks {
		id := "d" + strconv.Itoa(i)
		file := strings.ReplaceAll(d.Path, ",", ",,")
		args = append(args, "-drive", "file="+file+",if=none,id="+id+",format=raw,cache=unsafe")
		if d.NVMeSerial != "" {
			args = append(args, "-device", "nvme,serial="+d.NVMeSerial+",drive="+id)
		} else {
			args = append(args, "-device", "virtio-blk-pci,drive="+id+",serial="+diskSerial(i, d))
		}
	}
	return args
}

// guestArgs are the test binary's arguments in the guest.
func guestArgs(name string, timeout time.Duration) []string {
	args := []string{"-test.v=true", "-test.run=" + runPattern(name), "-test.count=1"}
	if testing.Short() {
		args = append(args, "-test.short=true")
	}
	// Leave the guest time to print a goroutine dump before the host gives up.
	if gt := timeout - timeout/6; gt > 10*time.Second {
		args = append(args, "-test.timeout="+gt.Round(time.Second).String())
	}
	return args
}

// Run boots the package's own test binary in a VM and runs only the current test (t.Name())
// there, streaming the guest's output into t.Log and failing t if the guest test fails. It
// returns true in the guest (the caller then does the real work) and false on the host after
// the VM finished. Missing qemu or kernel: testenv.Missing (skip locally, fail under CI).
//
//	func TestOpenClose(t *testing.T) {
//		if !vmtest.Run(t, vmtest.Options{Tools: []string{"cryptsetup"}}) {
//			return
//		}
//		// … runs as root in the guest …
//	}
func Run(t *testing.T, opts Options) bool {
	t.Helper()
	if InVM() {
		return true
	}
	p, ok := prepare(t, opts)
	if !ok {
		return false
	}
	nonce := newNonce(t)
	timeout := p.timeout(t)
	cmdline, err := kernelCmdline(p.env(nonce, ""), guestArgs(t.Name(), timeout))
	if err != nil {
		t.Fatal(err)
	}
	res := boot(t, p.qemu, qemuArgs(p.kernel.Vmlinuz, p.initrd, cmdline, p.opts), nonce, timeout)
	t.Logf("vmtest: VM boot+run took %s", res.elapsed.Round(time.Millisecond))
	switch {
	case res.found && res.rc == 0:
	case res.found:
		t.Fatalf("vmtest: the test failed in the guest (exit code %d); guest output is above", res.rc)
	default:
		t.Fatalf("vmtest: no result from the guest: %s\nlast console lines:\n%s\nqemu stderr:\n%s",
			res.why, strings.Join(res.tail, "\n"), strings.TrimSpace(res.stderr))
	}
	return false
}

// plan is everything one VM needs on the host, shared by its boots.
type plan struct {
	qemu   string
	kernel kernel
	initrd string
	opts   Options // Net.HostPort chosen
}

// prepare checks the host's prerequisites and builds the test binary and the initramfs. It
// returns false when the test was skipped (a missing tool locally).
func prepare(t *testing.T, opts Options) (*plan, bool) {
	t.Helper()
	if !host.mainCalled.Load() && opts.Init == "" {
		t.Fatal("vmtest: the package's TestMain must call vmtest.Main(m) (the guest needs it to boot), or Options.Init must name another init (InitProgram)")
	}
	if err := opts.validate(); err != nil {
		t.Fatal(err)
	}
	cleanupScratch(t)
	opts, err := withSSH(opts)
	if err != nil {
		t.Fatal(err)
	}
	// The guest's tools are copied from the host: a missing one is a missing test dependency
	// like qemu (skip locally, fail under CI), checked before any costly build.
	for _, tool := range opts.Tools {
		hint := "install it on the host; the VM gets a copy with its libraries"
		if filepath.IsAbs(tool) {
			if _, err := os.Stat(tool); err != nil {
				testenv.Missing(t, "guest tool "+tool, hint)
				return nil, false
			}
			continue
		}
		testenv.LookPath(t, tool, hint)
	}
	qemu := testenv.LookPath(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	k, err := findKernel(kernelDir())
	if err != nil {
		testenv.Missing(t, "the Debian cloud kernel ("+err.Error()+")",
			"run internal/vmtest/setup-kernel.sh as root, or set "+EnvDir)
		return nil, false
	}
	for i, d := range opts.Disks {
		if _, err := os.Stat(d.Path); err != nil {
			t.Fatalf("vmtest: disk %d: %v", i, err)
		}
	}
	bin := opts.Init
	if bin == "" {
		if bin, err = testBinary(t); err != nil {
			t.Fatal(err)
		}
	} else if !isStatic(bin) {
		t.Fatalf("vmtest: Options.Init %s: not a static executable", bin)
	}
	initrd, err := initramfs(t, k, bin, opts)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Net != nil && opts.Net.HostPort == 0 {
		n := *opts.Net
		n.HostPort = FreePort(t)
		opts.Net = &n
	}
	return &plan{qemu: qemu, kernel: k, initrd: initrd, opts: opts}, true
}

// env is the guest's environment for one boot; guest names the registered guest function
// (Start) or is empty (Run: the test itself).
func (p *plan) env(nonce, guest string) map[string]string {
	env := map[string]string{envMarker: "1", envNonce: nonce}
	if len(p.opts.Disks) > 0 {
		env[envDisks] = disksEnv(p.opts.Disks)
	}
	if p.opts.Net != nil {
		env[envNet] = "1"
	}
	if p.opts.SSH != nil {
		env[envSSH] = "1"
	}
	if guest != "" {
		env[envGuest] = guest
	}
	for k, v := range p.opts.Env {
		env[k] = v
	}
	return env
}

// timeout is the boot's time limit: Options.Timeout, cut to what the test deadline leaves.
func (p *plan) timeout(t *testing.T) time.Duration {
	timeout := p.opts.timeout()
	if dl, ok := t.Deadline(); ok {
		if left := time.Until(dl) - 5*time.Second; left < timeout {
			timeout = left
		}
	}
	if timeout <= 0 {
		t.Fatal("vmtest: no time left before the test deadline")
	}
	return timeout
}

func newNonce(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// bootResult is what came back from one VM run.
type bootResult struct {
	found   bool // sentinel seen
	rc      int
	why     string // when !found
	tail    []string
	stderr  string
	elapsed time.Duration
}

// tailLines is how many console lines a failure report repeats.
const tailLines = 40

// boot runs qemu, streams its console into t.Log and collects the result.
func boot(t *testing.T, qemu string, args []string, nonce string, timeout time.Duration) bootResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.Stdin = nil
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	setProcAttr(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return bootResult{why: err.Error()}
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return bootResult{why: "starting qemu: " + err.Error()}
	}
	// t.Output: guest lines without this file's name and line number in front of each.
	out := t.Output()
	res := scanConsole(stdout, nonce, func(line string) { fmt.Fprintln(out, line) })
	waitErr := cmd.Wait()
	res.elapsed = time.Since(start)
	res.stderr = stderr.String()
	if !res.found {
		switch {
		case ctx.Err() != nil:
			res.why = fmt.Sprintf("timed out after %s (Options.Timeout or the test deadline); qemu killed", timeout)
		case res.why != "":
		case waitErr != nil:
			res.why = "qemu: " + waitErr.Error()
		default:
			res.why = "the VM stopped without printing the result line"
		}
	}
	return res
}

// scanConsole reads the serial console, logging each meaningful line, until EOF.
func scanConsole(r io.Reader, nonce string, logf func(string)) bootResult {
	var res bootResult
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		raw, err := br.ReadString('\n')
		if raw != "" {
			line := cleanLine(raw)
			if line != "" && !firmwareNoise(line) {
				if rc, ok := parseSentinel(line, nonce); ok {
					res.found, res.rc = true, rc
				} else {
					logf(line)
				}
				if st, ok := parseInitExit(line); ok && !res.found {
					res.why = fmt.Sprintf("the guest test binary exited (status 0x%x: a panic, os.Exit or -test.timeout) before printing its result", st)
				}
				res.tail = append(res.tail, line)
				if len(res.tail) > tailLines {
					res.tail = res.tail[1:]
				}
			}
		}
		if err != nil {
			return res
		}
	}
}
