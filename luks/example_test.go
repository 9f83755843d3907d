package luks_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudluks/cloudluks/luks"
)

// newImage makes a sparse 8 MiB image file in a temporary directory.
func newImage() (path string, cleanup func()) {
	dir, err := os.MkdirTemp("", "luks-example")
	if err != nil {
		log.Fatal(err)
	}
	path = filepath.Join(dir, "disk.img")
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := f.Truncate(8 << 20); err != nil {
		log.Fatal(err)
	}
	f.Close()
	return path, func() { os.RemoveAll(dir) }
}

// Format an image file like `cryptsetup luksFormat --type luks1`. ForceIterations keeps the
// example fast; real volumes leave it 0 and get a 2-second calibration.
func ExampleFormat() {
	path, cleanup := newImage()
	defer cleanup()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	h, vk, err := luks.Format(context.Background(), f, []byte("correct horse"), luks.FormatOptions{
		Cipher:          "aes-xts-plain64",
		Hash:            "sha256",
		ForceIterations: 1000,
		UUID:            "b2b418e7-6a6c-4ba2-ab9a-1d76c52f5d00",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer vk.Wipe()
	fmt.Println(h.CipherSpec(), vk.Len()*8, "bits, payload at sector", h.PayloadOffset)
	fmt.Println("UUID", h.UUID, "slot 0 enabled:", h.Keyslots[0].Enabled())
	// Output:
	// aes-xts-plain64 512 bits, payload at sector 4096
	// UUID b2b418e7-6a6c-4ba2-ab9a-1d76c52f5d00 slot 0 enabled: true
}

// Unlock tries a passphrase on every enabled slot and returns the volume key.
func ExampleUnlock() {
	path, cleanup := newImage()
	defer cleanup()
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	defer f.Close()
	ctx := context.Background()
	_, vk, err := luks.Format(ctx, f, []byte("first"), luks.FormatOptions{ForceIterations: 1000})
	if err != nil {
		log.Fatal(err)
	}
	vk.Wipe()
	_, slot, err := luks.AddKey(ctx, f, []byte("first"), []byte("second"), luks.AddKeyOptions{ForceIterations: 1000})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("added slot", slot)

	_, vk, slot, err = luks.Unlock(ctx, f, []byte("second"), luks.UnlockOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer vk.Wipe()
	fmt.Println("opened slot", slot, "key", vk) // the key prints redacted

	_, _, _, err = luks.Unlock(ctx, f, []byte("wrong"), luks.UnlockOptions{})
	fmt.Println(err)
	// Output:
	// added slot 1
	// opened slot 1 key VolumeKey(64 bytes, redacted)
	// No key available with this passphrase.
}

// A Volume reads and writes the decrypted payload without root or device-mapper.
func ExampleVolume() {
	path, cleanup := newImage()
	defer cleanup()
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	defer f.Close()
	h, vk, err := luks.Format(context.Background(), f, []byte("pw"), luks.FormatOptions{
		Cipher: "aes-cbc-essiv:sha256", KeySize: 256, ForceIterations: 1000,
	})
	if err != nil {
		log.Fatal(err)
	}
	v, err := luks.NewVolume(f, h, vk)
	vk.Wipe()
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	msg := []byte("hello, encrypted world")
	if _, err := v.WriteAt(msg, 1000); err != nil { // unaligned is fine
		log.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := v.ReadAt(got, 1000); err != nil {
		log.Fatal(err)
	}
	raw := make([]byte, len(msg))
	f.ReadAt(raw, h.PayloadOffsetBytes()+1000)
	fmt.Printf("%s\n", got)
	fmt.Println("plaintext on disk:", bytes.Contains(raw, msg))
	fmt.Println("payload bytes:", v.Size())
	// Output:
	// hello, encrypted world
	// plaintext on disk: false
	// payload bytes: 6291456
}

// Dump prints what `cryptsetup luksDump` prints, byte for byte.
func ExampleHeader_Dump() {
	path, cleanup := newImage()
	defer cleanup()
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	defer f.Close()
	_, vk, err := luks.Format(context.Background(), f, []byte("pw"), luks.FormatOptions{ForceIterations: 1000})
	if err != nil {
		log.Fatal(err)
	}
	vk.Wipe()
	h, err := luks.ReadHeader(f)
	if err != nil {
		log.Fatal(err)
	}
	var out strings.Builder
	h.Dump(&out, "disk.img")
	// Salts and digests are random; show the stable lines.
	for _, line := range strings.Split(out.String(), "\n")[:8] {
		fmt.Println(line)
	}
	// Output:
	// LUKS header information for disk.img
	//
	// Version:       	1
	// Cipher name:   	aes
	// Cipher mode:   	xts-plain64
	// Hash spec:     	sha256
	// Payload offset:	4096
	// MK bits:       	512
}

// Back up the header area to a file cryptsetup luksHeaderRestore accepts, and restore it.
func ExampleBackupHeader() {
	path, cleanup := newImage()
	defer cleanup()
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	defer f.Close()
	_, vk, err := luks.Format(context.Background(), f, []byte("pw"), luks.FormatOptions{ForceIterations: 1000})
	if err != nil {
		log.Fatal(err)
	}
	vk.Wipe()
	backup := filepath.Join(filepath.Dir(path), "header.bak")
	if err := luks.BackupHeader(f, backup); err != nil {
		log.Fatal(err)
	}
	st, _ := os.Stat(backup)
	fmt.Println(st.Size(), st.Mode().Perm())
	f.WriteAt(make([]byte, 4096), 0) // oops
	fmt.Println("LUKS:", luks.IsLUKS(f))
	if err := luks.RestoreHeader(f, backup); err != nil {
		log.Fatal(err)
	}
	fmt.Println("LUKS:", luks.IsLUKS(f))
	// Output:
	// 2068480 -r--------
	// LUKS: false
	// LUKS: true
}

// Key files follow cryptsetup's --keyfile-offset / --keyfile-size rules.
func ExampleReadKeyFile() {
	dir, _ := os.MkdirTemp("", "keyfile")
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "key")
	os.WriteFile(p, []byte("header:secret-key\ntrailer"), 0o600)
	key, err := luks.ReadKeyFile(p, 7, 10)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", key)
	// Output: "secret-key"
}

// Change a passphrase the crash-safe way (the zero AddKeyOptions: new slot first, then the
// old slot is destroyed), then remove a passphrase. Keyslot: luks.Slot(n) would rewrite
// slot n in place instead, as cryptsetup -S n does.
func ExampleChangeKey() {
	path, cleanup := newImage()
	defer cleanup()
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	defer f.Close()
	ctx := context.Background()
	_, vk, err := luks.Format(ctx, f, []byte("old"), luks.FormatOptions{ForceIterations: 1000})
	if err != nil {
		log.Fatal(err)
	}
	vk.Wipe()
	opts := luks.AddKeyOptions{ForceIterations: 1000}
	oldSlot, newSlot, err := luks.ChangeKey(ctx, f, []byte("old"), []byte("new"), opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("moved from slot", oldSlot, "to slot", newSlot)

	_, err = luks.RemoveKey(ctx, f, []byte("new"), false)
	fmt.Println(err)
	// Output:
	// moved from slot 0 to slot 1
	// keyslot 1: refusing to remove the last active keyslot
}
