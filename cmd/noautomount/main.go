// Command noautomount stops a machine from unlocking (and waiting at a passphrase prompt
// for) an encrypted data volume at boot, by editing the boot configuration of the system
// found under --root: the kernel argument that disables LUKS in the initramfs
// (rd_NO_LUKS or rd.luks=0) on every boot entry, and noauto,nofail for the volume in
// /etc/crypttab and /etc/fstab (commenting the crypttab line out on SysV systems).
// Without --volume only the kernel arguments are edited; crypttab and fstab stay as they
// are (and --undo then reverts that kernel-argument run).
//
// Usage:
//
//	noautomount --root DIR [--volume NAME] [--mount-point DIR] [--dry-run] [--backup] [--undo]
//
// It prints a unified diff of every change. --dry-run prints it and changes nothing.
// --undo takes out exactly what earlier runs added (the arguments, the options, a created
// drop-in) and keeps what others changed since, such as the entry a kernel update added;
// a file nobody else touched gets its original bytes back. When a line a run edited was
// changed again since, --undo refuses (exit 5) and --dry-run --undo names the line; a line
// that is gone (a kernel update removed its entry) is skipped with a warning. The kernel
// argument is shared: while another volume's run is recorded, --undo keeps it (and says
// so); the last --undo takes it out, also from entries a kernel update copied it into.
//
// --root is required: --root / edits the running system; with no arguments at all it
// prints its usage and exits 1.
//
// Exit status (the table of internal/cli, shared by every program): 0 done (or nothing to
// do), 1 usage error, an error, or refused because the root file system, /usr, swap or
// resume is on LUKS (the message says which), 5 a file changed since it was read (busy:
// someone else is editing it; run again).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cloudluks/cloudluks/grubconf"
	"github.com/cloudluks/cloudluks/internal/cli"
)

// Exit codes.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = cli.ExitUsage
	exitRefused  = cli.ExitFailure
	exitConflict = cli.ExitBusy
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, grubconf.ErrEncryptedBoot):
		return exitRefused
	case errors.Is(err, grubconf.ErrConflict):
		return exitConflict
	case errors.Is(err, grubconf.ErrInvalidVolume):
		return exitUsage
	}
	return exitError
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("noautomount", flag.ContinueOnError)
	fl.SetOutput(stderr)
	root := fl.String("root", "", "root directory of the system to edit (a mounted image works too); required, --root / for the running system")
	volume := fl.String("volume", "", "mapping name of the encrypted volume (crypttab name, /dev/mapper/NAME)")
	mountPoint := fl.String("mount-point", "", "mount point of the volume in fstab (optional)")
	device := fl.String("device", "", "backing device as written in crypttab (optional)")
	dryRun := fl.Bool("dry-run", false, "print the diff, change nothing")
	backup := fl.Bool("backup", false, "keep FILE"+grubconf.BackupSuffix+" copies of the originals")
	undo := fl.Bool("undo", false, "take out what earlier runs added, keeping later changes by others")
	version := fl.Bool("version", false, "print the version and exit")
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "usage: noautomount --root DIR [--volume NAME] [--mount-point DIR] [--dry-run] [--backup] [--undo]")
		fl.PrintDefaults()
	}
	fl.Usage = func() { usage(stderr) }
	// A bare invocation must not edit the running system's boot configuration: that takes
	// an explicit --root /.
	if len(args) == 0 {
		return cli.NoArgs(stderr, usage)
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *version {
		return cli.PrintVersion(stdout, "noautomount", "")
	}
	if *root == "" {
		fmt.Fprintln(stderr, "noautomount: --root is required (--root / for the running system)")
		return exitUsage
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "noautomount: unexpected argument %q\n", fl.Arg(0))
		return exitUsage
	}
	if *volume == "" && (*mountPoint != "" || *device != "") {
		fmt.Fprintln(stderr, "noautomount: --mount-point and --device need --volume")
		return exitUsage
	}
	err := doRun(stdout, stderr, *root, grubconf.Volume{Name: *volume, MountPoint: *mountPoint, Device: *device}, *dryRun, *backup, *undo)
	if err != nil {
		fmt.Fprintf(stderr, "noautomount: %v\n", err)
		if errors.Is(err, grubconf.ErrEncryptedBoot) {
			fmt.Fprintln(stderr, "noautomount: nothing was changed; this machine needs LUKS to boot, so boot-time unlock must stay enabled")
			if *volume == "" {
				fmt.Fprintln(stderr, "noautomount: if that crypttab line is the data volume, name it with --volume NAME")
			}
		}
	}
	return exitCode(err)
}

