package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/cloudluks/cloudluks/dmcrypt"
	"github.com/cloudluks/cloudluks/internal/blkid"
	"github.com/cloudluks/cloudluks/luks"
)

// openAliasType is the device type cryptsetup's old verb names imply (its "Handle aliases"
// block): plainOpen and create mean open --type plain, and create takes NAME DEVICE in that
// historical order; luksOpen means open --type luks whatever --type says. It returns the
// type ("" = none) and the arguments in open's order.
func openAliasType(verb string, args []string) (string, []string) {
	switch verb {
	case "luksOpen":
		return "luks", args
	case "plainOpen":
		return "plain", args
	case "create":
		if len(args) >= 2 {
			args = append([]string{args[1], args[0]}, args[2:]...)
		}
		return "plain", args
	}
	return "", args
}

// checkPlainType is checkType for --type plain (see there).
func checkPlainType(a *app, verb string, args []string) error {
	switch verb {
	case "open", "close", "status", "luksHeaderBackup", "luksHeaderRestore", "benchmark":
		return nil
	case "luksFormat":
		// crypt_format with an unknown type: -EINVAL, no message, nothing written.
		return &cliError{code: exitParams}
	}
	dev := a.headerPath(args[0])
	if _, err := os.Stat(dev); err != nil {
		return &cliError{code: exitDevice, msg: fmt.Sprintf("Device %s does not exist or access denied.", dev)}
	}
	switch verb {
	case "isLuks", "luksUUID":
		// Both are silent when the device holds no header of the type asked for.
		return &cliError{code: exitParams}
	}
	return &cliError{code: exitParams, msg: fmt.Sprintf("Device %s is not a valid LUKS device.", dev)}
}

// verifyOpen is cryptsetup 2.6.1's verify_open for the options this program knows: the
// plain-only options with another type, and --test-passphrase with plain. The message is
// a usage error.
func verifyOpen(o *options) string {
	plain := o.typ == "plain"
	switch {
	case o.set["shared"] && !plain:
		return "Option --shared is allowed only for open of plain device."
	case o.set["skip"] && !plain:
		return "Option --skip is supported only for open of plain and loopaes devices."
	case o.set["offset"] && !plain:
		return "Option --offset with open action is only supported for plain and loopaes devices."
	case o.set["sector-size"] && !plain:
		return "Sector size option with open action is supported only for plain devices."
	case o.set["iv-large-sectors"] && (!plain || o.sectorSize <= luks.SectorSize):
		return "Large IV sectors option is supported only for opening plain type device with sector size larger than 512 bytes."
	case o.set["test-passphrase"] && plain:
		return "Option --test-passphrase is allowed only for open of LUKS, TCRYPT, BITLK and FVAULT2 devices."
	case o.set["device-size"] && o.set["size"]:
		return "Options --device-size and --size cannot be combined."
	}
	return ""
}

// checkSectorSize is cryptsetup's parse-time check of --sector-size.
func checkSectorSize(o *options) string {
	if s := o.sectorSize; o.set["sector-size"] && (s < 512 || s > 4096 || s&(s-1) != 0) {
		return "Unsupported encryption sector size."
	}
	return ""
}

// plainParams turns the options into the mapping's parameters (cryptsetup's
// crypt_params_plain plus key size and cipher).
func (a *app) plainParams() dmcrypt.PlainParams {
	o := a.opts
	p := dmcrypt.PlainParams{
		Cipher:         o.cipher,
		KeySize:        o.keySize / 8,
		Hash:           o.hash,
		Offset:         uint64(o.offset),
		Skip:           uint64(o.skip),
		Size:           uint64(o.size),
		SectorSize:     uint32(o.sectorSize),
		IVLargeSectors: o.ivLargeSectors,
		Shared:         o.shared,
	}
	if o.set["device-size"] {
		p.Size = uint64(o.deviceSize) / luks.SectorSize
	}
	return p
}

