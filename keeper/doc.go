// Package keeper is the engine of the off-cloud unlocker: it watches EC2 instances whose
// data volumes are LUKS-encrypted, notices when one has booted with its volume locked,
// and unlocks it over SSH — without the passphrase ever entering the cloud.
//
// # How an unlock works
//
// The keeper dials the instance's sshd and runs the forced command of its
// authorized_keys line, `encrypted-volume serve`, which speaks keeper/wire on the
// session's stdin and stdout. The keeper asks for the instance's state and the LUKS header
// (public data), opens the header locally with the passphrase from its Secrets (the
// vault), and sends only the volume key — which the instance's kernel has to hold anyway.
// The instance loads it into a logon keyring key, maps, mounts and runs its hooks.
//
// Before any key is sent the keeper checks, in this order, and writes each decision as a
// JSON line to Options.Audit (identifiers and reasons only, never a secret):
//
//  1. EC2 reports the instance running (ErrNotRunning) and the volume attached to that
//     instance (ErrNotAttached). This comes first because the address to dial comes from
//     EC2 too, and a volume attached elsewhere is not even dialled.
//  2. the host key is pinned: a known_hosts line (@cert-authority lines included) or a
//     host certificate signed by a CA in SSHConfig.HostCA (principal = the instance ID or
//     the dialled host). known_hosts is looked up under the dialled address and under the
//     instance ID; either may vouch for the key, either pinning another key refuses it.
//     @revoked lines refuse a plain key, a certificate or its CA on every path. An unknown
//     key is ErrHostKeyUnknown, a different or revoked one (or a server with none of the
//     pinned key types) ErrHostKeyChanged; the handshake stops there and the forced
//     command never runs.
//  3. the instance serves the target's volume, mapping and mount point
//     (ErrTargetMismatch), and the NVMe serial of its device is the volume ID
//     (ErrSerialMismatch).
//  4. the header's LUKS UUID is the vault entry's (ErrUUIDMismatch).
//  5. this boot id was not seen unlocked before — unlocked by this keeper, or seen mapped
//     (ErrBootUnlocked: someone closed the volume on purpose) — and the attempts for this
//     boot are below Options.MaxAttemptsPerBoot, and the target's attempts whatever its
//     boot ids below Options.MaxAttemptsPerWindow per Options.AttemptWindow (ErrAttempts).
//  6. the passphrase opens the header (ErrWrongPassphrase).
//
// The serial check needs an NVMe device (Nitro instances): without a serial to compare
// (a Xen instance, an image file) the keeper refuses. Every refusal matches ErrRefused as well
// as its own sentinel (the host-key and passphrase errors are their own). A volume already mapped
// and mounted is not an error: it reports OutcomeAlreadyUnlocked, which is what the
// second of two keepers serving the same fleet sees. A volume mapped but not mounted (an
// unlock cut short) goes through the same checks and the key is sent: the instance mounts
// the existing mapping once the key checks out; if that cannot happen the pass reports
// OutcomeMappedNotMounted and StateMappedNotMounted (ErrNotMounted) with the reason.
// An audit line with step "send" is written before the key leaves.
//
// # Use
//
//	k, err := keeper.New(keeper.Options{
//		EC2:     ec2.NewFromConfig(cfg),
//		Secrets: vault,           // Passphrase(volumeID) ([]byte, error)
//		Audit:   auditFile,
//	}, []keeper.Target{{
//		Name: "web-1/data", InstanceID: "i-0abc…", VolumeID: "vol-0def…",
//		Mapping: "data", MountPoint: "/data", LUKSUUID: "…",
//		SSH: keeper.SSHConfig{User: "keeper", KeyFile: "id_ed25519",
//			KnownHosts: []string{"known_hosts"}},
//	}})
//	err = k.Run(ctx)           // serve until ctx ends
//	rows := k.Status()         // from another goroutine: for `keeper status`
//
// UnlockOnce makes a single pass over one target (dial, check, unlock) and returns a
// Result; Run does it for every target and then keeps watching. SetTargets changes the
// set while Run serves it (tag groups resolved again): what the keeper remembers of a
// target (boot ids unlocked, attempts, rate-limit window, last unlock, a stuck mark) is
// filed under its instance ID and volume, kept while it stays and dropped when it goes.
//
// # Detection
//
// Run keeps one SSH connection per target open, with keepalive@openssh.com requests every
// Options.Keepalive (UnlockOnce too); three unanswered intervals drop it, as OpenSSH's
// ServerAliveCountMax. A request that outlives Options.RequestTimeout closes the whole
// connection. When the connection drops it reconnects with a capped exponential
// backoff and compares the boot id: a new boot id with the volume not mapped means unlock
// now. EC2 is polled every Options.PollEvery as a backstop, which also picks up a new
// address after a stop/start (targets are pinned by instance ID, not by IP); an EC2 API
// error in that poll keeps the connection. At most
// Options.Concurrency targets are being dialled or unlocked at once.
//
// # Rescue
//
// An instance that stays unreachable after a reboot while its console output ends at a
// passphrase prompt (a crypttab line waiting for a human; consolekeys.StuckPrompt is the
// rule, the same for Run and Rescue) is stuck. Rescue detaches the encrypted volume,
// reboots, re-attaches and unlocks; Run does so on its own only for targets with
// AutoRescue. Unreachable means several dials (Options.RescueProbes, RescueProbeEvery:
// 3, 10 s apart, unless set; RescueOptions.Probes, ProbeEvery for one call) that all
// got no TCP connection to the instance itself (ErrNoConnection): an sshd that answers but
// fails the handshake (ErrHandshake) or a dead jump host (ErrJumpHost) is not. A volume
// mounted on a reachable instance is never detached, nor one this keeper last saw mapped
// (ErrInUse) until a State says otherwise: a keeper that has seen it mapped leaves the
// rescue to a person (`keeper rescue`, a fresh process).
//
// # What the keeper cannot defend against
//
// Root on the running instance can read the mapped key (dmsetup table --showkeys); the
// host key lives on the unencrypted root volume, so a snapshot of it can impersonate the
// instance — the EC2 attachment, serial, UUID and boot-id checks narrow that, they do not
// close it.
package keeper
