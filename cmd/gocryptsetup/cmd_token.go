package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cloudluks/cloudluks/luks"
)

// tokenOpts are the token action's options (cryptsetup's OPT_TOKEN_ID, OPT_TOKEN_REPLACE,
// OPT_JSON_FILE, OPT_KEY_DESCRIPTION, OPT_UNBOUND).
type tokenOpts struct {
	id          int64
	replace     bool
	jsonFile    string
	description string
	unbound     bool
}

func tokenOptionDefs() []optDef {
	return []optDef{
		{long: "json-file", kind: optString, arg: "STRING", apply: func(o *options, s string, _ int64) { o.tok.jsonFile = s }},
		{long: "key-description", kind: optString, arg: "STRING", apply: func(o *options, s string, _ int64) { o.tok.description = s }},
		{long: "token-id", kind: optInt, num: numInt32, arg: "INT", apply: func(o *options, _ string, n int64) { o.tok.id = n }},
		{long: "token-replace", kind: optBool, only: []string{"token"}, apply: func(o *options, _ string, _ int64) { o.tok.replace = true }},
		{long: "unbound", kind: optBool, only: []string{"token"}, apply: func(o *options, _ string, _ int64) { o.tok.unbound = true }},
	}
}

// maxTokenJSON is LUKS2_MAX_MDA_SIZE less the terminating NUL: what tools_read_json_file reads.
const maxTokenJSON = 4<<20 - 1

// cmdToken is `token add|remove|import|export <device>` on LUKS2 (cryptsetup's
// action_token with verify_token's checks first). import reads the token JSON from
// --json-file or stdin; export writes it to --json-file or stdout. With -v the created or
// removed token is named.
func cmdToken(a *app, args []string) error {
	o := a.opts
	action, dev := args[0], args[1]
	id := -1
	if o.set["token-id"] {
		id = int(o.tok.id)
	}
	switch action {
	case "add", "remove", "import", "export", "unassign":
	default:
		return &usageError{msg: "Invalid token action."}
	}
	switch {
	case action == "add" && !o.set["key-description"]:
		return &usageError{msg: "--key-description parameter is mandatory for token add action."}
	case id == -1 && (action == "remove" || action == "export"):
		return &usageError{msg: "Action requires specific token. Use --token-id parameter."}
	case o.tok.unbound && action != "add":
		return &usageError{msg: "Option --unbound is valid only with token add action."}
	case o.tok.unbound && o.set["key-slot"]:
		return &usageError{msg: "Options --key-slot and --unbound cannot be combined."}
	case action == "unassign" && !o.set["key-slot"]:
		return &usageError{msg: "Action requires specific keyslot. Use --key-slot parameter."}
	case action == "unassign" && !o.set["token-id"]:
		return &usageError{msg: "Action requires specific token. Use --token-id parameter."}
	}
	hp := a.headerPath(dev)
	f, err := openDevice(hp, action != "export")
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := luks.ReadHeader2(f); err != nil {
		return &cliError{code: exitParams, msg: fmt.Sprintf("Device %s is not a valid LUKS2 device.", hp)}
	}
	slot := -1
	if o.set["key-slot"] {
		slot = o.keySlot
	}
	if (action == "add" || action == "import") && id != -1 && (id < 0 || id >= 32) {
		return &cliError{code: exitParams, msg: fmt.Sprintf("Token %d is invalid.", id)}
	}
	switch action {
	case "export":
		js, err := luks.TokenExportLUKS2(f, id)
		if err != nil {
			return &cliError{code: exitParams, msg: fmt.Sprintf("Failed to get token %d for export.", id)}
		}
		return writeTokenJSON(a, o.tok.jsonFile, js)
	case "unassign":
		return tokenUnassign(f, hp, id, slot)
	case "remove":
		if id < 0 || id >= 32 {
			return &cliError{code: exitParams, msg: fmt.Sprintf("Token %d is invalid.", id)}
		}
		if err := luks.TokenRemoveLUKS2(f, id, nil); err != nil {
			if errors.Is(err, luks.ErrTokenNotInUse) {
				return &cliError{code: exitParams, msg: fmt.Sprintf("Token %d is not in use.", id)}
			}
			return onDevice(hp, err)
		}
		a.logVerbose("Token %d removed.", id)
		return f.Sync()
	}
	if id >= 0 && !o.tok.replace {
		if _, err := luks.TokenExportLUKS2(f, id); err == nil {
			return &cliError{code: exitParams, msg: fmt.Sprintf("Token %d in use.", id)}
		}
	}
	if slot >= 0 {
		h, err := luks.ReadHeader2(f)
		if err != nil {
			return onDevice(hp, err)
		}
		if h.Keyslots[slot] == nil {
			return &cliError{code: exitParams, msg: fmt.Sprintf("Keyslot %d is not active.", slot)}
		}
	}
	var got int
	if action == "add" {
		got, err = luks.TokenAddKeyringLUKS2(f, id, o.tok.replace, o.tok.description, slot, o.tok.unbound, nil)
		if err != nil {
			return withRequirements(err, fmt.Sprintf("Failed to add luks2-keyring token %d.", id))
		}
	} else {
		js, err := readTokenJSON(a, o.tok.jsonFile)
		if err != nil {
			return err
		}
		got, err = luks.TokenImportLUKS2(f, id, o.tok.replace, js, slot, nil)
		if err != nil {
			return withRequirements(err, "Failed to import token from file.")
		}
	}
	a.logVerbose("Token %d created.", got)
	return f.Sync()
}

