package grubconf

import (
	"errors"
	"fmt"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrEncryptedBoot: the root file system, /usr, swap or resume is on LUKS; disabling
	// boot-time unlock would make the machine unbootable, so nothing is changed.
	ErrEncryptedBoot = errors.New("a file system needed for boot is on LUKS")
	// ErrGrubenvOverflow: the new value does not fit in the fixed-size environment block.
	ErrGrubenvOverflow = errors.New("grubenv block would overflow")
	// ErrBadGrubenv: the file is not a GRUB environment block.
	ErrBadGrubenv = errors.New("not a GRUB environment block")
	// ErrUnsupported: an edit the file's syntax does not allow to make in place.
	ErrUnsupported = errors.New("cannot edit this construct in place")
	// ErrConflict: a file changed between planning and applying (or since the edit that an
	// undo would revert); nothing was written.
	ErrConflict = errors.New("file changed since it was read")
	// ErrEscapesRoot: a path or symlink leads outside the root directory.
	ErrEscapesRoot = errors.New("path escapes the root directory")
	// ErrNoUndo: there is no record of an applied change to undo.
	ErrNoUndo = errors.New("nothing recorded to undo")
	// ErrInvalidVolume: the volume description is unusable (empty or malformed name).
	ErrInvalidVolume = errors.New("invalid volume")
)

// EncryptedBootError says which file and which setting show that boot needs LUKS. It
// matches ErrEncryptedBoot with errors.Is.
type EncryptedBootError struct {
	Path   string // file (root-relative) holding the evidence
	Reason string // e.g. `kernel argument "rd_LUKS_UUID=luks-ea29…"`
}

// Error names the file and the evidence that boot needs LUKS.
func (e *EncryptedBootError) Error() string {
	return fmt.Sprintf("%s: %s: refusing to disable boot-time unlock: %v", e.Path, e.Reason, ErrEncryptedBoot)
}

// Unwrap makes errors.Is(err, ErrEncryptedBoot) true.
func (e *EncryptedBootError) Unwrap() error { return ErrEncryptedBoot }
