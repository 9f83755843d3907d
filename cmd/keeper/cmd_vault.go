package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/cloudluks/cloudluks/internal/cli"
	"github.com/cloudluks/cloudluks/keeper/config"
	"github.com/cloudluks/cloudluks/keeper/vault"
	"github.com/cloudluks/cloudluks/luks"
)

func cmdVault(a *app, args []string) error {
	switch args[0] {
	case "add":
		return vaultAdd(a, args[1:])
	case "list":
		return vaultList(a, args[1:])
	case "remove", "rm":
		return vaultRemove(a, args[1:])
	}
	return usageErr("vault %q: want add, list or remove", args[0])
}

// vaultPaths are the vault and identity files and the vault's recipients: the flags, else
// the configuration's.
func (a *app) vaultPaths() (path, identity string, recipients []string, err error) {
	path, identity = a.vault, a.identity
	if path == "" {
		c, err := config.Load(a.config)
		if err != nil {
			return "", "", nil, fmt.Errorf("%w (or give --vault)", err)
		}
		path = c.Vault
		if identity == "" {
			identity = c.Identity
		}
		recipients = c.Recipients
	}
	return path, identity, recipients, nil
}

// vaultOptions are age's defaults: a new passphrase vault costs about a second of scrypt.
func vaultOptions() vault.Options { return vault.Options{} }

func (a *app) keyInput() cli.KeyInput {
	return cli.KeyInput{Stdin: a.stdin, Term: a.term, Ctx: a.ctx}
}

// openVault opens the vault with its identity file or a passphrase. With create, a missing
// vault is made: for the recipients given, else for a new passphrase asked twice. The
// recipients given (--recipient), else the configuration's, are what a recipient vault's
// writes are encrypted to: never the list inside the file, which anyone who can write the
// file can forge (see package keeper/vault).
func (a *app) openVault(create bool, recipients []string) (*vault.Vault, error) {
	v, nv, err := a.openOrNewVault(create, recipients)
	if nv != nil {
		defer nv.drop()
		return nv.make()
	}
	return v, err
}

// newVault is a vault asked for but not made yet: vault add makes it only once the entry's
// input is complete, so a failed add leaves no file behind.
type newVault struct {
	path       string
	pass       []byte // nil for recipients
	recipients []string
	opts       vault.Options
}

func (n *newVault) make() (*vault.Vault, error) {
	if n.pass == nil {
		return vault.CreateForRecipients(n.path, n.recipients, n.opts)
	}
	return vault.Create(n.path, n.pass, n.opts)
}

func (n *newVault) drop() { clear(n.pass) }

// openOrNewVault opens the vault, or with create and a missing file asks what a new one
// needs and returns it to be made.
func (a *app) openOrNewVault(create bool, recipients []string) (*vault.Vault, *newVault, error) {
	path, identity, cfgRecipients, err := a.vaultPaths()
	if err != nil {
		return nil, nil, err
	}
	opts := vaultOptions()
	given := len(recipients) > 0
	if !given {
		recipients = cfgRecipients
	}
	opts.Recipients = recipients
	_, statErr := os.Stat(path)
	missing := errors.Is(statErr, os.ErrNotExist)
	switch {
	case missing && create && len(recipients) > 0:
		fmt.Fprintf(a.stderr, "%s: creating vault %s for %d recipient(s)\n", program, path, len(recipients))
		return nil, &newVault{path: path, recipients: recipients, opts: opts}, nil
	case missing && create && identity != "":
		// A passphrase vault would never open with the identity the keeper is told to use.
		return nil, nil, usageErr("no vault %s, and an identity (%s) is set: create it for recipients with --recipient age1… (or the configuration's recipients)", path, identity)
	case missing && create:
		fmt.Fprintf(a.stderr, "%s: creating vault %s\n", program, path)
		pass, err := a.keyInput().Read("Enter new passphrase for vault: ", cli.KeySource{}, true)
		if err != nil {
			return nil, nil, err
		}
		return nil, &newVault{path: path, pass: pass, opts: opts}, nil
	case missing:
		return nil, nil, fmt.Errorf("%s: %w", path, vault.ErrNotFound)
	case given && identity == "":
		return nil, nil, usageErr("--recipient: the vault %s exists: give its --identity too", path)
	case identity != "":
		f, err := os.Open(identity)
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		ids, err := vault.ParseIdentities(f, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", identity, err)
		}
		v, err := vault.OpenWithIdentities(path, ids, opts)
		return v, nil, err
	}
	pass, err := a.keyInput().Read("Enter passphrase for vault "+path+": ", cli.KeySource{}, false)
	if err != nil {
		return nil, nil, err
	}
	defer clear(pass)
	v, err := vault.Open(path, pass, opts)
	return v, nil, err
}

