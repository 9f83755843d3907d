//go:build linux

package keeper_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cloudluks/cloudluks/ebs"
	"github.com/cloudluks/cloudluks/internal/awstest"
	"github.com/cloudluks/cloudluks/internal/vmtest"
	"github.com/cloudluks/cloudluks/keeper"
)

const (
	rescueGate = "/etc/cloudluks/crypttab-gate"
	// rescueUnplugged holds the PCI address of the NVMe controller the gate unbound.
	rescueUnplugged = "/run/cloudluks-unplugged"
	rescuePrompt    = "Please enter passphrase for disk Amazon Elastic Block Store (data): "
	// The control disk's first line: whether EC2 had the volume attached when the VM was
	// (re)booted. The fault proxy writes it; the gate reads it.
	ctlAttached = "attached\n"
	ctlDetached = "detached\n"
)

// crypttabGate stands in for the boot units ordered before sshd on an instance whose
// /etc/crypttab names the data volume without a key file: systemd-cryptsetup asks on the
// console and the boot waits there, sshd never starting. qemu boots every time with the
// NVMe disk in place, so what "the volume is attached" means at boot comes from EC2: the
// control disk (/dev/vda) says what moto said when the proxy turned the RebootInstances into
// a real boot. A volume attached at boot gets the prompt. One that is not attached is not
// there: the gate unbinds the NVMe controller from its driver, so the instance has no such
// block device (the proxy binds it again once EC2 attaches the volume, as a hot-attached EBS
// volume appears), and the crypttab line, nofail, times out and is skipped; the boot goes on
// to sshd.
const crypttabGate = `#!/bin/sh
set -e
read -r state < /dev/vda
echo "         Starting systemd-cryptsetup@data.service - Cryptography Setup for data..."
if [ "$state" = attached ]; then
	printf '%s' "` + rescuePrompt + `"
	exec sleep infinity
fi
cd -P /sys/class/nvme/nvme0/device
echo "${PWD##*/}" > ` + rescueUnplugged + `
echo "${PWD##*/}" > /sys/bus/pci/drivers/nvme/unbind
echo "[ TIME ] Timed out waiting for device dev-disk-by\\x2did-nvme\\x2dAmazon_Elastic_Block_Store_vol.device."
echo "[DEPEND] Dependency failed for systemd-cryptsetup@data.service - Cryptography Setup for data."
`

// ec2Call is one EC2 request the fault proxy saw.
type ec2Call struct {
	Action, Instance, Volume, Force string
	Boot                            int  // the VM's boot at the time
	SSHUp                           bool // that boot's sshd was accepting connections
}

func (c ec2Call) String() string {
	return fmt.Sprintf("%s(%s%s force=%q) boot %d sshd %v", c.Action, c.Instance, c.Volume, c.Force, c.Boot, c.SSHUp)
}

// rescueProxy is the fault proxy in front of moto: for the test's instance it answers
// GetConsoleOutput with the VM's real console text, and makes RebootInstances a real reboot
// of the VM; every other request (and the reboot itself, afterwards) goes to moto.
type rescueProxy struct {
	t        *testing.T
	instance string
	volume   string
	ctlDisk  string
	moto     *ec2.Client // direct, not through the proxy: the proxy's own look-ups are not calls
	log      *lockedBuffer

	mu         sync.Mutex
	denyReboot bool
	vm         *vmtest.VM
	plug       *inspector // its own login, for the hot attach
	calls      []ec2Call
	plugged    sync.WaitGroup
	beforeIn   string // the guest's block devices just before the attach reached it
}

func (p *rescueProxy) setVM(vm *vmtest.VM, plug *inspector) {
	p.mu.Lock()
	p.vm, p.plug = vm, plug
	p.mu.Unlock()
}

func (p *rescueProxy) setDenyReboot(deny bool) {
	p.mu.Lock()
	p.denyReboot = deny
	p.mu.Unlock()
}

func (p *rescueProxy) seen() []ec2Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ec2Call(nil), p.calls...)
}

// consoleLimit is how much console output EC2 keeps: the most recent 64 KiB.
const consoleLimit = 64 << 10

