package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cloudluks/cloudluks/grubconf"
)

// grubBoot disables boot-time unlock with grubconf: the seed's step 8 (rd_NO_LUKS in
// /etc/grub.conf) generalised to what the detected distribution needs.
type grubBoot struct{}

func (v bootVolume) grub() grubconf.Volume {
	gv := grubconf.Volume{Name: v.Name, MountPoint: v.MountPoint}
	if v.LUKSUUID != "" {
		gv.Device = "UUID=" + v.LUKSUUID
	}
	return gv
}

func (grubBoot) Disable(ctx context.Context, root string, v bootVolume, w io.Writer) error {
	sys, err := grubconf.Detect(root)
	if err != nil {
		return fmt.Errorf("boot configuration in %s: %w", root, err)
	}
	plan, err := sys.PlanDisableUnlock(v.grub())
	if err != nil {
		return fmt.Errorf("boot configuration in %s: %w", root, err)
	}
	if !sys.HasBootConfig() {
		fmt.Fprintf(w, "    no boot loader, crypttab or fstab under %s: nothing can unlock the volume at boot\n", root)
		return nil
	}
	fmt.Fprintf(w, "    detected %s (%s), kernel argument %s\n", firstNonEmpty(sys.OS.PrettyName, sys.OS.ID, "unknown OS"), sys.Family, sys.Arg)
	if plan.Empty() {
		fmt.Fprintln(w, "    boot-time unlock is already disabled; nothing to change")
		return nil
	}
	for _, ch := range plan.Changes {
		via := ""
		if len(ch.Via) > 0 {
			via = " (via " + strings.Join(ch.Via, ", ") + ")"
		}
		fmt.Fprintf(w, "    %s%s: %s\n", ch.Path, via, ch.Reason)
	}
	if err := plan.Diff(w); err != nil {
		return err
	}
	if err := plan.Apply(grubconf.ApplyOptions{Backup: true}); err != nil {
		return fmt.Errorf("boot configuration in %s: %w", root, err)
	}
	for _, n := range plan.Notes {
		fmt.Fprintf(w, "    next: %s\n", n)
	}
	return nil
}

func (grubBoot) Status(root string, v bootVolume) (bool, string, error) {
	sys, err := grubconf.Detect(root)
	if err != nil {
		return false, "", err
	}
	if !sys.HasBootConfig() {
		return false, "", fmt.Errorf("no boot loader, crypttab or fstab found under %s", root)
	}
	plan, err := sys.PlanDisableUnlock(v.grub())
	if err != nil {
		return false, "", err
	}
	if plan.Empty() {
		return true, fmt.Sprintf("%s: %s in effect", sys.Family, sys.Arg), nil
	}
	var files []string
	for _, ch := range plan.Changes {
		files = append(files, ch.Path)
	}
	return false, fmt.Sprintf("%s: would edit %s", sys.Family, strings.Join(files, ", ")), nil
}
