//go:build linux

package keeper_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cloudluks/cloudluks/internal/awstest"
	"github.com/cloudluks/cloudluks/internal/vmtest"
	"github.com/cloudluks/cloudluks/keeper"
)

const (
	e2eAZ      = "us-east-1a"
	e2eMapping = "data"
	e2eMount   = "/data"
	e2eHooks   = "/etc/cloudluks/data.hooks"
	e2eStandIn = "/usr/local/sbin/standin"
	e2eServe   = "/usr/local/sbin/encrypted-volume"

	e2ePollEvery = 3 * time.Second
)

// standInScript is the service gated on the mount, started by serve's hook: it looks for the
// files the test wrote before the crash and records what ran on the instance while the
// volume was being opened (every process's argv and environment), for the secret checks.
const standInScript = `#!/bin/sh
boot=$(cat /proc/sys/kernel/random/boot_id)
echo "boot $boot: $(cat /data/app/state 2>&1)" >> /run/standin.log
for f in /proc/[0-9]*/cmdline; do cat "$f"; echo; done >> /run/cmdlines
for f in /proc/[0-9]*/environ; do cat "$f"; echo; done >> /run/environ
`

// TestEndToEnd is issue #10's test with real parts, in two boots of one VM: real OpenSSH
// sshd and a static encrypted-volume on a qemu "instance" whose encrypted disk is an NVMe
// drive with a volume's serial, moto_server (behind a recording proxy) knowing the instance
// and the volume, and two keepers on the host running the engine.
//
// Boot 1: a wrong pinned host key, a volume attached to another instance and a header UUID
// that is not the vault's are refused and leave the volume locked; then two keepers, both
// started after the instance was up, catch up and exactly one of them unlocks; the test
// writes files through its own login. The VM is killed without warning and booted again from
// the same disks: boot 2 gets a new boot id, the keepers notice and unlock it again with no
// human step, and the hook's stand-in service finds the files. Afterwards the passphrase is
// nowhere on the disk image, the console, the audit logs or the EC2 requests, and the volume
// key in none of them nor in any process's argv or environment seen during the unlock.
func TestEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()

	// EC2: our instance with its volume, and another instance with another volume.
	var ec2Log lockedBuffer
	moto := awstest.StartMoto(t)
	endpoint := awstest.StartProxy(t, moto, recordingProxy(&ec2Log))
	ec2c := awstest.NewEC2Client(endpoint)
	inst := awstest.RunInstance(t, ctx, ec2c, e2eAZ, "/dev/sdf")
	other := awstest.RunInstance(t, ctx, ec2c, e2eAZ, "/dev/sdf")
	volID := volumeAt(t, ctx, ec2c, inst, "/dev/sdf")
	otherVol := volumeAt(t, ctx, ec2c, other, "/dev/sdf")
	serial := strings.Replace(volID, "-", "", 1) // as Nitro shows an EBS volume
	require.LessOrEqual(t, len(serial), 20)

	pass := newPassphrase(t)
	img, uuid, vk := makeEncryptedDisk(t, pass, 48<<20)
	secrets := &e2eVault{m: map[string][]byte{volID: pass, otherVol: pass}}

	// SSH: the instance's host key (pinned by the keepers), the keeper's key (forced into
	// serve), the test's inspection key (a shell).
	dir := t.TempDir()
	hostKey, hostSigner := vmtest.NewSSHKey(t)
	keeperPEM, keeperSigner := vmtest.NewSSHKey(t)
	_, inspectSigner := vmtest.NewSSHKey(t)
	_, impostor := vmtest.NewSSHKey(t)
	keyFile := filepath.Join(dir, "keeper_id")
	require.NoError(t, os.WriteFile(keyFile, keeperPEM, 0o600))
	port := vmtest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	knownHosts := filepath.Join(dir, "known_hosts")
	require.NoError(t, os.WriteFile(knownHosts, []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, hostSigner.PublicKey())+"\n"), 0o600))
	wrongKnownHosts := filepath.Join(dir, "known_hosts.wrong")
	require.NoError(t, os.WriteFile(wrongKnownHosts, []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, impostor.PublicKey())+"\n"), 0o600))

	serve := fmt.Sprintf("%s serve --volume-id %s --name %s --mount %s --hooks-file %s", e2eServe, volID, e2eMapping, e2eMount, e2eHooks)
	authorized := vmtest.AuthorizedKey(`restrict,command="`+serve+`"`, keeperSigner.PublicKey()) +
		vmtest.AuthorizedKey("", inspectSigner.PublicKey())
	hooks := filepath.Join(dir, "data.hooks")
	require.NoError(t, os.WriteFile(hooks, []byte("/bin/sh "+e2eStandIn+"\n"), 0o644))
	standIn := filepath.Join(dir, "standin")
	require.NoError(t, os.WriteFile(standIn, []byte(standInScript), 0o755))
	placeholder := filepath.Join(dir, "placeholder")
	require.NoError(t, os.WriteFile(placeholder, nil, 0o644))

	vm := vmtest.Start(t, vmtest.Options{
		Init:  vmtest.InitProgram(t),
		Disks: []vmtest.Disk{{Path: img, NVMeSerial: serial}},
		Net:   &vmtest.Net{GuestPort: 22, HostPort: port},
		SSH:   &vmtest.SSH{HostKey: hostKey, AuthorizedKeys: authorized},
		Tools: []string{"cat", "mkdir", "sync"},
		GuestFiles: map[string]string{
			e2eServe:   vmtest.BuildStatic(t, "github.com/cloudluks/cloudluks/cmd/encrypted-volume"),
			e2eHooks:   hooks,
			e2eStandIn: standIn,
			// the mount point (mounting hides it)
			e2eMount + "/.mountpoint": placeholder,
		},
		Timeout: 6 * time.Minute,
	})
	in := &inspector{t: t, addr: vm.Addr(), key: inspectSigner, pin: hostSigner.PublicKey()}
	defer in.close()

	target := keeper.Target{
		Name: "vm/data", InstanceID: inst, VolumeID: volID, Mapping: e2eMapping, MountPoint: e2eMount,
		LUKSUUID: uuid,
		SSH:      keeper.SSHConfig{Addr: addr, User: "root", KeyFile: keyFile, KnownHosts: []string{knownHosts}},
	}
	newKeeper := func(audit *lockedBuffer) *keeper.Keeper {
		k, err := keeper.New(keeper.Options{
			EC2: ec2c, Secrets: secrets, Audit: audit, Program: "keeper-e2e",
			// A killed VM drops the connection at once (qemu's forward is gone), so the
			// keepalive is not what notices the crash; short dial timeouts matter more: while the
			// VM boots, qemu accepts the TCP connection and nothing answers the handshake.
			Keepalive: 5 * time.Second, PollEvery: e2ePollEvery, DialTimeout: 5 * time.Second,
			ReconnectMin: 200 * time.Millisecond, ReconnectMax: 2 * time.Second,
		}, []keeper.Target{target})
		require.NoError(t, err)
		return k
	}

	require.NoError(t, vm.WaitConsole(ctx, vmtest.SSHReady), "boot 1: sshd")
	boot1 := strings.TrimSpace(in.must(ctx, "cat /proc/sys/kernel/random/boot_id"))

	var errTexts []string // every UnlockOnce error, scanned for secrets at the end
	t.Run("refusals", func(t *testing.T) {
		var audit lockedBuffer
		k := newKeeper(&audit)
		keeperFP := ssh.FingerprintSHA256(keeperSigner.PublicKey())

		wrong := target
		wrong.SSH.KnownHosts = []string{wrongKnownHosts}
		before := len(vm.BootConsole())
		res, err := k.UnlockOnce(ctx, wrong)
		require.Error(t, err)
		errTexts = append(errTexts, err.Error(), res.Reason)
		assert.ErrorIs(t, err, keeper.ErrHostKeyChanged)
		assert.NotEqual(t, keeper.OutcomeUnlocked, res.Outcome)
		assert.NotContains(t, vm.BootConsole()[before:], keeperFP, "the keeper's key was never offered: nothing sent")

		elsewhere := target
		elsewhere.Name, elsewhere.InstanceID = "elsewhere", other
		res, err = k.UnlockOnce(ctx, elsewhere)
		require.Error(t, err)
		errTexts = append(errTexts, err.Error(), res.Reason)
		assert.ErrorIs(t, err, keeper.ErrNotAttached)
		assert.Equal(t, keeper.OutcomeRefused, res.Outcome)

		otherUUID := target
		otherUUID.Name, otherUUID.LUKSUUID = "other-uuid", "00000000-0000-4000-8000-000000000000"
		res, err = k.UnlockOnce(ctx, otherUUID)
		require.Error(t, err)
		errTexts = append(errTexts, err.Error(), res.Reason)
		assert.ErrorIs(t, err, keeper.ErrUUIDMismatch)
		assert.Equal(t, keeper.OutcomeRefused, res.Outcome)

		assert.False(t, in.mounted(ctx, e2eMount), "still locked after the refusals")
		assert.Zero(t, unlocksFor(parseAudit(t, audit.Bytes()), ""))
	})

	// Two keepers, both started after the instance came up.
	var audit1, audit2 lockedBuffer
	k1, k2 := newKeeper(&audit1), newKeeper(&audit2)
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, k := range []*keeper.Keeper{k1, k2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := k.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("keeper Run: %v", err)
			}
		}()
	}
	stopKeepers := sync.OnceFunc(func() { stop(); wg.Wait() })
	defer stopKeepers()

	waitCtx, waitCancel := context.WithTimeout(ctx, 2*time.Minute)
	_, err := in.waitMounted(waitCtx, e2eMount)
	waitCancel()
	require.NoError(t, err, "boot 1: the keepers unlock the instance they found running")
	token := fmt.Sprintf("written-before-the-crash-%d", time.Now().UnixNano())
	in.must(ctx, fmt.Sprintf("mkdir -p %s/app && echo %s > %s/app/state && sync", e2eMount, token, e2eMount))
	require.Eventually(t, func() bool {
		return keeperState(k1) == keeper.StateUnlocked && keeperState(k2) == keeper.StateUnlocked
	}, time.Minute, 200*time.Millisecond, "both keepers see the volume unlocked")
	all1 := append(parseAudit(t, audit1.Bytes()), parseAudit(t, audit2.Bytes())...)
	assert.Equal(t, 1, unlocksFor(all1, boot1), "two keepers, one unlock on boot 1")
	assert.Equal(t, 1, standInRuns(in.must(ctx, "cat /run/standin.log"), boot1), "boot 1: the hook ran once on the instance")

	// Someone closes the volume on purpose (umount + luksClose through the inspection
	// login): neither keeper opens it again on this boot — the one that unlocked it, nor
	// the one that only saw it mapped — however many polls go by.
	in.must(ctx, e2eServe+" teardown --no-aws --name "+e2eMapping+" --mount-point "+e2eMount)
	require.False(t, in.mounted(ctx, e2eMount))
	time.Sleep(4 * e2ePollEvery)
	assert.False(t, in.mounted(ctx, e2eMount), "boot 1 closed on purpose stays closed")
	assert.Equal(t, 1, standInRuns(in.must(ctx, "cat /run/standin.log"), boot1), "boot 1: no second unlock on the instance")
	for i, k := range []*keeper.Keeper{k1, k2} {
		st := k.Status()[0]
		assert.Equal(t, keeper.StateRefused, st.State, "keeper %d: %s", i+1, st.Reason)
		assert.Contains(t, st.Reason, "already unlocked once", "keeper %d", i+1)
	}

	// The crash, and the boot after it.
	in.close()
	vm.Kill()
	vm.Boot()
	require.NoError(t, vm.WaitConsole(ctx, vmtest.SSHReady), "boot 2: sshd")
	sshdUp := time.Now()
	waitCtx, waitCancel = context.WithTimeout(ctx, 2*time.Minute)
	mountedAt, err := in.waitMounted(waitCtx, e2eMount)
	waitCancel()
	require.NoError(t, err, "boot 2: the keepers notice the reboot and unlock with no human step")
	t.Logf("FIGURE: sshd accepting connections → volume mounted: %s (host-observed, 100 ms polling, TCG guest)", mountedAt.Sub(sshdUp).Round(10*time.Millisecond))
	boot2 := strings.TrimSpace(in.must(ctx, "cat /proc/sys/kernel/random/boot_id"))
	assert.NotEqual(t, boot1, boot2, "a new boot id")
	// The volume is mounted before the hooks run: wait for the stand-in's line of this boot.
	var standInLog string
	require.Eventually(t, func() bool {
		out, err := in.run(ctx, "cat /run/standin.log")
		standInLog = out
		return err == nil && strings.Contains(out, "boot "+boot2)
	}, time.Minute, 200*time.Millisecond, "boot 2: the hook's stand-in service ran: %s", standInLog)
	assert.Contains(t, standInLog, "boot "+boot2+": "+token,
		"the hook's stand-in service found the files written before the crash")
	assert.Equal(t, 1, standInRuns(standInLog, boot2), "boot 2: the hook ran once on the instance")
	require.Eventually(t, func() bool {
		return keeperState(k1) == keeper.StateUnlocked && keeperState(k2) == keeper.StateUnlocked
	}, time.Minute, 200*time.Millisecond, "both keepers see boot 2 unlocked")
	cmdlines := in.must(ctx, "cat /run/cmdlines; for f in /proc/[0-9]*/cmdline; do cat $f; echo; done")
	environ := in.must(ctx, "cat /run/environ; for f in /proc/[0-9]*/environ; do cat $f; echo; done")
	assert.Contains(t, cmdlines, "serve", "the argv record covers the unlock")
	in.close()
	stopKeepers()
	vm.Kill()

	all := append(parseAudit(t, audit1.Bytes()), parseAudit(t, audit2.Bytes())...)
	assert.Equal(t, 1, unlocksFor(all, boot2), "two keepers, one unlock on boot 2")
	t.Logf("keeper 1's audit log:\n%s", audit1.Bytes())
	t.Logf("keeper 2's audit log:\n%s", audit2.Bytes())
	var table strings.Builder
	require.NoError(t, keeper.WriteStatusTable(&table, append(k1.Status(), k2.Status()...)))
	t.Logf("status of both keepers:\n%s", table.String())

	t.Run("secrets", func(t *testing.T) {
		console := []byte(vm.Console())
		logs := map[string][]byte{
			"keeper 1's audit log": audit1.Bytes(), "keeper 2's audit log": audit2.Bytes(),
			"the EC2 requests": ec2Log.Bytes(), "the VM's console": console,
			"the status table": []byte(table.String()), "the UnlockOnce errors": []byte(strings.Join(errTexts, "\n")),
		}
		for where, b := range logs {
			requireAbsent(t, "passphrase", pass, where, b)
			requireAbsent(t, "volume key", vk, where, b)
		}
		requireAbsent(t, "volume key", vk, "the instance's argv during the unlock", []byte(cmdlines))
		requireAbsent(t, "volume key", vk, "the instance's environment during the unlock", []byte(environ))
		requireAbsent(t, "passphrase", pass, "the instance's argv during the unlock", []byte(cmdlines))
		requireAbsent(t, "passphrase", pass, "the instance's environment during the unlock", []byte(environ))
		require.True(t, fileContains(t, img, []byte(uuid)), "control: the scan finds what is on the disk (the header's UUID)")
		for _, f := range secretForms(pass) {
			assert.False(t, fileContains(t, img, f), "the passphrase is not on the instance's disk")
		}
	})
}

// standInRuns counts the stand-in service's lines for boot: one per unlock on the instance.
func standInRuns(log, boot string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "boot "+boot+":") {
			n++
		}
	}
	return n
}

// keeperState is the keeper's view of its only target.
func keeperState(k *keeper.Keeper) keeper.State {
	st := k.Status()
	if len(st) != 1 {
		return ""
	}
	return st[0].State
}
