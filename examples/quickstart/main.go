// Command quickstart shows the cloudluks luks package end to end, rootless and offline:
//
//	go run ./examples/quickstart            # everything in a temporary directory, removed at the end
//	go run ./examples/quickstart -keep      # keep the image (path printed)
//	go run ./examples/quickstart -dir DIR   # put the image in DIR and keep it
//	echo 'my passphrase' | go run ./examples/quickstart -stdin
//
// It makes a 32 MiB sparse image file, formats it as LUKS1 (aes-xts-plain64, 512-bit key,
// sha256 — cryptsetup's defaults), prints the header exactly as `cryptsetup luksDump` would,
// unlocks it with the passphrase, writes and reads back 64 KiB of text through the userspace
// volume, shows that the bytes on disk are ciphertext, and prints the cryptsetup commands that
// open the same image.
//
// To finish in a few seconds the key slot's PBKDF2 iteration count is calibrated for 250 ms
// instead of cryptsetup's 2000 ms. Use gocryptsetup or cryptsetup luksFormat for real volumes.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/cloudluks/cloudluks/luks"
)

// demoPassphrase is used when -stdin is not given. It is a demonstration value printed on
// purpose; never use a passphrase that appears in a program's output.
const demoPassphrase = "quickstart-demo-passphrase"

// config is what the flags set; tests fill it directly.
type config struct {
	Dir        string        // where the image goes; "" = a new temporary directory
	Keep       bool          // keep the image (always true when Dir is given)
	Passphrase []byte        // nil = demoPassphrase
	ImageSize  int64         // bytes; 0 = 32 MiB
	IterTime   time.Duration // PBKDF2 calibration target; 0 = 250 ms
	ForceIter  uint32        // if set, skip calibration (tests)
}