// readTokenJSON is tools_read_json_file: --json-file or stdin ("-" too), at most 4 MiB - 1.
func readTokenJSON(a *app, file string) ([]byte, error) {
	var r io.Reader = a.stdin
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, &cliError{code: exitParams, msg: fmt.Sprintf("Failed to open file %s in read-only mode.", file)}
		}
		defer f.Close()
		r = f
	} else if a.term.IsTerminal() && !a.opts.batch {
		a.logStd("Provide valid LUKS2 token JSON:")
	}
	b, err := io.ReadAll(io.LimitReader(r, maxTokenJSON))
	if err != nil {
		return nil, &cliError{code: exitParams, msg: "Failed to read JSON file."}
	}
	return b, nil
}

// writeTokenJSON is tools_write_json_file: stdout, or a file opened without truncation
// (O_CREAT|O_WRONLY, mode 0600) as cryptsetup opens it.
func writeTokenJSON(a *app, file string, js []byte) error {
	if file == "" || file == "-" {
		_, err := a.stdout.Write(js)
		return err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return &cliError{code: exitParams, msg: fmt.Sprintf("Failed to open file %s in write mode.", file)}
	}
	if _, err := f.Write(js); err != nil {
		f.Close()
		return &cliError{code: exitParams, msg: "Failed to write JSON file."}
	}
	return f.Close()
}

// tokenUnassign is _token_unassign: crypt_token_is_assigned first (a token or slot outside
// 0..31 fails as "Failed to unassign", a missing token or an unlisted slot as "not
// assigned"), then the header change, which the requirements may refuse.
func tokenUnassign(f *os.File, hp string, id, slot int) error {
	failed := fmt.Sprintf("Failed to unassign token %d from keyslot %d.", id, slot)
	err := luks.TokenUnassignLUKS2(f, id, slot, nil)
	switch {
	case err == nil:
		return f.Sync()
	case errors.Is(err, luks.ErrTokenNotAssigned):
		return &cliError{code: exitParams, msg: fmt.Sprintf("Token %d is not assigned to keyslot %d.", id, slot)}
	case errors.Is(err, luks.ErrInvalidToken), errors.Is(err, luks.ErrInvalidParameter):
		return &cliError{code: exitParams, msg: failed}
	}
	if errors.Is(err, luks.ErrUnmetRequirements) {
		return withRequirements(err, failed)
	}
	return onDevice(hp, err)
}

// withRequirements is msg after libcryptsetup's own lines when err is a refusal for the
// header's requirements (the library logs them, then the tool its failure line).
func withRequirements(err error, msg string) error {
	var re *luks.RequirementError
	if errors.As(err, &re) {
		msg = strings.Join(append(re.Messages(), msg), "\n")
	}
	return &cliError{code: exitParams, msg: msg}
}
