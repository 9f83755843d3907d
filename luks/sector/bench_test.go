package sector

import (
	"fmt"
	"testing"
)

var benchSpecs = []struct {
	spec string
	key  int // bytes
}{
	{"aes-xts-plain64", 32},
	{"aes-xts-plain64", 64},
	{"aes-cbc-essiv:sha256", 32},
	{"aes-cbc-plain64", 32},
	{"twofish-xts-plain64", 64},
	{"serpent-xts-plain64", 64},
	{"serpent-cbc-essiv:sha256", 32},
	{"aes-lrw-benbi", 48},
}

func benchCipher(b *testing.B, enc bool) {
	for _, bs := range benchSpecs {
		for _, size := range []int{512, 4096, 65536} {
			b.Run(fmt.Sprintf("%s-%d/%d", bs.spec, bs.key*8, size), func(b *testing.B) {
				name, mode, err := SplitSpec(bs.spec)
				if err != nil {
					b.Fatal(err)
				}
				key := make([]byte, bs.key)
				for i := range key {
					key[i] = byte(i + 1)
				}
				c, err := New(name, mode, key)
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, size)
				b.SetBytes(int64(size))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if enc {
						c.Encrypt(buf, buf, uint64(i))
					} else {
						c.Decrypt(buf, buf, uint64(i))
					}
				}
			})
		}
	}
}

func BenchmarkEncrypt(b *testing.B) { benchCipher(b, true) }
func BenchmarkDecrypt(b *testing.B) { benchCipher(b, false) }

// BenchmarkBatch compares one Encrypt of a 64 KiB run with 128 calls of one sector each:
// the difference is the per-call cost a batch pays once.
func BenchmarkBatch(b *testing.B) {
	for _, spec := range []string{"aes-xts-plain64", "aes-cbc-essiv:sha256"} {
		name, mode, err := SplitSpec(spec)
		if err != nil {
			b.Fatal(err)
		}
		c, err := New(name, mode, make([]byte, 32))
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		b.Run(spec+"/one-call", func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for i := 0; i < b.N; i++ {
				c.Decrypt(buf, buf, uint64(i))
			}
		})
		b.Run(spec+"/per-sector", func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for i := 0; i < b.N; i++ {
				for off := 0; off < len(buf); off += SectorSize {
					c.Decrypt(buf[off:off+SectorSize], buf[off:off+SectorSize], uint64(i+off/SectorSize))
				}
			}
		})
	}
}

// BenchmarkVAESCeiling is the AES-256 rounds alone, 32 blocks per step over 64 KiB with no
// tweak or IV work (vaesXEXEnc with zero tweaks): the ceiling for aes-xts at 64 KiB on this
// CPU, to compare the Encrypt and Decrypt figures with.
func BenchmarkVAESCeiling(b *testing.B) {
	if !haveVAES {
		b.Skip("no VAES")
	}
	k := expandAESKey(make([]byte, 32))
	buf := make([]byte, 64<<10)
	tw := make([]byte, len(buf))
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		vaesXEXEnc(k.rounds, &k.enc[0], &buf[0], &buf[0], &tw[0], len(buf)/16)
	}
}

// BenchmarkAESNI is aes-xts-plain64 on the AES-NI code a CPU without AVX-512 VAES runs
// (Zen 3, Skylake/Cascade Lake), with the fused assembly and with the tweaks computed in Go
// (the path before it, kept for CPUs without AVX).
func BenchmarkAESNI(b *testing.B) {
	if !haveAESNIAVX {
		b.Skip("no AES-NI with AVX")
	}
	s, err := ParseSpec("aes", "xts-plain64")
	if err != nil {
		b.Fatal(err)
	}
	for _, kl := range []int{32, 64} {
		c, err := newCipher(s, make([]byte, kl), implAESNI)
		if err != nil {
			b.Fatal(err)
		}
		for _, size := range []int{512, 4096, 65536} {
			buf := make([]byte, size)
			for _, fused := range []bool{true, false} {
				name := map[bool]string{true: "fused", false: "go-tweaks"}[fused]
				b.Run(fmt.Sprintf("%s/%d/%d", name, kl*8, size), func(b *testing.B) {
					defer func(old bool) { haveAESNIAVX = old }(haveAESNIAVX)
					haveAESNIAVX = fused
					b.SetBytes(int64(size))
					for i := 0; i < b.N; i++ {
						c.Encrypt(buf, buf, uint64(i))
					}
				})
			}
		}
	}
}

