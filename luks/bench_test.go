package luks

import (
	"context"
	"crypto/pbkdf2"
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
