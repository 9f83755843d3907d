package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cloudluks/cloudluks/luks"
)

// cmdConvert is `convert --type luks1|luks2 <device>` (cryptsetup's action_luksConvert):
// the target type first, then the header (LUKS of either version), "already" when it is
// the target type, the question on a terminal without -q, and the conversion, which
// checks everything before its first write.
func cmdConvert(a *app, args []string) error {
	dev := args[0]
	to := ""
	switch a.opts.typ {
	case "luks2":
		to = "LUKS2"
	case "luks1":
		to = "LUKS1"
	default:
		return &cliError{code: exitParams, msg: "Invalid LUKS type, only luks1 and luks2 are supported."}
	}
	hp := a.headerPath(dev)
	f, err := openDevice(hp, true)
	if err != nil {
		return err
	}
	defer f.Close()
	from := ""
	switch luks.Version(f) {
	case 1:
		if _, err := luks.ReadHeader(f); err == nil {
			from = "LUKS1"
		}
	case 2:
		if _, err := luks.ReadHeader2(f); err == nil {
			from = "LUKS2"
		}
	}
	if from == "" {
		return &cliError{code: exitParams, msg: fmt.Sprintf("Device %s is not a valid LUKS device.", hp)}
	}
	if from == to {
		return &cliError{code: exitParams, msg: fmt.Sprintf("Device is already %s type.", to)}
	}
	if err := a.confirm(fmt.Sprintf("This operation will convert %s to %s format.\n", hp, to),
		&cliError{code: exitPermission, msg: "Operation aborted, device was NOT converted.\n"}); err != nil {
		return err
	}
	if to == "LUKS2" {
		err = luks.ConvertLUKS1ToLUKS2(f, nil)
	} else {
		err = luks.ConvertLUKS2ToLUKS1(f, nil)
	}
	if err != nil {
		if errors.Is(err, luks.ErrConvert) {
			return &cliError{code: exitParams, msg: strings.TrimPrefix(err.Error(), luks.ErrConvert.Error()+": ")}
		}
		return onDevice(hp, err)
	}
	return f.Sync()
}
