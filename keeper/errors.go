package keeper

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the engine returns about a target wraps one of these (or a
// transport, SDK or luks error) and names the target, so callers test with errors.Is and
// map to exit codes in one place.
var (
	// ErrInvalid: a Target or Options field is missing or malformed; nothing was dialled.
	ErrInvalid = errors.New("invalid keeper configuration")

	// ErrHostKeyUnknown: the instance presented a host key that no known_hosts line and no
	// trusted host CA vouches for. The handshake was aborted; nothing was sent.
	ErrHostKeyUnknown = errors.New("host key not pinned")
	// ErrHostKeyChanged: known_hosts pins another key for this host (or the key or its
	// certificate is revoked): possibly a man in the middle. Nothing was sent.
	ErrHostKeyChanged = errors.New("host key changed")
	// ErrAuth: the instance's sshd refused every key offered (key file or agent).
	ErrAuth = errors.New("ssh authentication failed")
	// ErrUnreachable: no TCP connection or no SSH handshake within the timeouts (the
	// instance is down, booting, or stuck before sshd).
	ErrUnreachable = errors.New("unreachable")
	// ErrNoConnection (matches ErrUnreachable): the instance's SSH port took no TCP
	// connection (refused, timed out, no route; through a jump host: the jump host could
	// not connect). Only this kind says the instance may be down: Rescue and the console
	// check act on nothing else.
	ErrNoConnection = unreachable("no TCP connection")
	// ErrHandshake (matches ErrUnreachable): something accepted the TCP connection but the
	// SSH handshake failed or timed out (sshd dropping connections under MaxStartups, a
	// half-started sshd): the instance is up.
	ErrHandshake = unreachable("SSH handshake failed")
	// ErrJumpHost (matches ErrUnreachable): the jump host could not be reached or dropped
	// the connection; it says nothing about the instance behind it.
	ErrJumpHost = unreachable("jump host unreachable")
	// ErrProtocol: the instance side answered something the keeper cannot use.
	ErrProtocol = errors.New("protocol error")

	// ErrRefused is matched by every refusal below: a check failed before any key was sent.
	ErrRefused = errors.New("refused")
	// ErrNotRunning: EC2 does not report the instance as running.
	ErrNotRunning = refusal("instance not running")
	// ErrNotAttached: EC2 does not report the volume attached to this instance (detached,
	// attached elsewhere, or unknown).
	ErrNotAttached = refusal("volume not attached to this instance")
	// ErrSerialMismatch: the NVMe serial the instance reports is not the volume ID.
	ErrSerialMismatch = refusal("device serial is not the volume ID")
	// ErrUUIDMismatch: the header's LUKS UUID is not the vault entry's.
	ErrUUIDMismatch = refusal("LUKS UUID mismatch")
	// ErrTargetMismatch: the instance serves another volume, mapping name or mount point
	// than the target expects.
	ErrTargetMismatch = refusal("instance serves another volume, mapping or mount point")
	// ErrBootUnlocked: this boot was seen unlocked (by this keeper, or mapped when it
	// looked) and the volume is closed again
	// (someone closed it on purpose): not reopened until the next boot.
	ErrBootUnlocked = refusal("this boot was already unlocked once")
	// ErrAttempts: the attempts for this boot reached Options.MaxAttemptsPerBoot, or the
	// target's, whatever boot ids it reported, Options.MaxAttemptsPerWindow.
	ErrAttempts = refusal("too many unlock attempts for this boot")
	// ErrInstanceRefused: the instance side refused the unlock (its own re-checks failed).
	ErrInstanceRefused = refusal("instance refused the unlock")

	// ErrNotMounted: the volume is mapped on the instance but not mounted at the mount
	// point (an unlock cut short), and this pass could not finish it; the error it wraps
	// says why.
	ErrNotMounted = errors.New("mapped but not mounted")

	// ErrNoPassphrase: the Secrets source has no passphrase for the volume.
	ErrNoPassphrase = errors.New("no passphrase for volume")
	// ErrWrongPassphrase: the vault's passphrase opens no key slot of the instance's header
	// (luks.ErrWrongPassphrase is in the chain too).
	ErrWrongPassphrase = errors.New("passphrase opens no key slot")

	// ErrNotStuck: Rescue found the instance reachable or its console without a passphrase
	// prompt, and was not forced.
	ErrNotStuck = errors.New("instance is not stuck")
	// ErrInUse: Rescue would have to detach a volume that is mounted on a reachable
	// instance; it never does.
	ErrInUse = errors.New("volume in use on a reachable instance")
)

// unreachableError is a kind of unreachable: it matches itself and ErrUnreachable.
type unreachableError struct{ msg string }

func unreachable(msg string) error { return &unreachableError{msg} }

func (e *unreachableError) Error() string        { return e.msg }
func (e *unreachableError) Is(target error) bool { return target == ErrUnreachable }

// refusalError is a refusal sentinel: it matches itself and ErrRefused.
type refusalError struct{ msg string }

func refusal(msg string) error { return &refusalError{msg} }

func (e *refusalError) Error() string        { return e.msg }
func (e *refusalError) Is(target error) bool { return target == ErrRefused }

// targetErr names the target in front of err ("web-1/data: …").
func targetErr(t *Target, err error) error { return fmt.Errorf("%s: %w", t.label(), err) }
