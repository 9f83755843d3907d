package luks_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"

	"github.com/cloudluks/cloudluks/luks"
)

// UnlockAny opens a header of either version; DataSegment describes the payload the same
// way for both. testdata/luks2/example-header.img is the metadata of an image made by
// `cryptsetup luksFormat --type luks2 --sector-size 4096 --label example` with the
// passphrase "correct horse".
func ExampleUnlockAny() {
	f, err := os.Open("testdata/luks2/example-header.img")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	pass := []byte("correct horse")
	h, vk, slot, err := luks.UnlockAny(context.Background(), f, pass, luks.UnlockOptions{})
	clear(pass)
	if err != nil {
		log.Fatal(err)
	}
	defer vk.Wipe()
	seg, err := h.DataSegment()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("LUKS version:", h.LUKSVersion(), "keyslot:", slot, "key:", vk)
	fmt.Println("cipher:", seg.Cipher, "sector size:", seg.SectorSize, "data offset:", seg.Offset)
	if h2, ok := h.(*luks.Header2); ok {
		fmt.Println("label:", h2.Label, "epoch:", h2.SeqID)
	}
	// Output:
	// LUKS version: 2 keyslot: 0 key: VolumeKey(32 bytes, redacted)
	// cipher: aes-xts-plain64 sector size: 4096 data offset: 262144
	// label: example epoch: 3
}

// ReadHeader2 reports a damaged copy instead of failing while the other copy is good, as
// cryptsetup does; Dump prints what `cryptsetup luksDump` prints.
func ExampleReadHeader2() {
	b, err := os.ReadFile("testdata/luks2/example-header.img")
	if err != nil {
		log.Fatal(err)
	}
	b[0] = 0 // destroy the primary header's magic
	h, err := luks.ReadHeader2(bytes.NewReader(b))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("primary:", h.PrimaryErr)
	fmt.Println("in use: secondary =", h.BinaryHeader2.Secondary, "uuid", h.UUID)
	// Output:
	// primary: not a valid LUKS device: no LUKS2 magic at offset 0
	// in use: secondary = true uuid 6a1c3f0e-5b4d-4c2a-9e8f-0d1b2c3a4f5e
}
