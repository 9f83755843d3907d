//go:build linux

package dmcrypt_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/cloudluks/cloudluks/dmcrypt"
)

// Open a LUKS1 volume as /dev/mapper/my_enc_fs, show its status like `cryptsetup status`, and
// close it again. Needs root and a kernel with dm-crypt (the VM tests run this path).
func ExampleOpen() {
	ctx := context.Background()
	passphrase := []byte("correct horse battery staple")
	defer clear(passphrase)

	m, err := dmcrypt.Open(ctx, "/dev/xvdf", "my_enc_fs", passphrase,
		dmcrypt.OpenOptions{AllowDiscards: true})
	if err != nil {
		log.Fatal(err) // errors.Is(err, luks.ErrWrongPassphrase), dmcrypt.ErrExists, …
	}
	fmt.Println("mapped at", m.Path)

	st, err := dmcrypt.Status("my_enc_fs")
	if err != nil {
		log.Fatal(err)
	}
	_ = st.Dump(os.Stdout, "my_enc_fs")

	// Retry while udev or a lingering reader holds the device, for at most 10 s.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := dmcrypt.Close(cctx, "my_enc_fs"); err != nil {
		log.Fatal(err)
	}
}