func main() {
	var (
		cfg      config
		useStdin bool
	)
	flag.StringVar(&cfg.Dir, "dir", "", "create the image in this directory and keep it")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the image after the run")
	flag.BoolVar(&useStdin, "stdin", false, "read the passphrase from the first line of stdin instead of using the demo passphrase")
	flag.Parse()
	if useStdin {
		line, err := bufio.NewReader(os.Stdin).ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			fmt.Fprintln(os.Stderr, "quickstart: reading the passphrase:", err)
			os.Exit(1)
		}
		cfg.Passphrase = bytes.TrimSuffix(line, []byte("\n"))
		if len(cfg.Passphrase) == 0 {
			fmt.Fprintln(os.Stderr, "quickstart: -stdin given but stdin holds no passphrase")
			os.Exit(1)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Stdout, cfg)
	stop()
	clear(cfg.Passphrase)
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run is the whole demonstration, writing its narrative to w.
func run(ctx context.Context, w io.Writer, cfg config) (err error) {
	start := time.Now()
	if cfg.ImageSize == 0 {
		cfg.ImageSize = 32 << 20
	}
	if cfg.IterTime == 0 {
		cfg.IterTime = 250 * time.Millisecond
	}
	pass := cfg.Passphrase
	passLabel := "from stdin"
	if pass == nil {
		pass = []byte(demoPassphrase)
		passLabel = fmt.Sprintf("%q (a DEMO passphrase: anyone reading this output knows it)", demoPassphrase)
	}

	dir := cfg.Dir
	keep := cfg.Keep || cfg.Dir != ""
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cloudluks-quickstart-"); err != nil {
			return err
		}
	}
	img := filepath.Join(dir, "quickstart.img")
	if !keep {
		defer os.RemoveAll(dir)
	}

	step := func(n int, format string, args ...any) {
		fmt.Fprintf(w, "\n== %d. %s\n", n, fmt.Sprintf(format, args...))
	}

	step(1, "Create a %d MiB sparse image file", cfg.ImageSize>>20)
	f, err := os.OpenFile(img, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(cfg.ImageSize); err != nil {
		return err
	}
	fmt.Fprintf(w, "image: %s\n", img)

	step(2, "luksFormat (LUKS1, aes-xts-plain64, 512-bit key, sha256)")
	fo := luks.FormatOptions{Cipher: "aes-xts-plain64", KeySize: 512, Hash: "sha256", IterTime: cfg.IterTime, ForceIterations: cfg.ForceIter}
	if cfg.ForceIter != 0 {
		fo.IterTime = 0
		fmt.Fprintf(w, "PBKDF2 iterations forced to %d (test setting).\n", cfg.ForceIter)
	} else {
		fmt.Fprintf(w, "PBKDF2 calibrated for %v per unlock (cryptsetup uses 2000 ms) so this demo is quick.\n", cfg.IterTime)
	}
	fmt.Fprintf(w, "passphrase: %s\n", passLabel)
	t := time.Now()
	h, vk, err := luks.Format(ctx, f, pass, fo)
	if err != nil {
		return fmt.Errorf("format %s: %w", img, err)
	}
	vk.Wipe()
	if err := f.Sync(); err != nil {
		return err
	}
	fmt.Fprintf(w, "formatted in %v; payload starts at byte %d\n", time.Since(t).Round(time.Millisecond), h.PayloadOffsetBytes())

	step(3, "luksDump (byte-identical to `cryptsetup luksDump %s`)", img)
	if err := h.Dump(w, img); err != nil {
		return err
	}

	step(4, "Unlock with the passphrase")
	t = time.Now()
	h, vk, slot, err := luks.Unlock(ctx, f, pass, luks.UnlockOptions{})
	if err != nil {
		return fmt.Errorf("unlock %s: %w", img, err)
	}
	fmt.Fprintf(w, "key slot %d unlocked in %v (volume key: %d bits, never printed)\n", slot, time.Since(t).Round(time.Millisecond), vk.Len()*8)
	vol, err := luks.NewVolume(f, h, vk)
	vk.Wipe()
	if err != nil {
		return err
	}
	defer vol.Close()
	fmt.Fprintf(w, "userspace volume: %d bytes of payload, no root and no device-mapper needed\n", vol.Size())

	step(5, "Write a 64 KiB text file through the volume and read it back")
	plain := demoText(64 << 10)
	if _, err := vol.WriteAt(plain, 0); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	back := make([]byte, len(plain))
	if _, err := vol.ReadAt(back, 0); err != nil {
		return err
	}
	if !bytes.Equal(back, plain) {
		return errors.New("read-back through the volume differs from what was written")
	}
	fmt.Fprintf(w, "wrote and read back %d bytes: identical\n", len(plain))

	step(6, "The bytes on disk are ciphertext")
	raw, err := os.ReadFile(img)
	if err != nil {
		return err
	}
	marker := plain[:40]
	if bytes.Contains(raw, marker) {
		return errors.New("plaintext found in the image file")
	}
	fmt.Fprintf(w, "the plaintext %q does not occur anywhere in %s\n", marker, filepath.Base(img))
	off := h.PayloadOffsetBytes()
	fmt.Fprintf(w, "plaintext, payload bytes 0..63:\n%s", hexLines(plain[:64], 0))
	fmt.Fprintf(w, "on disk, image bytes %d..%d:\n%s", off, off+63, hexLines(raw[off:off+64], off))

	step(7, "Open the same image with real cryptsetup")
	fmt.Fprintf(w, "  cryptsetup luksDump %s\n", img)
	fmt.Fprintf(w, "  cryptsetup open --test-passphrase %s        # passphrase: %s\n", img, passHint(cfg))
	fmt.Fprintf(w, "  sudo cryptsetup open %s quickstart && sudo head -c 200 /dev/mapper/quickstart && sudo cryptsetup close quickstart\n", img)
	fmt.Fprintf(w, "  go run ./cmd/gocryptsetup read %s --size-bytes 200   # the same, rootless\n", img)
	if keep {
		fmt.Fprintf(w, "The image is kept in %s.\n", dir)
	} else {
		fmt.Fprintf(w, "(The image is deleted now; run with -keep or -dir DIR to keep it.)\n")
	}
	fmt.Fprintf(w, "\nDone in %v.\n", time.Since(start).Round(time.Millisecond))
	return nil
}

func passHint(cfg config) string {
	if cfg.Passphrase == nil {
		return demoPassphrase
	}
	return "the one you gave on stdin"
}

// demoText is n bytes of numbered lines, so any excerpt is recognisable.
func demoText(n int) []byte {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "cloudluks quickstart line %05d: this text is stored encrypted.\n", i)
	}
	return []byte(b.String()[:n])
}

// hexLines formats p as 16-byte hex rows labelled with their offsets.
func hexLines(p []byte, base int64) string {
	var b strings.Builder
	for i := 0; i < len(p); i += 16 {
		end := min(i+16, len(p))
		fmt.Fprintf(&b, "  %08x  %s\n", base+int64(i), hex.EncodeToString(p[i:end]))
	}
	return b.String()
}