// BenchmarkSerpent is Serpent on each implementation this machine runs: the portable code,
// the AVX2 assembly (forced on an AVX-512 machine, as a Zen 2/3 or an older Intel runs it)
// and the AVX-512 one; XTS both ways, CBC decryption (its encryption is serial and portable).
func BenchmarkSerpent(b *testing.B) {
	type impl struct {
		name string
		have bool
		simd bool
		use  bool // serpentUseAVX512
	}
	for _, im := range []impl{{"portable", true, false, false}, {"AVX2", haveSerpentAVX2, true, false}, {"AVX-512", haveSerpentAVX512, true, true}} {
		for _, bs := range []struct {
			spec string
			key  int
			enc  []bool
		}{
			{"serpent-xts-plain64", 64, []bool{true, false}},
			{"serpent-cbc-essiv:sha256", 32, []bool{false}},
		} {
			for _, enc := range bs.enc {
				for _, size := range []int{512, 4096, 65536} {
					b.Run(fmt.Sprintf("%s/%s-%d/%s/%d", im.name, bs.spec, bs.key*8, map[bool]string{true: "enc", false: "dec"}[enc], size), func(b *testing.B) {
						if !im.have {
							b.Skipf("no %s", im.name)
						}
						defer func(old bool) { serpentUseAVX512 = old }(serpentUseAVX512)
						serpentUseAVX512 = im.use
						name, mode, err := SplitSpec(bs.spec)
						if err != nil {
							b.Fatal(err)
						}
						s, err := ParseSpec(name, mode)
						if err != nil {
							b.Fatal(err)
						}
						key := make([]byte, bs.key)
						for i := range key {
							key[i] = byte(i + 1)
						}
						impl := implPortable
						if im.simd {
							impl = bestImpl()
						}
						c, err := newCipher(s, key, impl)
						if err != nil {
							b.Fatal(err)
						}
						if (c.sp != nil) != im.simd {
							b.Fatalf("%s: bitsliced code %v, want %v", im.name, c.sp != nil, im.simd)
						}
						buf := make([]byte, size)
						b.SetBytes(int64(size))
						for i := 0; b.Loop(); i++ {
							if enc {
								c.Encrypt(buf, buf, uint64(i))
							} else {
								c.Decrypt(buf, buf, uint64(i))
							}
						}
					})
				}
			}
		}
	}
}

// BenchmarkTwofish is Twofish in every path this machine has — portable (twofishKey in Go,
// what runs without AVX2), avx2 and avx512 — for XTS and CBC at 512 B, 4 KiB and
// 64 KiB per call. CBC encryption is serial and always portable.
func BenchmarkTwofish(b *testing.B) {
	type path struct {
		name   string
		impl   int
		avx512 bool
	}
	paths := []path{{"portable", implPortable, false}}
	if haveTwofishAVX2 {
		paths = append(paths, path{"avx2", bestImpl(), false})
	}
	if twofishUseAVX512 {
		paths = append(paths, path{"avx512", bestImpl(), true})
	}
	defer func(old bool) { twofishUseAVX512 = old }(twofishUseAVX512)
	for _, bs := range []struct {
		spec string
		key  int
		enc  bool
	}{
		{"twofish-xts-plain64", 64, true},
		{"twofish-xts-plain64", 64, false},
		{"twofish-cbc-plain64", 32, false},
		{"twofish-cbc-essiv:sha256", 32, false},
		{"twofish-cbc-essiv:sha256", 32, true},
	} {
		dir := "dec"
		if bs.enc {
			dir = "enc"
		}
		name, mode, err := SplitSpec(bs.spec)
		if err != nil {
			b.Fatal(err)
		}
		s, err := ParseSpec(name, mode)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range paths {
			c, err := newCipher(s, make([]byte, bs.key), p.impl)
			if err != nil {
				b.Fatal(err)
			}
			// A path that silently ran the portable code would report its figures.
			if (c.tf != nil) != (p.name != "portable") {
				b.Fatalf("%s %s: SIMD schedule %v, want %v", bs.spec, p.name, c.tf != nil, p.name != "portable")
			}
			for _, size := range []int{512, 4096, 65536} {
				b.Run(fmt.Sprintf("%s-%d/%s/%s/%d", bs.spec, bs.key*8, dir, p.name, size), func(b *testing.B) {
					twofishUseAVX512 = p.avx512
					buf := make([]byte, size)
					b.SetBytes(int64(size))
					for i := 0; b.Loop(); i++ {
						if bs.enc {
							c.Encrypt(buf, buf, uint64(i))
						} else {
							c.Decrypt(buf, buf, uint64(i))
						}
					}
				})
			}
		}
	}
}
