package luks

import (
	"context"
	"crypto/pbkdf2"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudluks/cloudluks/luks/sector"
)

// BenchmarkPBKDF2 reports PBKDF2 iterations per second per hash with a 256-bit output, the
// figure `cryptsetup benchmark --pbkdf pbkdf2` prints, for this package's cancellable
// implementation and for crypto/pbkdf2.
func BenchmarkPBKDF2(b *testing.B) {
	const iter = 1 << 16
	for _, hn := range []string{"sha1", "sha224", "sha256", "sha384", "sha512", "ripemd160", "whirlpool"} {
		nh, err := sector.NewHash(hn)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(hn, func(b *testing.B) {
			lockThread()
			defer unlockThread()
			var cpu time.Duration
			for b.Loop() {
				el, err := timePBKDF2(context.Background(), nh, iter, 32)
				if err != nil {
					b.Fatal(err)
				}
				cpu += el
			}
			b.ReportMetric(float64(iter)*float64(b.N)/b.Elapsed().Seconds(), "iter/s")
			// CPU-time rate: what cryptsetup benchmark reports (it times with getrusage).
			b.ReportMetric(float64(iter)*float64(b.N)/cpu.Seconds(), "iter/cpu-s")
		})
		b.Run(hn+"/stdlib", func(b *testing.B) {
			for b.Loop() {
				if _, err := pbkdf2.Key(nh, "foo", []byte("bar"), iter, 32); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(iter)*float64(b.N)/b.Elapsed().Seconds(), "iter/s")
		})
	}
}

// BenchmarkUnlock measures one unlock of a 512-bit aes-xts-plain64 slot with 1000
// iterations: PBKDF2, reading and decrypting 250 KiB of key material, AF merge over 4000
// stripes and the MK digest.
func BenchmarkUnlock(b *testing.B) {
	for _, spec := range []struct {
		cipher, hash string
	}{{"aes-xts-plain64", "sha256"}, {"aes-cbc-essiv:sha256", "sha1"}, {"serpent-xts-plain64", "whirlpool"}} {
		b.Run(spec.cipher+"-"+spec.hash, func(b *testing.B) {
			d, _, _ := formatted(b, FormatOptions{Cipher: spec.cipher, Hash: spec.hash})
			for b.Loop() {
				_, vk, _, err := Unlock(context.Background(), d, []byte("pass"), UnlockOptions{})
				if err != nil {
					b.Fatal(err)
				}
				vk.Wipe()
			}
		})
	}
}

// BenchmarkVolume measures 1 MiB aligned reads and writes through the userspace volume.
func BenchmarkVolume(b *testing.B) {
	d, h, vk := formatted(b, FormatOptions{})
	v, err := NewVolume(d, h, vk)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	buf := make([]byte, 1<<20)
	b.Run("write", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			if _, err := v.WriteAt(buf, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			if _, err := v.ReadAt(buf, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The whole payload, from an unaligned offset: several chunks and partial sectors.
	whole := make([]byte, v.Size()-100)
	b.Run("read-unaligned-whole", func(b *testing.B) {
		b.SetBytes(int64(len(whole)))
		for b.Loop() {
			if _, err := v.ReadAt(whole, 100); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// volumeRangeSizes are the ReadAt/WriteAt sizes BenchmarkVolumeRange measures: one that fits
// a core's L2 cache, two that fit L3, one that does not.
var volumeRangeSizes = []struct {
	name string
	n    int
}{{"256KiB", 256 << 10}, {"1MiB", 1 << 20}, {"8MiB", 8 << 20}, {"64MiB", 64 << 20}}

// BenchmarkVolumeRange measures aligned ReadAt and WriteAt of 256 KiB to 64 MiB through the
// userspace volume (aes-xts-plain64, 512-bit key, 512-byte sectors) on an in-memory device
// ("mem") and on a file in the page cache ("file"). Run it with -cpu 1,2,… for the scaling
// across cores:
//
//	go test -run '^$' -bench 'VolumeRange' -cpu 1,2 ./luks/
func BenchmarkVolumeRange(b *testing.B) {
	const payload = 64 << 20
	d := &memDev{b: make([]byte, payload+4<<20)}
	h, vk, err := Format(context.Background(), d, []byte("p"), FormatOptions{ForceIterations: 1000})
	if err != nil {
		b.Fatal(err)
	}
	// Real bytes: pages never written would all be the kernel's one zero page, always in
	// cache, and the reads would measure nothing but the cipher.
	rand.NewChaCha8([32]byte{1}).Read(d.b[h.PayloadOffsetBytes():])
	f, err := os.Create(filepath.Join(b.TempDir(), "vol"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(d.b); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, payload)
	for _, dev := range []struct {
		name string
		d    ReadWriterAt
	}{{"mem", d}, {"file", f}} {
		v, err := NewVolume(dev.d, h, vk)
		if err != nil {
			b.Fatal(err)
		}
		defer v.Close()
		for _, op := range []string{"read", "write"} {
			for _, sz := range volumeRangeSizes {
				p := buf[:sz.n]
				b.Run(op+"/"+dev.name+"/"+sz.name, func(b *testing.B) {
					b.SetBytes(int64(len(p)))
					for b.Loop() {
						var err error
						if op == "read" {
							_, err = v.ReadAt(p, 0)
						} else {
							_, err = v.WriteAt(p, 0)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkVolumeParts times the two halves of a Volume read on one goroutine, for the
// sizes of BenchmarkVolumeRange: the read from the device alone (copy from memory, pread
// from the page cache) and the decryption alone (in place, already in memory).
func BenchmarkVolumeParts(b *testing.B) {
	src := &memDev{b: make([]byte, 64<<20)}
	rand.NewChaCha8([32]byte{2}).Read(src.b)
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(src.b); err != nil {
		b.Fatal(err)
	}
	c, err := sector.New("aes", "xts-plain64", make([]byte, 64))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, len(src.b))
	for _, sz := range volumeRangeSizes {
		p := buf[:sz.n]
		run := func(name string, fn func() error) {
			b.Run(name+"/"+sz.name, func(b *testing.B) {
				b.SetBytes(int64(len(p)))
				for b.Loop() {
					if err := fn(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		run("copy", func() error { _, err := src.ReadAt(p, 0); return err })
		run("pread", func() error { _, err := f.ReadAt(p, 0); return err })
		run("decrypt", func() error { c.Decrypt(p, p, 0); return nil })
	}
}
