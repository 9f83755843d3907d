package main

import (
	"errors"
	"fmt"

	"github.com/cloudluks/cloudluks/luks"
)

// configPriorities maps --priority to the stored value (crypt_keyslot_priority).
var configPriorities = map[string]int{"ignore": luks.PriorityIgnore, "normal": luks.PriorityNormal, "prefer": luks.PriorityPrefer}

// cmdConfig is cryptsetup's config action, LUKS2 only: --priority with -S sets a key
// slot's priority, --label and --subsystem set both labels (the one not given is cleared).
// As in cryptsetup these are two header writes, the priority first; a priority that
// cannot be set (slot not active or out of range) fails silently with exit 1 before the
// labels are touched.
func cmdConfig(a *app, args []string) error {
	o := a.opts
	prio, prioOK := configPriorities[o.l2.priority]
	switch {
	case o.set["priority"] && !prioOK:
		return &usageError{msg: "Option --priority can be only ignore/normal/prefer."}
	case o.set["priority"] && !o.set["key-slot"]:
		return &usageError{msg: "Keyslot specification is required."}
	case !o.set["priority"] && !o.set["label"] && !o.set["subsystem"]:
		return &cliError{code: exitParams, msg: "Option --priority, --label or --subsystem is missing."}
	}
	hp := a.headerPath(args[0])
	f, err := openDevice(hp, true)
	if err != nil {
		return err
	}
	if _, err := luks.ReadHeader2(f); err != nil {
		f.Close()
		return &cliError{code: exitParams, msg: fmt.Sprintf("Device %s is not a valid LUKS2 device.", hp)}
	}
	if o.set["priority"] {
		if err := luks.SetKeyslotPriorityLUKS2(f, o.keySlot, prio); err != nil {
			f.Close()
			if errors.Is(err, luks.ErrKeyslotInactive) {
				return &cliError{code: exitParams}
			}
			return onDevice(hp, err)
		}
	}
	if o.set["label"] || o.set["subsystem"] {
		if err := luks.SetLabelLUKS2(f, o.l2.label, o.l2.subsystem); err != nil {
			f.Close()
			return onDevice(hp, err)
		}
	}
	return syncClose(f, nil)
}
