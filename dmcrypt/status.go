package dmcrypt

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/cloudluks/cloudluks/dmcrypt/internal/dm"
)

// MappingStatus describes an active mapping the way `cryptsetup status` reports it. It never
// holds key material: only the key size and where the key lives.
type MappingStatus struct {
	Name         string
	UUID         string // device-mapper uuid, e.g. "CRYPT-LUKS1-<uuid>-<name>"
	Type         string // "LUKS1", "LUKS2", "PLAIN"…, "" when the uuid names no crypt type
	Major, Minor uint32 // of /dev/dm-N
	OpenCount    int32
	InUse        bool // OpenCount > 0 ("is active and is in use")
	Suspended    bool
	ReadOnly     bool

	// TargetType is the type of the first target; the fields below are only set for "crypt".
	TargetType   string
	Cipher       string // e.g. "aes-xts-plain64"
	KeySize      int    // bytes
	KeyInKeyring bool   // key referenced from the kernel keyring, not passed in the table
	Device       string // backing device path, e.g. "/dev/loop0", "/dev/nvme0n1"
	DeviceMajor  uint32
	DeviceMinor  uint32
	Loop         string // backing file when Device is a loop device
	SectorSize   uint32 // encryption sector size in bytes (512 by default)
	Offset       uint64 // payload offset on Device, 512-byte sectors
	Size         uint64 // mapping size, 512-byte sectors
	IVOffset     uint64 // "skipped" sectors

	AllowDiscards       bool
	SameCPUCrypt        bool
	SubmitFromCryptCPUs bool
	NoReadWorkqueue     bool
	NoWriteWorkqueue    bool
}

// Path returns /dev/mapper/NAME.
func (s *MappingStatus) Path() string { return dm.MapperDir + "/" + s.Name }

// Dump writes the text `cryptsetup status NAME` (cryptsetup 2.6) prints for this mapping.
// name is the argument as the user gave it: a plain name is shown under /dev/mapper, a path
// as given.
func (s *MappingStatus) Dump(w io.Writer, name string) error {
	bw := bufio.NewWriter(w)
	busy := ""
	if s.InUse {
		busy = " and is in use"
	}
	fmt.Fprintf(bw, "%s is active%s.\n", displayName(name), busy)
	typ := s.Type
	if typ == "" {
		typ = "n/a"
	}
	fmt.Fprintf(bw, "  type:    %s\n", typ)
	if s.TargetType == "crypt" {
		loc := "dm-crypt"
		if s.KeyInKeyring {
			loc = "keyring"
		}
		fmt.Fprintf(bw, "  cipher:  %s\n", s.Cipher)
		fmt.Fprintf(bw, "  keysize: %d bits\n", s.KeySize*8)
		fmt.Fprintf(bw, "  key location: %s\n", loc)
		fmt.Fprintf(bw, "  device:  %s\n", s.Device)
		if s.Loop != "" {
			fmt.Fprintf(bw, "  loop:    %s\n", s.Loop)
		}
		ss := s.SectorSize
		if ss == 0 {
			ss = 512
		}
		fmt.Fprintf(bw, "  sector size:  %d\n", ss)
		fmt.Fprintf(bw, "  offset:  %d sectors\n", s.Offset)
		fmt.Fprintf(bw, "  size:    %d sectors\n", s.Size)
		if s.IVOffset != 0 {
			fmt.Fprintf(bw, "  skipped: %d sectors\n", s.IVOffset)
		}
		mode := "read/write"
		if s.ReadOnly {
			mode = "readonly"
		}
		if s.Suspended {
			mode += " (suspended)"
		}
		fmt.Fprintf(bw, "  mode:    %s\n", mode)
		if s.AllowDiscards || s.SameCPUCrypt || s.SubmitFromCryptCPUs || s.NoReadWorkqueue || s.NoWriteWorkqueue {
			// cryptsetup's format string: every flag but the last is followed by a space,
			// so a line without no_write_workqueue ends in one.
			var f strings.Builder
			for _, x := range []struct {
				on   bool
				text string
			}{
				{s.AllowDiscards, "discards "},
				{s.SameCPUCrypt, "same_cpu_crypt "},
				{s.SubmitFromCryptCPUs, "submit_from_crypt_cpus "},
				{s.NoReadWorkqueue, "no_read_workqueue "},
				{s.NoWriteWorkqueue, "no_write_workqueue"},
			} {
				if x.on {
					f.WriteString(x.text)
				}
			}
			fmt.Fprintf(bw, "  flags:   %s\n", f.String())
		}
	}
	return bw.Flush()
}

// DumpInactive writes what `cryptsetup status` prints for a name that is not active.
func DumpInactive(w io.Writer, name string) error {
	_, err := fmt.Fprintf(w, "%s is inactive.\n", displayName(name))
	return err
}

func displayName(name string) string {
	if strings.Contains(name, "/") {
		return name
	}
	return dm.MapperDir + "/" + name
}

// fillFromTable sets the crypt fields of s from the (parsed) first target.
func (s *MappingStatus) fillFromTable(ct *dm.CryptTable) {
	s.TargetType = "crypt"
	s.Cipher = ct.Cipher
	s.KeySize = ct.KeySize()
	s.KeyInKeyring = ct.Keyring != nil
	s.Device = ct.Device
	s.SectorSize = ct.SectorSize
	if s.SectorSize == 0 {
		s.SectorSize = 512
	}
	s.Offset = ct.Offset
	s.Size = ct.Length
	s.IVOffset = ct.IVOffset
	s.AllowDiscards = ct.AllowDiscards
	s.SameCPUCrypt = ct.SameCPUCrypt
	s.SubmitFromCryptCPUs = ct.SubmitFromCryptCPUs
	s.NoReadWorkqueue = ct.NoReadWorkqueue
	s.NoWriteWorkqueue = ct.NoWriteWorkqueue
}
