package luks

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkUnlock2Argon2idDefault unlocks an image cryptsetup 2.6.1 formatted with its
// default cost (argon2id calibrated to 2 s, memory up to 1 GiB, 4 threads on this machine)
// and reports, beside Go's time per unlock, what `cryptsetup open --test-passphrase` takes
// on the same image (cryptsetup-ns/op), measured in the same loop.
func BenchmarkUnlock2Argon2idDefault(b *testing.B) {
	cryptsetupBin(b)
	dir := b.TempDir()
	img := newImage(b, dir, "default.img", 24<<20)
	mustCS(b, []byte("pass0"), "luksFormat", "--type", "luks2", "-q", img, "-")
	h, err := ReadHeader2(mustOpen(b, img))
	if err != nil {
		b.Fatal(err)
	}
	ks := h.Keyslots[0].KDF
	b.Logf("keyslot 0: %s time %d memory %d KiB cpus %d", ks.Type, ks.Time, ks.Memory, ks.CPUs)
	f := mustOpen(b, img)
	var cs time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, vk, _, err := Unlock2(context.Background(), f, []byte("pass0"), UnlockOptions{})
		if err != nil {
			b.Fatal(err)
		}
		vk.Wipe()
		b.StopTimer()
		start := time.Now()
		cmd := exec.Command(cryptsetupBin(b), "open", "--test-passphrase", "--key-file", "-", img)
		cmd.Stdin = bytes.NewReader([]byte("pass0"))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("cryptsetup: %v %s", err, out)
		}
		cs += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(cs.Nanoseconds())/float64(b.N), "cryptsetup-ns/op")
}

func mustOpen(b *testing.B, p string) *os.File {
	f, err := os.Open(filepath.Clean(p))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}
