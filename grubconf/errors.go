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
	// ErrFileTooLarge: a file to read is larger than MaxFileSize; it was not read.
	ErrFileTooLarge = errors.New("file too large")
)

// FileTooLargeError names the file that is larger than MaxFileSize. It matches
// ErrFileTooLarge with errors.Is.
type FileTooLargeError struct {
	Path string // root-relative path of the file
	Size int64  // its size, or -1 when it grew past the limit while being read
}

// Error names the file, its size and the limit.
func (e *FileTooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("%s: grew beyond %d bytes while being read: %v", e.Path, MaxFileSize, ErrFileTooLarge)
	}
	return fmt.Sprintf("%s: %d bytes, more than the %d-byte limit: %v", e.Path, e.Size, MaxFileSize, ErrFileTooLarge)
}

// Unwrap makes errors.Is(err, ErrFileTooLarge) true.
func (e *FileTooLargeError) Unwrap() error { return ErrFileTooLarge }

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
