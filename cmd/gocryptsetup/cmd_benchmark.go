package main

import (
	"crypto/pbkdf2"
	"fmt"
	"time"

	"github.com/cloudluks/cloudluks/luks/sector"
)

// defaultBenchTime is how long each measurement runs (one PBKDF2 hash, or one direction of
// one cipher). cryptsetup spends about a second per row; this keeps the whole table to a few
// seconds. --benchmark-time (milliseconds) changes it.
const defaultBenchTime = 200 * time.Millisecond

// benchCiphers are cryptsetup 2.6's rows, in its order.
var benchCiphers = []struct {
	cipher, mode string
	keyBits      int
}{
	{"aes", "cbc", 128}, {"serpent", "cbc", 128}, {"twofish", "cbc", 128},
	{"aes", "cbc", 256}, {"serpent", "cbc", 256}, {"twofish", "cbc", 256},
	{"aes", "xts", 256}, {"serpent", "xts", 256}, {"twofish", "xts", 256},
	{"aes", "xts", 512}, {"serpent", "xts", 512}, {"twofish", "xts", 512},
}

// cmdBenchmark prints cryptsetup benchmark's table, measured on this project's own PBKDF2
// and sector code (memory only, like cryptsetup). With -c it prints only that cipher's row.
func cmdBenchmark(a *app, _ []string) error {
	d := defaultBenchTime
	if a.opts.set["benchmark-time"] && a.opts.benchTime > 0 {
		d = a.opts.benchTime
	}
	fmt.Fprintln(a.stdout, "# Tests are approximate using memory only (no storage IO).")
	if a.opts.cipher != "" {
		name, mode, err := sector.SplitSpec(a.opts.cipher)
		if err != nil {
			return &cliError{code: exitParams, msg: fmt.Sprintf("Cipher %s (with %d bits key) is not available.", a.opts.cipher, a.keyBitsOr(256))}
		}
		fmt.Fprintln(a.stdout, "#     Algorithm |       Key |      Encryption |      Decryption")
		return a.benchRow(name, mode, a.keyBitsOr(256), d)
	}
	for _, h := range []string{"sha1", "sha256", "sha512", "ripemd160", "whirlpool"} {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		n, err := pbkdf2PerSecond(h, d)
		if err != nil {
			fmt.Fprintf(a.stdout, "PBKDF2-%-9s     N/A\n", h)
			continue
		}
		fmt.Fprintf(a.stdout, "PBKDF2-%-9s %7d iterations per second for %d-bit key\n", h, n, 256)
	}
	fmt.Fprintln(a.stdout, "#     Algorithm |       Key |      Encryption |      Decryption")
	for _, c := range benchCiphers {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		if err := a.benchRow(c.cipher, c.mode+"-plain64", c.keyBits, d); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) keyBitsOr(def int) int {
	if a.opts.set["key-size"] && a.opts.keySize > 0 {
		return a.opts.keySize
	}
	return def
}

// benchRow prints one "%15s  %9db  %10.1f MiB/s  %10.1f MiB/s" line (or N/A).
func (a *app) benchRow(cipherName, cipherMode string, keyBits int, d time.Duration) error {
	label := cipherName + "-" + chainOf(cipherMode)
	enc, dec, err := cipherMiBps(cipherName, cipherMode, keyBits, d)
	if err != nil {
		fmt.Fprintf(a.stdout, "%15s  %9db %17s %17s\n", label, keyBits, "N/A", "N/A")
		return nil
	}
	fmt.Fprintf(a.stdout, "%15s  %9db  %10.1f MiB/s  %10.1f MiB/s\n", label, keyBits, enc, dec)
	return nil
}

// chainOf is the block mode without the IV generator ("xts-plain64" → "xts").
func chainOf(mode string) string {
	for i := 0; i < len(mode); i++ {
		if mode[i] == '-' {
			return mode[:i]
		}
	}
	return mode
}

// pbkdf2PerSecond measures PBKDF2-HMAC-hash iterations per second for a 256-bit output, the
// way cryptsetup calibrates: grow the count until one run takes a measurable time.
func pbkdf2PerSecond(hashName string, d time.Duration) (int, error) {
	h, err := sector.NewHash(hashName)
	if err != nil {
		return 0, err
	}
	salt := make([]byte, 32)
	iters := 1000
	for {
		start := time.Now()
		if _, err := pbkdf2.Key(h, "benchmark", salt, iters, 32); err != nil {
			return 0, err
		}
		el := time.Since(start)
		if el >= d/2 || iters >= 1<<30 {
			return int(float64(iters) / el.Seconds()), nil
		}
		if el < time.Millisecond {
			iters *= 16
		} else {
			iters = int(float64(iters) * float64(d) / float64(el) * 0.6)
		}
	}
}

// cipherMiBps encrypts and then decrypts a 1 MiB buffer of 512-byte sectors repeatedly for d
// each and returns the rates.
func cipherMiBps(cipherName, cipherMode string, keyBits int, d time.Duration) (enc, dec float64, err error) {
	key := make([]byte, keyBits/8)
	c, err := sector.New(cipherName, cipherMode, key)
	if err != nil {
		return 0, 0, err
	}
	defer c.Wipe()
	buf := make([]byte, 1<<20)
	rate := func(f func(dst, src []byte, first uint64)) float64 {
		var n int
		start := time.Now()
		for time.Since(start) < d || n == 0 {
			f(buf, buf, 0)
			n++
		}
		return float64(n) / time.Since(start).Seconds()
	}
	enc = rate(c.Encrypt)
	dec = rate(c.Decrypt)
	return enc, dec, nil
}
