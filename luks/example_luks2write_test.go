package luks_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/cloudluks/cloudluks/luks"
)

// ExampleFormatLUKS2 formats an image file the way `cryptsetup luksFormat --type luks2
// --pbkdf-force-iterations 4 --pbkdf-memory 32768` would, adds a second passphrase and
// converts nothing: the result opens with cryptsetup and with this package.
func ExampleFormatLUKS2() {
	dir, err := os.MkdirTemp("", "luks2-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "disk.img"))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(32 << 20); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	info, vk, err := luks.FormatLUKS2(ctx, f, []byte("first passphrase"), luks.LUKS2FormatOptions{
		PBKDF: luks.KDFArgon2id, ForceIterations: 4, Memory: 32 << 10, Parallel: 1, SectorSize: 4096,
	})
	if err != nil {
		log.Fatal(err)
	}
	vk.Wipe()
	fmt.Println("data at", info.DataOffset, "sector", info.SectorSize, "slot", info.Keyslot)
	slot, err := luks.AddKeyLUKS2(ctx, f, []byte("first passphrase"), []byte("second passphrase"),
		luks.LUKS2KeyslotOptions{PBKDF: luks.KDFPBKDF2, ForceIterations: 1000})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("added slot", slot)
	// Output:
	// data at 16777216 sector 4096 slot 0
	// added slot 1
}