type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func vaultAdd(a *app, args []string) error {
	fs := a.flags("vault add")
	uuid := fs.String("uuid", "", "LUKS UUID of the volume's header (cryptsetup luksUUID DEVICE)")
	header := fs.String("header", "", "the volume's LUKS header (a luksHeaderBackup file, or the device): its UUID is taken, and the passphrase must open it before it is stored")
	label := fs.String("label", "", "free label shown by vault list")
	keyFile := fs.String("key-file", "", "read the volume's passphrase from this file, whole ('-' = all of stdin)")
	var recipients multiFlag
	fs.Var(&recipients, "recipient", "age recipient (age1…, a plugin's) to create a new vault for, instead of a passphrase, or that an existing vault's rewrite is encrypted to (repeatable; default: the configuration's recipients)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("vault add VOLUME_ID --uuid UUID")
	}
	e := vault.Entry{VolumeID: pos[0], LUKSUUID: *uuid, Label: *label}
	var hdr *os.File
	if *header != "" {
		if hdr, err = os.Open(*header); err != nil {
			return err
		}
		defer hdr.Close()
		h, err := luks.ReadHeader(hdr)
		if err != nil {
			return fmt.Errorf("%s: %w", *header, err)
		}
		if e.LUKSUUID != "" && !strings.EqualFold(e.LUKSUUID, h.UUID) {
			return usageErr("--uuid %s, but the header %s has UUID %s", e.LUKSUUID, *header, h.UUID)
		}
		e.LUKSUUID = h.UUID
	}
	// Everything about the entry is checked before a passphrase is asked for.
	if err := vault.Validate(e); err != nil {
		return err
	}
	v, nv, err := a.openOrNewVault(true, recipients)
	if err != nil {
		return err
	}
	if nv != nil {
		defer nv.drop()
	} else {
		defer v.Close()
		if _, err := v.Lookup(e.VolumeID); err == nil {
			return fmt.Errorf("%s: %w in vault %s", e.VolumeID, vault.ErrExists, v.Path())
		}
	}
	pass, err := a.keyInput().Read("Enter passphrase for "+e.VolumeID+": ", cli.KeySource{File: *keyFile}, *keyFile == "")
	if err != nil {
		return err
	}
	defer clear(pass)
	if hdr != nil {
		// A typo stored here would lock the volume out at its next boot: prove it first.
		_, vk, slot, err := luks.Unlock(a.ctx, hdr, pass, luks.UnlockOptions{})
		if err != nil {
			return fmt.Errorf("%s: %w", *header, err)
		}
		vk.Wipe()
		fmt.Fprintf(a.stderr, "%s: the passphrase opens key slot %d of %s\n", program, slot, *header)
	}
	if nv != nil {
		if v, err = nv.make(); err != nil {
			return err
		}
		defer v.Close()
	}
	if err := v.Add(e, pass); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "%s: %s added to %s\n", program, e.VolumeID, v.Path())
	return nil
}

func vaultList(a *app, args []string) error {
	fs := a.flags("vault list")
	asJSON := fs.Bool("json", false, "print JSON")
	var recipients multiFlag
	fs.Var(&recipients, "recipient", "the vault's age recipients, to compare with those the file lists (repeatable; default: the configuration's)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErr("vault list takes no argument")
	}
	v, err := a.openVault(false, recipients)
	if err != nil {
		return err
	}
	defer v.Close()
	entries := v.List()
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "VOLUME\tLUKS UUID\tLABEL")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.VolumeID, e.LUKSUUID, e.Label)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	a.showRecipients(v)
	return nil
}

// showRecipients prints what a recipient vault's writes go to, and warns when the file's own
// (unauthenticated) list differs: someone else wrote it, or the configuration changed.
func (a *app) showRecipients(v *vault.Vault) {
	file, use := v.FileRecipients(), v.Recipients()
	if len(file) == 0 {
		return
	}
	for _, r := range use {
		fmt.Fprintf(a.stdout, "recipient %s\n", r)
	}
	if len(use) == 0 {
		fmt.Fprintf(a.stderr, "%s: warning: writes to this vault need its recipients (configuration recipients, or --recipient)\n", program)
	}
	for _, r := range file {
		if len(use) > 0 && !slices.Contains(use, r) {
			fmt.Fprintf(a.stderr, "%s: warning: the vault file lists recipient %s, which is not configured: the next write drops it; if you did not add it, someone who can write %s did\n", program, oneLine(r), v.Path())
		}
	}
	for _, r := range use {
		if !slices.Contains(file, r) {
			fmt.Fprintf(a.stderr, "%s: warning: recipient %s is configured but the vault file was not written to it yet\n", program, r)
		}
	}
}

func vaultRemove(a *app, args []string) error {
	fs := a.flags("vault remove")
	var recipients multiFlag
	fs.Var(&recipients, "recipient", "the vault's age recipients, which the rewritten file is encrypted to (repeatable; default: the configuration's)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("vault remove VOLUME_ID")
	}
	v, err := a.openVault(false, recipients)
	if err != nil {
		return err
	}
	defer v.Close()
	if err := v.Remove(pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "%s: %s removed from %s\n", program, pos[0], v.Path())
	return nil
}
