package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// defaultStateDir holds the creation tokens of setups (and swap/tmp runs) that create a
// volume and have not finished yet. Nothing secret is kept there.
const defaultStateDir = "/var/lib/cloudluks"

// A run that creates an EBS volume names it with a random token (its EC2 ClientToken and
// token tag, ebs.CreateOptions.Name) kept in a small file under the state directory,
// written before CreateVolume and removed when the run finishes. A run killed at any
// point — even before EC2's answer arrived — leaves the file, so running the same command
// again (same instance, name, mount point, size, type, zone) uses the same token, finds the
// volume the killed run made and continues with it. A finished run removes the file, so a
// later setup with the same parameters makes a new volume rather than taking over the old
// one (which may hold data), and EC2 never sees a token again after that volume is gone.

func (a *app) tokenPath(kind, instance, name, mountPoint string, sizeGiB int, volumeType, zone string) string {
	key := strings.Join([]string{kind, instance, name, filepath.Clean(mountPoint), fmt.Sprint(sizeGiB), volumeType, zone}, "\x00")
	sum := sha256.Sum256([]byte(key))
	dir := a.stateDir
	if dir == "" {
		dir = defaultStateDir
	}
	return filepath.Join(dir, kind+"-"+hex.EncodeToString(sum[:8])+".token")
}

// creationToken returns the volume name to create under and whether it continues an
// unfinished run.
func (a *app) creationToken(kind, instance, name, mountPoint string, sizeGiB int, volumeType, zone string) (string, bool, error) {
	p := a.tokenPath(kind, instance, name, mountPoint, sizeGiB, volumeType, zone)
	if b, err := os.ReadFile(p); err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) == 32 && isHex(tok) {
			return "encrypted-volume " + kind + " " + tok, true, nil
		}
		// A damaged file: start afresh (a new token) rather than guess.
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("creation token %s: %w", p, err)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, err
	}
	tok := hex.EncodeToString(b[:])
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", false, fmt.Errorf("creation token: %w", err)
	}
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("creation token: %w", err)
	}
	_, werr := f.WriteString(tok + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return "", false, fmt.Errorf("creation token %s: %w", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return "", false, fmt.Errorf("creation token %s: %w", p, err)
	}
	return "encrypted-volume " + kind + " " + tok, false, nil
}

// dropCreationToken forgets the token of a finished run (best effort: a file left behind
// only makes the next identical run find the finished volume, which then refuses to format
// it over its LUKS header).
func (a *app) dropCreationToken(kind, instance, name, mountPoint string, sizeGiB int, volumeType, zone string) {
	os.Remove(a.tokenPath(kind, instance, name, mountPoint, sizeGiB, volumeType, zone))
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}