func doRun(stdout, stderr io.Writer, root string, v grubconf.Volume, dryRun, backup, undo bool) error {
	sys, err := grubconf.Detect(root)
	if err != nil {
		return err
	}
	what, subject := "boot-time unlock of "+v.Name, v.Name
	if v.Name == "" {
		what, subject = "boot-time LUKS unlock in the kernel arguments", "the kernel arguments"
		fmt.Fprintln(stderr, "noautomount: no --volume: only the boot loader's kernel arguments are edited; /etc/crypttab and /etc/fstab are left as they are")
	}
	var plan *grubconf.Plan
	if undo {
		plan, err = sys.PlanUndo(v.Name)
	} else {
		fmt.Fprintf(stderr, "noautomount: %s (family %s, dracut %s), kernel argument %s\n",
			describeOS(sys), sys.Family, describeDracut(sys.Dracut), sys.Arg)
		plan, err = sys.PlanDisableUnlock(v)
	}
	if err != nil {
		return err
	}
	if plan.Empty() && !undo && !hasBootLoader(sys) {
		// One message: warnings such as "no boot loader configuration" followed by
		// "already disabled" read as if unlock had been disabled. HasBootConfig is not the
		// test: crypttab or fstab alone count there, yet carry no kernel argument.
		fmt.Fprintf(stderr, "noautomount: nothing changed: no boot loader configuration found under %s, so there is no boot-time unlock to disable (is --root the right directory?)\n", sys.Root)
		for _, d := range sys.Dangling {
			fmt.Fprintf(stderr, "noautomount: warning: %s is a symlink to a missing file (is /boot mounted under the root?)\n", d)
		}
		return nil
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(stderr, "noautomount: warning: %s\n", w)
	}
	if plan.Empty() && plan.Check() == nil {
		if undo {
			fmt.Fprintf(stderr, "noautomount: nothing to undo for %s\n", subject)
			if !dryRun {
				return plan.Apply(grubconf.ApplyOptions{})
			}
			return nil
		}
		fmt.Fprintf(stderr, "noautomount: nothing to do: %s is already disabled\n", what)
		return nil
	}
	// Refuse before showing a diff that will not be applied; a dry run shows it and says so.
	if err := plan.Check(); err != nil && !dryRun {
		return err
	}
	for _, c := range plan.Changes {
		for _, l := range c.Via {
			fmt.Fprintf(stderr, "noautomount: %s is a symlink; editing the real file %s\n", l, c.Path)
		}
	}
	if err := plan.Diff(stdout); err != nil {
		return err
	}
	if dryRun {
		if err := plan.Check(); err != nil {
			fmt.Fprintf(stderr, "noautomount: dry run: nothing written; a real run would refuse: %v\n", err)
			return nil
		}
		fmt.Fprintf(stderr, "noautomount: dry run: %d file(s) would change, nothing written\n", len(plan.Changes))
		return nil
	}
	if err := plan.Apply(grubconf.ApplyOptions{Backup: backup}); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "noautomount: %d file(s) changed\n", len(plan.Changes))
	for _, n := range plan.Notes {
		fmt.Fprintf(stderr, "noautomount: now run: %s\n", n)
	}
	return nil
}

// hasBootLoader reports whether Detect found a file that carries kernel arguments.
func hasBootLoader(s *grubconf.System) bool {
	return len(s.Legacy)+len(s.GrubCfg)+len(s.BLSEntries)+len(s.Grubenv) > 0 || s.DefaultGrub != nil || s.KernelCmdline != nil
}

func describeOS(s *grubconf.System) string {
	switch {
	case s.OS.PrettyName != "":
		return s.OS.PrettyName
	case s.OS.ID != "":
		return s.OS.ID + " " + s.OS.VersionID
	}
	return "unknown distribution"
}

func describeDracut(d grubconf.Dracut) string {
	if !d.Present {
		return "not found"
	}
	return fmt.Sprintf("%03d from %s", d.Version, d.Source)
}
