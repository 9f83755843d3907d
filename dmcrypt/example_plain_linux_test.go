//go:build linux

package dmcrypt_test

import (
	"context"
	"fmt"
	"log"

	"github.com/cloudluks/cloudluks/dmcrypt"
)

// Map an instance-store disk for swap with a key that exists only in the kernel: every open
// draws a new key, so whatever was paged out is unreadable once the mapping is closed (or
// the machine stops). Every parameter is spelled out, as anything written down for later
// must be. Needs root and dm-crypt.
func ExampleOpenEphemeral() {
	ctx := context.Background()
	m, err := dmcrypt.OpenEphemeral(ctx,
		"/dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_AWS1234567890ABCDEF0", "swap",
		dmcrypt.PlainParams{Cipher: "aes-xts-plain64", KeySize: 64, SectorSize: 4096},
		dmcrypt.OpenOptions{AllowDiscards: true})
	if err != nil {
		log.Fatal(err) // dmcrypt.ErrDeviceInUse, dmcrypt.ErrExists, …
	}
	fmt.Println("mkswap", m.Path)
}

// Open a plain dm-crypt device the way `cryptsetup open --type plain -c aes-xts-plain64
// -s 512 -h sha512 --offset 2048 /dev/xvdg secret` does, with the passphrase hashed by sha512.
func ExampleOpenPlain() {
	ctx := context.Background()
	passphrase := []byte("correct horse battery staple")
	defer clear(passphrase)
	p := dmcrypt.PlainParams{Cipher: "aes-xts-plain64", KeySize: 64, Hash: "sha512", Offset: 2048}
	m, err := dmcrypt.OpenPlain(ctx, "/dev/xvdg", "secret", passphrase, p, dmcrypt.OpenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	st, err := dmcrypt.Status(m.Name)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Type, st.Cipher, st.KeySize*8, st.Offset) // PLAIN aes-xts-plain64 512 2048
}
