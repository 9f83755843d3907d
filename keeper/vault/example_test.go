package vault_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cloudluks/cloudluks/keeper/vault"
)

// A passphrase vault: create it once, add a volume's passphrase, and at the keeper's start
// open it and hand a passphrase to the engine (which zeroes its copy).
func Example() {
	dir, _ := os.MkdirTemp("", "vault")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "vault.age")
	opts := vault.Options{WorkFactor: 10} // age's default, 18, takes about a second

	v, err := vault.Create(path, []byte("vault passphrase"), opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = v.Add(vault.Entry{VolumeID: "vol-0123456789abcdef0", LUKSUUID: "6e0a6d4c-9c1b-4c3e-8a5d-1f2e3d4c5b6a", Label: "web-1/data"}, []byte("disk passphrase"))
	v.Close()
	if err != nil {
		fmt.Println(err)
		return
	}

	v, err = vault.Open(path, []byte("vault passphrase"), opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()
	for _, e := range v.List() {
		fmt.Println(e.VolumeID, e.LUKSUUID, e.Label)
	}
	pass, _ := v.Passphrase("vol-0123456789abcdef0")
	fmt.Println(len(pass), "bytes")
	clear(pass)

	_, err = vault.Open(path, []byte("guess"), opts)
	fmt.Println(err != nil && errors.Is(err, vault.ErrWrongKey))
	// Output:
	// vol-0123456789abcdef0 6e0a6d4c-9c1b-4c3e-8a5d-1f2e3d4c5b6a web-1/data
	// 15 bytes
	// true
}
