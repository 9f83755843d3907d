//go:build linux

package dmcrypt

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/cloudluks/cloudluks/dmcrypt/internal/dm"
	"github.com/cloudluks/cloudluks/dmcrypt/internal/loop"
	"github.com/cloudluks/cloudluks/internal/vmtest"
)

// notRootEnv makes the test binary act as the unprivileged child of the not-root check: the VM
// test re-executes itself under uid/gid 65534 with this set.
const notRootEnv = "DMCRYPT_NOT_ROOT_CHILD"

// TestMain lets the VM tests boot this package's test binary as init in a qemu guest.
func TestMain(m *testing.M) {
	if os.Getenv(notRootEnv) == "1" {
		os.Exit(notRootChild())
	}
	vmtest.Main(m)
}

// notRootChild runs as uid 65534 and reports (exit 0) whether every operation failed with
// ErrNotRoot.
func notRootChild() int {
	bad := 0
	// Without a /dev/mapper/control node there is no permission to check: a kernel without
	// device-mapper then answers first, which the parent allows for the dm operations.
	noDM := os.Getenv(notRootEnv+"_NODM") == "1"
	check := func(what string, err error) {
		if errors.Is(err, ErrNotRoot) && !errors.Is(err, os.ErrPermission) {
			fmt.Printf("not-root %s: %v does not match os.ErrPermission\n", what, err)
			bad++
		}
		if !errors.Is(err, ErrNotRoot) && !(noDM && what != "AttachLoop" && errors.Is(err, ErrNoDeviceMapper)) {
			fmt.Printf("not-root %s: got %v, want ErrNotRoot\n", what, err)
			bad++
		} else {
			fmt.Printf("not-root %s: %v\n", what, err)
		}
	}
	_, err := dm.OpenControl()
	check("OpenControl", err)
	_, err = Status("anything")
	check("Status", err)
	check("Close", Close(contextBackground(), "anything"))
	_, err = Open(contextBackground(), os.Args[0], "anything", []byte("x"), OpenOptions{})
	check("Open", err)
	_, err = loop.Attach(os.Args[0], loop.Options{ReadOnly: true, Autoclear: true})
	check("AttachLoop", err)
	if bad > 0 {
		return 1
	}
	return 0
}