// cmdOpenPlain is `open --type plain DEVICE NAME` (action_open_plain of cryptsetup 2.6.1):
// check the cipher, the device, warn about and confirm existing signatures when no
// --offset is given, then read the key — a key file raw, exactly --key-size bytes from
// --keyfile-offset, never hashed; a passphrase from the terminal or stdin hashed with
// --hash — and map the device.
func cmdOpenPlain(a *app, args []string) error {
	if len(args) < 2 {
		return &cliError{code: exitParams, msg: "Command requires device and mapped name as arguments."}
	}
	dev, name := args[0], args[1]
	o := a.opts
	p := a.plainParams()
	lp := p.Luks().WithDefaults()
	// cryptsetup checks only the cipher's pattern here (crypt_parse_name_and_mode: a
	// non-empty name before the first '-') and leaves the rest to the kernel; dmcrypt checks
	// the whole specification before it creates anything (below).
	if c := o.cipher; o.set["cipher"] && (c == "" || c[0] == '-') {
		return &cliError{code: exitParams, msg: "No known cipher specification pattern detected."}
	}
	keyFile := o.keyFile != "" && o.keyFile != "-"
	rawKey := keyFile || lp.Hash == "plain"
	if keyFile && !o.batch && o.set["hash"] {
		a.logStd("WARNING: The --hash parameter is being ignored in plain mode with keyfile specified.")
	}
	if keyFile && !o.batch && o.set["keyfile-size"] {
		a.logStd("WARNING: The --keyfile-size option is being ignored, the read size is the same as the encryption key size.")
	}

	fi, err := os.Stat(dev)
	if err != nil {
		return &cliError{code: exitDevice, msg: fmt.Sprintf("Device %s does not exist or access denied.", dev)}
	}
	if !fi.Mode().IsRegular() && fi.Mode()&os.ModeDevice == 0 {
		return &cliError{code: exitDevice, msg: fmt.Sprintf("Device %s does not exist or access denied.", dev)}
	}
	// cryptsetup probes only without an offset: with one the data cannot start where a
	// filesystem's superblock would be found anyway.
	if o.offset == 0 {
		sigs, err := blkid.ProbeFile(a.ctx, dev)
		if err != nil {
			return &cliError{code: exitParams, msg: "Failed to initialize device signature probes."}
		}
		if !o.batch {
			for _, s := range sigs {
				a.logStd("WARNING: Device %s already contains a '%s' %s signature.", dev, s.Type, s.Usage)
			}
		}
		if len(sigs) > 0 {
			if err := a.confirm(fmt.Sprintf("Detected device signature(s) on %s. Proceeding further may damage existing data.", dev),
				&cliError{code: exitParams, msg: "Operation aborted.\n"}); err != nil {
				return err
			}
		}
	}

	if lp.KeySize > luks.PlainMaxKeySize {
		return &cliError{code: exitParams, msg: "Invalid key size."}
	}

	oo := dmcrypt.OpenOptions{
		ReadOnly:            o.readonly,
		AllowDiscards:       o.allowDiscards,
		SameCPUCrypt:        o.perfSameCPUCrypt,
		SubmitFromCryptCPUs: o.perfSubmitFromCrypt,
		NoReadWorkqueue:     o.perfNoReadWQ,
		NoWriteWorkqueue:    o.perfNoWriteWQ,
	}
	if keyFile {
		if err := plainPreflight(name); err != nil {
			return mappingError(name, dev, err)
		}
		key, err := luks.ReadKeyFile(o.keyFile, o.keyfileOffset, int64(lp.KeySize))
		if err != nil {
			return keyReadError(err)
		}
		defer clear(key)
		p.Hash = ""
		_, err = dmcrypt.OpenPlainKey(a.ctx, dev, name, key, p, oo)
		return plainError(name, dev, lp, err)
	}
	src := a.keyFromOptions()
	if rawKey && o.keyFile == "-" {
		// cryptsetup reads exactly the key size from stdin when no hash applies.
		src.size = int64(lp.KeySize)
	}
	pass, err := a.getKey(passPrompt(dev), src, o.verifyPass)
	if err != nil {
		return err
	}
	defer clear(pass)
	// The key is derived here rather than by dmcrypt.OpenPlain so that a hash failure gets
	// cryptsetup's words (process_key in lib/setup.c); the mapping is the same.
	vk, err := luks.PlainKey(lp.Hash, pass, lp.KeySize)
	if err != nil {
		if errors.Is(err, luks.ErrUnsupportedHash) {
			return &cliError{code: exitParams, msg: fmt.Sprintf("Hash algorithm %s not supported.", lp.Hash)}
		}
		return &cliError{code: exitParams, msg: fmt.Sprintf("Key processing error (using hash %s).", lp.Hash)}
	}
	defer vk.Wipe()
	p.Hash = ""
	_, err = dmcrypt.OpenPlainKey(a.ctx, dev, name, vk.Bytes(), p, oo)
	return plainError(name, dev, lp, err)
}

