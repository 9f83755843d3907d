package grubconf_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/cloudluks/cloudluks/grubconf"
)

// Swap on an instance-store disk, re-keyed from /dev/urandom at every boot: the crypttab
// and fstab lines, then the undo that takes them out again.
func ExampleSystem_PlanScratch() {
	root := exampleRoot()
	defer os.RemoveAll(root)
	sys, err := grubconf.Detect(root)
	if err != nil {
		fmt.Println(err)
		return
	}
	sc := grubconf.Scratch{Name: "cryptswap", Kind: grubconf.ScratchSwap,
		Device: "/dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_AWS1A2B3C4D5E6F7A8B9"}
	plan, err := sys.PlanScratch(sc)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range plan.Changes {
		fmt.Println(c.Path+":", c.Reason)
	}
	if err := plan.Apply(grubconf.ApplyOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	undo, _ := sys.PlanUndo("cryptswap")
	fmt.Println("undo error:", undo.Apply(grubconf.ApplyOptions{}))

	_, err = sys.PlanScratch(grubconf.Scratch{Name: "cryptswap", Kind: grubconf.ScratchSwap, Device: "/dev/nvme1n1"})
	fmt.Println(errors.Is(err, grubconf.ErrUnstableDevice))
	// Output:
	// /etc/crypttab: add swap cryptswap keyed from /dev/urandom at every boot
	// /etc/fstab: add swap for /dev/mapper/cryptswap
	// undo error: <nil>
	// true
}