func (p *rescueProxy) fault(w http.ResponseWriter, r *http.Request, body []byte) bool {
	fmt.Fprintf(p.log, "%s %s\n%s\n", r.Method, r.URL, body)
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return false
	}
	c := ec2Call{
		Action:   form.Get("Action"),
		Instance: form.Get("InstanceId") + form.Get("InstanceId.1"),
		Volume:   form.Get("VolumeId") + form.Get("VolumeId.1"),
		Force:    form.Get("Force"),
	}
	p.mu.Lock()
	vm := p.vm
	if vm != nil {
		c.Boot = vm.Boots()
		c.SSHUp = strings.Contains(vm.BootConsole(), vmtest.SSHReady)
	}
	p.calls = append(p.calls, c)
	deny := p.denyReboot
	p.mu.Unlock()
	if vm == nil || c.Instance != p.instance {
		return false
	}
	switch c.Action {
	case "GetConsoleOutput":
		// EC2 keeps the instance's latest console output; the current boot's is what a
		// console after a reboot shows (the kernel's banner is quiet in this VM).
		out := vm.BootConsole()
		if len(out) > consoleLimit {
			out = out[len(out)-consoleLimit:]
		}
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<GetConsoleOutputResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>rescue-proxy</requestId><instanceId>%s</instanceId><timestamp>%s</timestamp><output>%s</output></GetConsoleOutputResponse>`,
			p.instance, time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), base64.StdEncoding.EncodeToString([]byte(out)))
		return true
	case "RebootInstances":
		if deny {
			awstest.EC2Error(w, http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to perform this operation.")
			return true
		}
		// What the instance finds at boot is what EC2 has attached to it right now.
		state := ctlDetached
		out, err := p.moto.DescribeVolumes(r.Context(), &ec2.DescribeVolumesInput{VolumeIds: []string{p.volume}})
		if err != nil {
			p.t.Errorf("proxy: DescribeVolumes for the reboot: %v", err)
			return false
		}
		for _, v := range out.Volumes {
			for _, a := range v.Attachments {
				if a.InstanceId != nil && *a.InstanceId == p.instance && a.State != types.VolumeAttachmentStateDetached {
					state = ctlAttached
				}
			}
		}
		vm.Kill()
		writeCtl(p.t, p.ctlDisk, state)
		vm.Boot()
		return false // and moto records the reboot
	case "AttachVolume":
		if c.Volume != p.volume {
			return false
		}
		// The device appears on the instance after EC2 has taken the attach, not before.
		p.plugged.Add(1)
		go func() {
			defer p.plugged.Done()
			time.Sleep(time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := p.plug.run(ctx, "ls /sys/block; cat "+rescueUnplugged+" > /sys/bus/pci/drivers/nvme/bind")
			p.plug.close()
			p.mu.Lock()
			p.beforeIn = out
			p.mu.Unlock()
			if err != nil {
				p.t.Errorf("proxy: hot attach in the guest: %v: %s", err, out)
			}
		}()
	}
	return false
}

// writeCtl writes the control disk's first line (the VM is off: qemu has the image closed).
func writeCtl(t *testing.T, img, state string) {
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Errorf("control disk: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(state), 0); err != nil {
		t.Errorf("control disk: %v", err)
	}
}

// TestRescueStuckInstance is issue #10's stuck-instance test, in two boots of one VM. Boot 1
// waits forever at a crypttab-style passphrase prompt on its console, sshd never starting;
// the console reaches the keeper through EC2's GetConsoleOutput (a fault proxy in front of
// moto serves the VM's real console, base64 as EC2 does). Run without AutoRescue only marks
// the target stuck. A first Rescue detaches the volume in moto (never forced) and stops when
// EC2 refuses the reboot (the proxy answers UnauthorizedOperation, as for an IAM policy
// without ec2:RebootInstances), leaving the volume detached; run again with the device name,
// Rescue resumes: it reboots (the proxy kills the VM and boots it from the same disks; the
// volume is detached at boot, so the instance does not have it and the boot reaches sshd),
// waits for sshd, re-attaches (the proxy hot-plugs the NVMe disk back) and unlocks.
// Afterwards the volume is mounted, a Rescue of the reachable instance is refused with
// ErrInUse and detaches nothing, nor does a Run with AutoRescue, and neither the passphrase
// nor the volume key is on the console, a disk image, the audit log or an EC2 request.
func TestRescueStuckInstance(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()

	moto := awstest.StartMoto(t)
	direct := awstest.NewEC2Client(moto)
	inst := awstest.RunInstance(t, ctx, direct, e2eAZ, "/dev/sdf")
	volID := volumeAt(t, ctx, direct, inst, "/dev/sdf")
	serial := strings.Replace(volID, "-", "", 1)
	require.LessOrEqual(t, len(serial), 20)

	pass := newPassphrase(t)
	img, uuid, vk := makeEncryptedDisk(t, pass, 48<<20)
	secrets := &e2eVault{m: map[string][]byte{volID: pass}}
	ctlDisk := vmtest.NewDiskImage(t, 1<<20)
	writeCtl(t, ctlDisk, ctlAttached)

	var ec2Log lockedBuffer
	proxy := &rescueProxy{t: t, instance: inst, volume: volID, ctlDisk: ctlDisk, moto: direct, log: &ec2Log}
	ec2c := awstest.NewEC2Client(awstest.StartProxy(t, moto, proxy.fault))

	dir := t.TempDir()
	hostKey, hostSigner := vmtest.NewSSHKey(t)
	keeperPEM, keeperSigner := vmtest.NewSSHKey(t)
	_, inspectSigner := vmtest.NewSSHKey(t)
	keyFile := filepath.Join(dir, "keeper_id")
	require.NoError(t, os.WriteFile(keyFile, keeperPEM, 0o600))
	// qemu's user network accepts every connection to a forwarded port, even while the
	// guest has nothing listening, where EC2 answers a SYN to a closed port with a reset.
	// The keeper dials a gate that listens only while the current boot's sshd is up, so the
	// stuck instance refuses connections as a real one does.
	port := vmtest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", vmtest.FreePort(t))
	knownHosts := filepath.Join(dir, "known_hosts")
	require.NoError(t, os.WriteFile(knownHosts, []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, hostSigner.PublicKey())+"\n"), 0o600))
	serve := fmt.Sprintf("%s serve --volume-id %s --name %s --mount %s", e2eServe, volID, e2eMapping, e2eMount)
	authorized := vmtest.AuthorizedKey(`restrict,command="`+serve+`"`, keeperSigner.PublicKey()) +
		vmtest.AuthorizedKey("", inspectSigner.PublicKey())
	gate := filepath.Join(dir, "crypttab-gate")
	require.NoError(t, os.WriteFile(gate, []byte(crypttabGate), 0o755))
	placeholder := filepath.Join(dir, "placeholder")
	require.NoError(t, os.WriteFile(placeholder, nil, 0o644))

	vm := vmtest.Start(t, vmtest.Options{
		Init:  vmtest.InitProgram(t),
		Disks: []vmtest.Disk{{Path: img, NVMeSerial: serial}, {Path: ctlDisk}},
		Net:   &vmtest.Net{GuestPort: 22, HostPort: port},
		SSH:   &vmtest.SSH{HostKey: hostKey, AuthorizedKeys: authorized, Gate: rescueGate},
		Tools: []string{"cat", "sleep", "ls"},
		GuestFiles: map[string]string{
			e2eServe:                  vmtest.BuildStatic(t, "github.com/cloudluks/cloudluks/cmd/encrypted-volume"),
			rescueGate:                gate,
			e2eMount + "/.mountpoint": placeholder,
		},
		Timeout: 8 * time.Minute,
	})
	in := &inspector{t: t, addr: vm.Addr(), key: inspectSigner, pin: hostSigner.PublicKey()}
	defer in.close()
	proxy.setVM(vm, &inspector{t: t, addr: vm.Addr(), key: inspectSigner, pin: hostSigner.PublicKey()})
	gateCtx, stopGate := context.WithCancel(ctx)
	defer stopGate()
	go sshdGate(gateCtx, t, addr, vm.Addr(), func() bool { return strings.Contains(vm.BootConsole(), vmtest.SSHReady) })
	defer proxy.plugged.Wait()

	target := keeper.Target{
		Name: "vm/data", InstanceID: inst, VolumeID: volID, Mapping: e2eMapping, MountPoint: e2eMount,
		LUKSUUID: uuid,
		SSH:      keeper.SSHConfig{Addr: addr, User: "root", KeyFile: keyFile, KnownHosts: []string{knownHosts}},
	}
	var audit lockedBuffer
	newKeeper := func(tg keeper.Target) *keeper.Keeper {
		k, err := keeper.New(keeper.Options{
			EC2: ec2c, Secrets: secrets, Audit: &audit, Program: "keeper-rescue-e2e",
			Keepalive: 5 * time.Second, PollEvery: 2 * time.Second, DialTimeout: 5 * time.Second,
			ReconnectMin: 200 * time.Millisecond, ReconnectMax: 2 * time.Second,
		}, []keeper.Target{tg})
		require.NoError(t, err)
		return k
	}
	runFor := func(k *keeper.Keeper, until func() bool, what string) {
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- k.Run(runCtx) }()
		assert.Eventually(t, until, time.Minute, 200*time.Millisecond, what)
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("keeper Run: %v", err)
		}
	}
	countAction := func(calls []ec2Call, action string) int {
		n := 0
		for _, c := range calls {
			if c.Action == action {
				n++
			}
		}
		return n
	}

	require.NoError(t, vm.WaitConsole(ctx, rescuePrompt), "boot 1: the crypttab prompt")

	// Without AutoRescue, Run sees the prompt through EC2 and only reports it.
	k := newKeeper(target)
	runFor(k, func() bool { return keeperState(k) == keeper.StateStuck }, "Run marks the instance stuck")
	require.Equal(t, keeper.StateStuck, keeperState(k))
	calls := proxy.seen()
	assert.Positive(t, countAction(calls, "GetConsoleOutput"), "the console came through EC2")
	assert.Zero(t, countAction(calls, "DetachVolume")+countAction(calls, "RebootInstances"),
		"without AutoRescue, Run touches nothing: %v", calls)
	assert.NotContains(t, vm.BootConsole(), vmtest.SSHReady, "boot 1 never reached sshd")

	// A rescue whose reboot EC2 refuses (an IAM policy without ec2:RebootInstances) stops
	// after its detach, with the volume detached and the instance still at its prompt.
	before := len(proxy.seen())
	rescueOpts := keeper.RescueOptions{
		Timeout: 6 * time.Minute,
		Wait:    ebs.WaitOptions{PollInitial: 100 * time.Millisecond, PollMax: time.Second},
	}
	proxy.setDenyReboot(true)
	_, err := k.Rescue(ctx, target, rescueOpts)
	proxy.setDenyReboot(false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "stays detached")
	assert.Equal(t, 1, vm.Boots(), "no reboot happened")
	vols, err := direct.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volID}})
	require.NoError(t, err)
	require.Len(t, vols.Volumes, 1)
	assert.Empty(t, vols.Volumes[0].Attachments, "the failed rescue left the volume detached")

	// Run again, it resumes from the reboot; EC2 no longer knows the device name, so it
	// must be given.
	res, err := k.Rescue(ctx, target, rescueOpts)
	assert.ErrorIs(t, err, keeper.ErrInvalid, "a detached volume needs its device: %+v", res)
	assert.Equal(t, 1, countAction(proxy.seen()[before:], "RebootInstances"), "nothing done without the device")
	rescueOpts.Device = "/dev/sdf"
	rescueStart := time.Now()
	res, err = k.Rescue(ctx, target, rescueOpts)
	rescued := time.Now()
	require.NoError(t, err, "rescue: %+v", res)
	assert.Equal(t, keeper.OutcomeUnlocked, res.Outcome)
	assert.Equal(t, keeper.StateUnlocked, keeperState(k), "no longer stuck once rescued")
	mountedAt, err := in.waitMounted(ctx, e2eMount)
	require.NoError(t, err, "the volume is mounted on the instance after the rescue")
	t.Logf("FIGURE: Rescue called → Rescue returned %s, → volume mounted (seen over SSH) %s (one reboot, TCG guest)",
		rescued.Sub(rescueStart).Round(10*time.Millisecond), mountedAt.Sub(rescueStart).Round(10*time.Millisecond))
	assert.Equal(t, 2, vm.Boots(), "one real reboot")
	proxy.plugged.Wait()
	proxy.mu.Lock()
	assert.NotContains(t, proxy.beforeIn, "nvme", "boot 2 had no volume until the attach")
	assert.Contains(t, proxy.beforeIn, "vda", "control: the listing shows block devices")
	proxy.mu.Unlock()
	assert.Contains(t, in.must(ctx, "cat /proc/mounts"), "/dev/mapper/"+e2eMapping+" "+e2eMount+" ")

	// The order of what the rescue asked of EC2.
	var order []string
	for _, c := range proxy.seen()[before:] {
		switch c.Action {
		case "GetConsoleOutput", "DetachVolume", "RebootInstances", "AttachVolume":
			if len(order) == 0 || order[len(order)-1] != c.Action {
				order = append(order, c.Action)
			}
		}
		switch c.Action {
		case "DetachVolume":
			assert.Equal(t, 1, c.Boot, "%v happens on the stuck boot", c)
			assert.Equal(t, volID+inst, c.Volume+c.Instance, "%v", c)
		case "RebootInstances":
			assert.Equal(t, 1, c.Boot, "%v happens on the stuck boot", c)
			assert.Equal(t, inst, c.Instance, "%v", c)
		case "AttachVolume":
			assert.Equal(t, 2, c.Boot, "%v happens after the reboot", c)
			assert.True(t, c.SSHUp, "%v waits for sshd", c)
		}
	}
	assert.Equal(t, []string{
		"GetConsoleOutput", "DetachVolume", "RebootInstances", // refused
		"GetConsoleOutput", "RebootInstances", "AttachVolume", // resumed
	}, order, "rescue: console, detach, reboot (refused); resumed: console, reboot, attach")
	a := parseAudit(t, audit.Bytes())
	var steps []string
	for _, l := range a {
		if strings.HasPrefix(l.Step, "rescue-") {
			steps = append(steps, l.Step)
		}
	}
	assert.Equal(t, []string{"rescue-probe", "rescue-probe", "rescue-probe", // unreachable three times over
		"rescue-console", "rescue-detach", "rescue-reboot", // refused
		"rescue-device", // no device given
		"rescue-console", "rescue-reboot", "rescue-wait", "rescue-attach"}, steps)

	// A reachable instance with the volume mounted: never detached.
	n := len(proxy.seen())
	res, err = k.Rescue(ctx, target, keeper.RescueOptions{Force: true})
	assert.ErrorIs(t, err, keeper.ErrInUse)
	assert.Equal(t, keeper.OutcomeRefused, res.Outcome)
	auto := target
	auto.AutoRescue = true
	ka := newKeeper(auto)
	runFor(ka, func() bool { return keeperState(ka) == keeper.StateUnlocked }, "Run with AutoRescue sees the volume unlocked")
	calls = proxy.seen()
	assert.Zero(t, countAction(calls[n:], "DetachVolume")+countAction(calls[n:], "RebootInstances")+countAction(calls[n:], "AttachVolume"),
		"a reachable instance with its volume mounted is left alone: %v", calls[n:])
	assert.True(t, in.mounted(ctx, e2eMount), "still mounted")
	assert.Equal(t, 2, vm.Boots())

	// Never forced, and one of each.
	for _, c := range calls {
		if c.Action == "DetachVolume" {
			assert.Contains(t, []string{"", "false"}, c.Force, "a detach is never forced: %v", c)
		}
	}
	assert.Equal(t, 1, countAction(calls, "DetachVolume"))
	assert.Equal(t, 2, countAction(calls, "RebootInstances"), "the refused one and the real one")
	assert.Equal(t, 1, countAction(calls, "AttachVolume"))

	in.close()
	vm.Kill()
	t.Logf("keeper audit log:\n%s", audit.Bytes())

	t.Run("secrets", func(t *testing.T) {
		console := []byte(vm.Console())
		require.Contains(t, string(console), rescuePrompt, "control: the console scan sees the prompt")
		for where, b := range map[string][]byte{
			"the audit log": audit.Bytes(), "the EC2 requests": ec2Log.Bytes(), "the VM's console": console,
		} {
			requireAbsent(t, "passphrase", pass, where, b)
			requireAbsent(t, "volume key", vk, where, b)
		}
		require.True(t, fileContains(t, img, []byte(uuid)), "control: the scan finds what is on the disk (the header's UUID)")
		for _, f := range secretForms(pass) {
			assert.False(t, fileContains(t, img, f), "the passphrase is not on the encrypted disk")
			assert.False(t, fileContains(t, ctlDisk, f), "the passphrase is not on the control disk")
		}
	})
}

// sshdGate listens on addr only while up() says the guest's sshd is running, and forwards
// each connection to target (qemu's forwarded port). While it does not listen, a connect
// to addr is refused, as a connect to an EC2 instance whose sshd has not started is.
func sshdGate(ctx context.Context, t *testing.T, addr, target string, up func() bool) {
	var l net.Listener
	defer func() {
		if l != nil {
			l.Close()
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		switch ready := up(); {
		case ready && l == nil:
			nl, err := net.Listen("tcp", addr)
			if err != nil {
				t.Logf("sshd gate: listen %s: %v (retrying)", addr, err)
				break
			}
			l = nl
			go func(l net.Listener) {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						u, err := net.Dial("tcp", target)
						if err != nil {
							return
						}
						defer u.Close()
						done := make(chan struct{}, 2)
						go func() { io.Copy(u, c); done <- struct{}{} }()
						go func() { io.Copy(c, u); done <- struct{}{} }()
						<-done
					}()
				}
			}(l)
		case !ready && l != nil:
			l.Close()
			l = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
