package vmtest_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/cloudluks/cloudluks/internal/vmtest"
)

// A VM test: prepare inputs on the host, run the body in the guest as root with a disk and
// cryptsetup, read what the guest left on the disk after Run returns on the host. The
// package's TestMain must call vmtest.Main(m).
func ExampleRun() {
	testFormat := func(t *testing.T) {
		var img string
		if !vmtest.InVM() {
			img = vmtest.NewDiskImage(t, 32<<20)
		}
		if !vmtest.Run(t, vmtest.Options{
			Disks: []vmtest.Disk{{Path: img, NVMeSerial: "vol0123456789abcdef0"}},
			Tools: []string{"cryptsetup"},
			Env:   map[string]string{"PASSPHRASE_FILE": "/tmp/pass"},
		}) {
			b, err := os.ReadFile(img) // host: the guest's writes are in the image now
			if err != nil || len(b) == 0 {
				t.Fatal(err)
			}
			return
		}
		// guest: root, device-mapper, /dev/nvme0n1 with the serial above
		dev := vmtest.GuestDisk(0)
		pass := os.Getenv("PASSPHRASE_FILE")
		if err := os.WriteFile(pass, []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("cryptsetup", "luksFormat", "--type", "luks1", "-q",
			"--pbkdf-force-iterations", "1000", "--key-file", pass, dev).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	_ = testFormat
}