// plainPreflight fails early, before a key file is read, when the name is taken or
// device-mapper is missing (cryptsetup's _activate_check_status comes first there too).
func plainPreflight(name string) error {
	if err := dmcrypt.ValidateName(name); err != nil {
		return err
	}
	if _, err := dmcrypt.Status(name); err == nil {
		return fmt.Errorf("%s: %w", name, dmcrypt.ErrExists)
	} else if !errors.Is(err, dmcrypt.ErrNotFound) {
		return err
	}
	return nil
}

// plainError words the plain-specific failures as cryptsetup 2.6.1 does (lib/setup.c,
// lib/utils_device.c), then falls back to the mapping errors shared with LUKS.
func plainError(name, dev string, lp luks.PlainParams, err error) error {
	cipher, keyBytes := lp.Cipher, lp.KeySize
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dmcrypt.ErrOffsetBeyondDevice):
		return &cliError{code: exitParams, msg: fmt.Sprintf("Requested offset is beyond real size of device %s.", dev)}
	case errors.Is(err, dmcrypt.ErrDeviceTooSmall):
		return &cliError{code: exitParams, msg: fmt.Sprintf("Device %s is too small.", dev)}
	case errors.Is(err, dmcrypt.ErrUnaligned):
		return &cliError{code: exitParams, msg: "Device size is not aligned to requested sector size."}
	case errors.Is(err, dmcrypt.ErrDeviceInUse):
		return &cliError{code: exitBusy, msg: fmt.Sprintf("Cannot use device %s which is in use (already mapped or mounted).", dev)}
	case errors.Is(err, luks.ErrUnsupportedCipher), errors.Is(err, luks.ErrInvalidKeySize):
		// cryptsetup hands these to the kernel, which refuses the table (exit 1); dmcrypt
		// refuses them before creating anything.
		return &cliError{code: exitParams, msg: fmt.Sprintf("Cipher %s with a %d-bit key is not supported (nothing was mapped).", cipher, keyBytes*8)}
	}
	return mappingError(name, dev, err)
}

// errSizeSpec is a size option that is not a number with an optional unit.
var errSizeSpec = errors.New("invalid size specification")

// parseSize reads a size as cryptsetup 2.6.1's tools_string_to_size does: decimal digits
// (no sign, no space), then optionally a unit — S (512-byte sectors), K, M, G or T — bare
// or with "iB" for powers of 1024, or with "B" for powers of 1000 ("1MB" is 1000000).
// Anything else, or a value beyond 64 bits, is errSizeSpec; zero is out of range (popt's
// "invalid numeric value"). Values beyond int64 keep their remainder modulo 512, for
// checkDeviceSize.
func parseSize(s string) (int64, error) {
	digits := len(s) - len(strings.TrimLeft(s, "0123456789"))
	if digits == 0 {
		return 0, errSizeSpec
	}
	v, err := strconv.ParseUint(s[:digits], 10, 64)
	if err != nil {
		return 0, errSizeSpec
	}
	if unit := s[digits:]; unit != "" {
		base := uint64(1024)
		switch unit[1:] {
		case "", "iB":
		case "B":
			base = 1000
		default:
			return 0, errSizeSpec
		}
		pow := strings.IndexByte("kmgt", unit[0]|0x20) + 1
		mult := uint64(1)
		switch {
		case unit[0] == 'S' || unit[0] == 's':
			mult = 512
		case pow == 0:
			return 0, errSizeSpec
		}
		for range pow {
			mult *= base
		}
		if v != 0 && v*mult/v != mult {
			return 0, errSizeSpec
		}
		v *= mult
	}
	if v == 0 {
		return 0, strconv.ErrRange
	}
	if v > math.MaxInt64 {
		v = math.MaxInt64&^(luks.SectorSize-1) + v%luks.SectorSize
	}
	return int64(v), nil
}

// checkDeviceSize is cryptsetup's parse-time check of --device-size.
func checkDeviceSize(o *options) string {
	if o.set["device-size"] && o.deviceSize%luks.SectorSize != 0 {
		return "Device size must be multiple of 512 bytes sector."
	}
	return ""
}
