package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// envGuest names the registered guest function a Start boot runs instead of the tests.
const envGuest = "CLOUDLUKS_VM_GUEST"

// guests are the functions GuestMain registered, by name.
var guests struct {
	mu sync.Mutex
	fn map[string]func() error
}

// GuestMain registers fn as the guest program called name, for VMs made by Start: in such a
// VM, Main sets the guest up as for a test and then runs fn instead of the tests. fn may run
// until the host kills the VM (a server); when it returns the VM powers off, and an error
// makes VM.Wait fail. Register in an init function or in TestMain before calling Main: the
// guest is the same binary and must register the same names.
func GuestMain(name string, fn func() error) {
	if name == "" || !cmdlineSafe(name) || fn == nil {
		panic(fmt.Sprintf("vmtest: GuestMain(%q): want a non-empty name of printable ASCII without spaces and a function", name))
	}
	guests.mu.Lock()
	defer guests.mu.Unlock()
	if guests.fn == nil {
		guests.fn = map[string]func() error{}
	}
	if _, dup := guests.fn[name]; dup {
		panic("vmtest: GuestMain(" + name + ") registered twice")
	}
	guests.fn[name] = fn
}

func guestFunc(name string) (func() error, bool) {
	guests.mu.Lock()
	defer guests.mu.Unlock()
	fn, ok := guests.fn[name]
	return fn, ok
}

// VM is a guest that runs while the host test keeps control (Start). Its methods are for the
// host test and safe for concurrent use.
type VM struct {
	t     *testing.T
	p     *plan
	guest string

	mu      sync.Mutex
	console bytes.Buffer // every boot's raw console output, in order
	bootAt  int          // offset in console where the current boot began
	boots   int
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current boot's qemu has exited
	res     bootResult
	killed  bool
	changed chan struct{} // closed and replaced whenever console grows or a boot ends
}

// ErrVMKilled is returned by VM.Wait when the boot ended by VM.Kill.
var ErrVMKilled = errors.New("vmtest: the VM was killed")

// Start boots a VM that runs the guest function registered as Options.Guest (see GuestMain)
// and returns at once, while qemu runs: the host test talks to the guest (Net, Addr),
// watches its console, kills it (Kill) and boots it again from the same disk images (Boot).
// The VM is killed when the test ends. Missing qemu or kernel: testenv.Missing. Start must not
// be called in the guest.
func Start(t *testing.T, opts Options) *VM {
	t.Helper()
	if InVM() {
		panic("vmtest: Start called in the guest")
	}
	if opts.Guest == "" && opts.SSH != nil {
		opts.Guest = idleGuest
	}
	if opts.Guest == "" {
		t.Fatal("vmtest: Start needs Options.Guest, the name of a function registered with GuestMain (or Options.SSH: then the guest only serves sshd)")
	}
	if _, ok := guestFunc(opts.Guest); !ok {
		t.Fatalf("vmtest: no guest function %q registered (GuestMain)", opts.Guest)
	}
	p, ok := prepare(t, opts)
	if !ok {
		return nil
	}
	vm := &VM{t: t, p: p, guest: opts.Guest, changed: make(chan struct{})}
	t.Cleanup(func() { vm.Kill() })
	vm.Boot()
	return vm
}

// Addr is "127.0.0.1:PORT", the host end of Options.Net's forward; it stays the same across
// boots. Empty without Options.Net.
func (vm *VM) Addr() string {
	if vm.p.opts.Net == nil {
		return ""
	}
	return "127.0.0.1:" + strconv.Itoa(vm.p.opts.Net.HostPort)
}

// Boots is the number of boots so far (1 after Start).
func (vm *VM) Boots() int {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.boots
}

// Console returns the raw serial console output of every boot so far, in order.
func (vm *VM) Console() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.console.String()
}

// BootConsole returns the console output of the current (or last) boot.
func (vm *VM) BootConsole() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return string(vm.console.Bytes()[vm.bootAt:])
}

// WaitConsole waits until the current boot's console contains s, the boot ends, or ctx ends.
func (vm *VM) WaitConsole(ctx context.Context, s string) error {
	for {
		vm.mu.Lock()
		found := bytes.Contains(vm.console.Bytes()[vm.bootAt:], []byte(s))
		changed, done := vm.changed, vm.done
		vm.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-done:
			vm.mu.Lock()
			found = bytes.Contains(vm.console.Bytes()[vm.bootAt:], []byte(s))
			vm.mu.Unlock()
			if found {
				return nil
			}
			return fmt.Errorf("vmtest: boot %d ended without %q on the console", vm.Boots(), s)
		case <-ctx.Done():
			return fmt.Errorf("vmtest: waiting for %q on the console: %w", s, ctx.Err())
		case <-changed:
		}
	}
}

// Boot starts the VM again from the same disk images, initramfs and forwarded port, after
// the previous boot ended (Kill or Wait); a boot still running is killed first. The guest
// kernel draws a new boot id.
func (vm *VM) Boot() {
	vm.t.Helper()
	vm.Kill()
	nonce := newNonce(vm.t)
	timeout := vm.p.timeout(vm.t)
	cmdline, err := kernelCmdline(vm.p.env(nonce, vm.guest), nil)
	if err != nil {
		vm.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, vm.p.qemu, qemuArgs(vm.p.kernel.Vmlinuz, vm.p.initrd, cmdline, vm.p.opts)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	setProcAttr(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		vm.t.Fatal(err)
	}
	vm.mu.Lock()
	vm.boots++
	n := vm.boots
	vm.bootAt = vm.console.Len()
	vm.res, vm.killed = bootResult{}, false
	done := make(chan struct{})
	vm.done, vm.cmd = done, cmd
	vm.mu.Unlock()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		vm.mu.Lock()
		vm.res.why = "starting qemu: " + err.Error()
		close(done)
		vm.mu.Unlock()
		vm.t.Fatalf("vmtest: %s", vm.res.why)
	}
	vm.t.Logf("vmtest: boot %d of guest %q started (%s)", n, vm.guest, vm.Addr())
	out := vm.t.Output()
	go func() {
		defer cancel()
		res := scanConsole(io.TeeReader(stdout, consoleWriter{vm}), nonce, func(line string) {
			fmt.Fprintf(out, "[boot %d] %s\n", n, line)
		})
		waitErr := cmd.Wait()
		res.elapsed = time.Since(start)
		res.stderr = stderr.String()
		vm.mu.Lock()
		defer vm.mu.Unlock()
		if !res.found {
			switch {
			case vm.killed:
				res.why = ErrVMKilled.Error()
			case ctx.Err() != nil:
				res.why = fmt.Sprintf("timed out after %s (Options.Timeout or the test deadline); qemu killed", timeout)
			case res.why != "":
			case waitErr != nil:
				res.why = "qemu: " + waitErr.Error()
			default:
				res.why = "the VM stopped without printing the result line"
			}
		}
		vm.res = res
		close(done)
		close(vm.changed)
		vm.changed = make(chan struct{})
	}()
}

// consoleWriter appends console bytes to the VM's record and wakes WaitConsole.
type consoleWriter struct{ vm *VM }

func (w consoleWriter) Write(b []byte) (int, error) {
	w.vm.mu.Lock()
	defer w.vm.mu.Unlock()
	w.vm.console.Write(b)
	close(w.vm.changed)
	w.vm.changed = make(chan struct{})
	return len(b), nil
}

// Kill ends the current boot at once, without warning the guest: a crash or a pulled plug (the
// guest's unwritten page cache is lost; what reached the disk images stays). It waits until
// qemu has exited. Nothing happens when no boot is running.
func (vm *VM) Kill() {
	vm.mu.Lock()
	cmd, done := vm.cmd, vm.done
	if cmd == nil || done == nil {
		vm.mu.Unlock()
		return
	}
	select {
	case <-done:
		vm.mu.Unlock()
		return
	default:
	}
	vm.killed = true
	vm.mu.Unlock()
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
	<-done
}

// Wait waits for the current boot to end and returns nil when the guest function returned
// nil (the guest powered off), ErrVMKilled after Kill, and an error saying why otherwise.
func (vm *VM) Wait() error {
	vm.mu.Lock()
	done := vm.done
	vm.mu.Unlock()
	if done == nil {
		return errors.New("vmtest: the VM was never booted")
	}
	<-done
	vm.mu.Lock()
	defer vm.mu.Unlock()
	res := vm.res
	switch {
	case res.found && res.rc == 0:
		return nil
	case res.found:
		return fmt.Errorf("vmtest: guest %q failed (exit code %d); its output is in the test log", vm.guest, res.rc)
	case vm.killed:
		return ErrVMKilled
	default:
		return fmt.Errorf("vmtest: no result from guest %q: %s\nlast console lines:\n%s\nqemu stderr:\n%s",
			vm.guest, res.why, strings.Join(res.tail, "\n"), strings.TrimSpace(res.stderr))
	}
}
