package luks

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudluks/cloudluks/luks/internal/jsonc"
)

const luks2TestUUID = "0e2b7c1a-5d3f-4a8e-9b6c-2f1d0a9e8c7b"

type luks2Case struct {
	name     string
	kdf      string
	hash     string
	iter     uint32
	mem, par uint32
	keyBits  int
	cipher   string
	sector   int
	meta, ks uint64
	label    string
	detached bool
}

func (c luks2Case) csArgs() []string {
	a := []string{"--type", "luks2", "-q", "--uuid", luks2TestUUID, "--pbkdf", c.kdf,
		"--pbkdf-force-iterations", fmt.Sprint(c.iter), "-s", fmt.Sprint(c.keyBits)}
	if c.kdf != KDFPBKDF2 {
		a = append(a, "--pbkdf-memory", fmt.Sprint(c.mem), "--pbkdf-parallel", fmt.Sprint(c.par))
	}
	if c.hash != "" {
		a = append(a, "--hash", c.hash)
	}
	if c.cipher != "" {
		a = append(a, "-c", c.cipher)
	}
	if c.sector != 0 {
		a = append(a, "--sector-size", fmt.Sprint(c.sector))
	}
	if c.meta != 0 {
		a = append(a, "--luks2-metadata-size", fmt.Sprint(c.meta))
	}
	if c.ks != 0 {
		a = append(a, "--luks2-keyslots-size", fmt.Sprint(c.ks))
	}
	if c.label != "" {
		a = append(a, "--label", c.label, "--subsystem", "sub-"+c.label)
	}
	return a
}

func (c luks2Case) opts(seed uint64) LUKS2FormatOptions {
	o := LUKS2FormatOptions{PBKDF: c.kdf, Hash: c.hash, ForceIterations: c.iter, KeySize: c.keyBits,
		Cipher: c.cipher, SectorSize: c.sector, MetadataSize: c.meta, KeyslotsSize: c.ks, UUID: luks2TestUUID,
		Detached: c.detached, Rand: rand.NewChaCha8([32]byte{byte(seed)})}
	if c.kdf != KDFPBKDF2 {
		o.Memory, o.Parallel = c.mem, c.par
	}
	if c.label != "" {
		o.Label, o.Subsystem = c.label, "sub-"+c.label
	}
	return o
}

var luks2Matrix = []luks2Case{
	{name: "argon2id-512-auto", kdf: KDFArgon2id, iter: 4, mem: 32, par: 1, keyBits: 512},
	{name: "argon2id-256-4096-p2", kdf: KDFArgon2id, iter: 5, mem: 64, par: 2, keyBits: 256, sector: 4096, label: "lab"},
	{name: "argon2i-512-512-64k", kdf: KDFArgon2i, iter: 4, mem: 100, par: 1, keyBits: 512, sector: 512, meta: 64 << 10, ks: 1 << 20},
	{name: "pbkdf2-sha1-256-cbc", kdf: KDFPBKDF2, hash: "sha1", iter: 1000, keyBits: 256, cipher: "aes-cbc-essiv:sha256", sector: 512},
	{name: "pbkdf2-sha256-512-4096-32k", kdf: KDFPBKDF2, hash: "sha256", iter: 1234, keyBits: 512, sector: 4096, meta: 32 << 10},
	{name: "pbkdf2-sha512-512-1m", kdf: KDFPBKDF2, hash: "sha512", iter: 1000, keyBits: 512, meta: 1 << 20, ks: 2 << 20, label: "a/b"},
	{name: "argon2id-4m-meta", kdf: KDFArgon2id, iter: 4, mem: 32, par: 1, keyBits: 512, meta: 4 << 20, ks: 4 << 20},
	{name: "detached-argon2id", kdf: KDFArgon2id, iter: 4, mem: 32, par: 1, keyBits: 512, detached: true},
	{name: "detached-pbkdf2-4096", kdf: KDFPBKDF2, iter: 1000, keyBits: 256, cipher: "aes-xts-plain64", sector: 4096, detached: true},
}

// maskDump hides what only randomness decides (salts, digests) in luksDump text.
var dumpRandom = regexp.MustCompile(`(?m)^(\t(?:Salt|Digest):\s+)((?:[0-9a-f]{2} )+\n(?:\t\s+(?:[0-9a-f]{2} )+\n)*)`)

func maskDump(s string) string { return dumpRandom.ReplaceAllString(s, "${1}<random>\n") }

// maskJSON parses a JSON area and blanks salts and digests.
func maskJSON(t *testing.T, area []byte) string {
	t.Helper()
	v, _, err := jsonc.Parse(area)
	require.NoError(t, err)
	var walk func(v *jsonc.Value)
	walk = func(v *jsonc.Value) {
		for i := range v.Members {
			if k := v.Members[i].Key; (k == "salt" || k == "digest") && v.Members[i].Value.Kind == jsonc.String {
				v.Members[i].Value = jsonc.NewString("<random>")
			}
			walk(v.Members[i].Value)
		}
		for _, it := range v.Items {
			walk(it)
		}
	}
	walk(v)
	return string(jsonc.Marshal(v))
}

// binFields returns the binary header of one copy with salt and checksum blanked.
func binFields(b []byte, off uint64) []byte {
	h := bytes.Clone(b[off : off+l2BinLen])
	clear(h[l2OffSalt : l2OffSalt+l2SaltLen])
	clear(h[l2OffCsum : l2OffCsum+64])
	return h
}

// TestFormatLUKS2MatchesCryptsetup formats the same request with cryptsetup 2.6.1 and
// FormatLUKS2 and compares: luksDump text (salts and digests masked), the JSON areas of
// both copies (salts and digests masked), the binary headers (salts and checksums
// blanked), the area before the keyslots; cryptsetup must open ours with the passphrase
// and must refuse a wrong one.
func TestFormatLUKS2MatchesCryptsetup(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	pass := []byte("correct horse\nbattery")
	for i, c := range luks2Matrix {
		t.Run(c.name, func(t *testing.T) {
			theirs := newImage(t, dir, c.name+"-cs.img", 32<<20)
			ours := newImage(t, dir, c.name+"-go.img", 32<<20)
			args := append([]string{"luksFormat"}, c.csArgs()...)
			theirHdr, ourHdr := theirs, ours
			if c.detached {
				theirHdr, ourHdr = filepath.Join(dir, c.name+"-cs.hdr"), filepath.Join(dir, c.name+"-go.hdr")
				args = append(args, "--header", theirHdr)
				require.NoError(t, os.WriteFile(ourHdr, nil, 0o600))
			}
			args = append(args, "--key-file", "-", theirs)
			mustCS(t, pass, args...)

			f := openRW(t, ourHdr)
			o := c.opts(uint64(i))
			if c.detached {
				o.Data = openRW(t, ours)
			}
			info, vk, err := FormatLUKS2(context.Background(), f, pass, o)
			require.NoError(t, err)
			defer vk.Wipe()
			require.NoError(t, f.Close())

			dumpTheirs := mustCS(t, nil, "luksDump", theirHdr)
			dumpOurs := mustCS(t, nil, "luksDump", ourHdr)
			assert.Equal(t, maskDump(dumpTheirs), maskDump(dumpOurs))
			assert.NotEqual(t, dumpTheirs, maskDump(dumpTheirs), "the mask must hide something")

			a, err := os.ReadFile(theirHdr)
			require.NoError(t, err)
			b, err := os.ReadFile(ourHdr)
			require.NoError(t, err)
			hs := binary.BigEndian.Uint64(a[l2OffHdrSize:])
			require.Equal(t, info.MetadataSize, hs)
			require.Equal(t, len(a), len(b), "header device sizes")
			for _, off := range []uint64{0, hs} {
				assert.Equal(t, binFields(a, off), binFields(b, off), "binary header at %d", off)
				assert.Equal(t, maskJSON(t, a[off+l2BinLen:off+hs]), maskJSON(t, b[off+l2BinLen:off+hs]), "JSON at %d", off)
			}
			// Zeroed gap between the metadata copies' JSON and nothing else before the keyslots.
			assert.Equal(t, a[2*hs-1], b[2*hs-1])

			var r csResult
			if c.detached {
				r = runCS(t, pass, "open", "--test-passphrase", "--key-file", "-", "--header", ourHdr, ours)
			} else {
				r = runCS(t, pass, "open", "--test-passphrase", "--key-file", "-", ours)
			}
			assert.Equal(t, 0, r.code, "cryptsetup open --test-passphrase of ours: %s", r.stderr)
			if c.detached {
				r = runCS(t, []byte("wrong"), "open", "--test-passphrase", "--key-file", "-", "--header", ourHdr, ours)
			} else {
				r = runCS(t, []byte("wrong"), "open", "--test-passphrase", "--key-file", "-", ours)
			}
			assert.Equal(t, 2, r.code, "wrong passphrase: %s", r.stderr)
			// The volume key cryptsetup recovers is ours.
			kf := writeKeyFile(t, dir, c.name+".pass", pass)
			hdrOpt := []string{}
			if c.detached {
				hdrOpt = []string{"--header", ourHdr}
			}
			out := mustCS(t, nil, append(append([]string{"luksDump", "--dump-volume-key", "-q", "--key-file", kf}, hdrOpt...), ours)...)
			assert.Contains(t, strings.Join(strings.Fields(out), ""), fmt.Sprintf("MKdump:%x", vk.Bytes()))
		})
	}
}

// TestFormatLUKS2Pinned: with the randomness pinned the whole image is a function of the
// options (what a test or a reproducible build relies on), and the UUID, volume key and
// salts all come from Rand.
func TestFormatLUKS2Pinned(t *testing.T) {
	dir := t.TempDir()
	c := luks2Matrix[0]
	var sums [3][32]byte
	for i, seed := range []uint64{7, 7, 8} {
		p := newImage(t, dir, fmt.Sprint("pin", i), 20<<20)
		f := openRW(t, p)
		o := c.opts(seed)
		o.UUID = ""
		_, vk, err := FormatLUKS2(context.Background(), f, []byte("pw"), o)
		require.NoError(t, err)
		vk.Wipe()
		require.NoError(t, f.Close())
		sums[i] = fileHash(t, p)
	}
	assert.Equal(t, sums[0], sums[1])
	assert.NotEqual(t, sums[0], sums[2])
}

// TestFormatLUKS2Refusals: each bad request is refused before anything is written, with
// the message cryptsetup 2.6.1 prints for the same luksFormat options.
func TestFormatLUKS2Refusals(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	cases := []struct {
		args []string
		o    LUKS2FormatOptions
	}{
		{[]string{"--luks2-metadata-size", "20000"}, LUKS2FormatOptions{MetadataSize: 20000}},
		{[]string{"--luks2-keyslots-size", "5000"}, LUKS2FormatOptions{KeyslotsSize: 5000}},
		{[]string{"--luks2-keyslots-size", "256m"}, LUKS2FormatOptions{KeyslotsSize: 256 << 20}},
		{[]string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "999"}, LUKS2FormatOptions{PBKDF: KDFPBKDF2, ForceIterations: 999}},
		{[]string{"--pbkdf", "argon2id", "--pbkdf-force-iterations", "3"}, LUKS2FormatOptions{PBKDF: KDFArgon2id, ForceIterations: 3}},
		{[]string{"--pbkdf", "argon2i", "--pbkdf-force-iterations", "4", "--pbkdf-memory", "31"}, LUKS2FormatOptions{PBKDF: KDFArgon2i, ForceIterations: 4, Memory: 31}},
		{[]string{"--pbkdf-memory", "4194305"}, LUKS2FormatOptions{Memory: 4194305}},
		{[]string{"--sector-size", "1000"}, LUKS2FormatOptions{SectorSize: 1000}},
		{[]string{"--sector-size", "8192"}, LUKS2FormatOptions{SectorSize: 8192}},
		{[]string{"--uuid", "nope"}, LUKS2FormatOptions{UUID: "nope"}},
		{[]string{"--offset", "10"}, LUKS2FormatOptions{Offset: 10}},
		{[]string{"--offset", "16"}, LUKS2FormatOptions{Offset: 16}},
		{[]string{"--key-slot", "32"}, LUKS2FormatOptions{Keyslot: Slot(32)}},
	}
	for _, c := range cases {
		img := newImage(t, dir, "r.img", 32<<20)
		r := runCS(t, []byte("x"), append(append([]string{"luksFormat", "--type", "luks2", "-q", "--key-file", "-"}, c.args...), img)...)
		require.NotEqual(t, 0, r.code, "cryptsetup accepted %v", c.args)
		msg := strings.Split(strings.TrimSpace(r.stderr), "\n")
		last := msg[len(msg)-1]
		if i := strings.Index(last, "cryptsetup: "); i >= 0 && strings.HasPrefix(msg[0], "Usage:") {
			last = last[i+len("cryptsetup: "):]
		} else {
			last = msg[0]
		}
		f := openRW(t, img)
		before := fileHash(t, img)
		_, _, err := FormatLUKS2(context.Background(), f, []byte("x"), c.o)
		require.Error(t, err, "%v", c.args)
		assert.Contains(t, err.Error(), last, "%v", c.args)
		assert.Equal(t, before, fileHash(t, img), "%v: nothing written", c.args)
		require.NoError(t, f.Close())
	}
	// Accepted although odd, as cryptsetup accepts them: a 48-byte label is cut to 47, and
	// pbkdf2 ignores argon2's memory and threads.
	img := newImage(t, dir, "ok.img", 32<<20)
	f := openRW(t, img)
	long := strings.Repeat("L", 48)
	_, vk, err := FormatLUKS2(context.Background(), f, []byte("x"), LUKS2FormatOptions{PBKDF: KDFPBKDF2,
		ForceIterations: 1000, Memory: 1000, Parallel: 2, Label: long, Subsystem: long})
	require.NoError(t, err)
	vk.Wipe()
	out := mustCS(t, nil, "luksDump", img)
	assert.Contains(t, out, "Label:         \t"+long[:47]+"\n")
	assert.Contains(t, out, "Subsystem:     \t"+long[:47]+"\n")
}

// TestFormatLUKS2Calibrated runs the argon2id and PBKDF2 benchmarks (a short target, a
// small memory cap) and checks the costs stay inside cryptsetup's limits (the timing
// itself is too noisy on a shared machine to assert) and cryptsetup opens the result.
func TestFormatLUKS2Calibrated(t *testing.T) {
	cryptsetupBin(t)
	if testing.Short() {
		t.Skip("benchmarks argon2 (-short)")
	}
	dir := t.TempDir()
	pass := []byte("calibrated")
	for _, kdf := range []string{KDFArgon2id, KDFPBKDF2} {
		img := newImage(t, dir, kdf+".img", 32<<20)
		f := openRW(t, img)
		o := LUKS2FormatOptions{PBKDF: kdf, IterTime: 300 * time.Millisecond}
		if kdf != KDFPBKDF2 {
			o.Memory = 16 << 10
		}
		info, vk, err := FormatLUKS2(context.Background(), f, pass, o)
		require.NoError(t, err)
		vk.Wipe()
		require.NoError(t, f.Close())
		if kdf != KDFPBKDF2 {
			assert.LessOrEqual(t, info.Memory, uint32(16<<10), "memory stays under the cap")
			assert.GreaterOrEqual(t, info.Memory, uint32(argon2MinMemory))
			assert.GreaterOrEqual(t, info.Iterations, uint32(argon2MinIterations))
			assert.LessOrEqual(t, info.Parallel, uint32(argon2MaxThreads))
		} else {
			assert.GreaterOrEqual(t, info.Iterations, uint32(pbkdf2MinIterations))
		}
		start := time.Now()
		r := runCS(t, pass, "open", "--test-passphrase", "--key-file", "-", img)
		el := time.Since(start)
		assert.Equal(t, 0, r.code, r.stderr)
		t.Logf("%s: %+v; cryptsetup unlock %v", kdf, *info, el)
	}
}

// TestLUKS2FormatWriteOrder: after the first header write (before the key slot) the image
// is already a valid LUKS2 header with no key slot, so a crash there leaves a header
// cryptsetup reads, as a crash in cryptsetup's luksFormat does.
func TestLUKS2FormatWriteOrder(t *testing.T) {
	cryptsetupBin(t)
	dir := t.TempDir()
	img := newImage(t, dir, "crash.img", 32<<20)
	f := openRW(t, img)
	w := &crashAfter{f: f, left: -1}
	// Count the writes of a full format, then replay with a crash after each header copy.
	_, vk, err := FormatLUKS2(context.Background(), w, []byte("x"), luks2Matrix[0].opts(1))
	require.NoError(t, err)
	vk.Wipe()
	total := w.n
	for cut := 1; cut < total; cut++ {
		img := newImage(t, dir, fmt.Sprint("crash", cut), 32<<20)
		f := openRW(t, img)
		w := &crashAfter{f: f, left: cut}
		_, _, err := FormatLUKS2(context.Background(), w, []byte("x"), luks2Matrix[0].opts(1))
		require.Error(t, err)
		r := runCS(t, nil, "luksDump", img)
		// Once the first header copy is complete, every later crash leaves a readable header.
		if w.headerDone {
			assert.Equal(t, 0, r.code, "crash after write %d: %s", cut, r.stderr)
		}
	}
}

// crashAfter fails every write after the first left ones (left < 0: never) and records
// whether a complete checksummed primary header was written.
type crashAfter struct {
	f          *os.File
	n, left    int
	headerDone bool
}

func (c *crashAfter) ReadAt(p []byte, off int64) (int, error) { return c.f.ReadAt(p, off) }
func (c *crashAfter) WriteAt(p []byte, off int64) (int, error) {
	if c.left >= 0 && c.n >= c.left {
		return 0, fmt.Errorf("simulated crash")
	}
	c.n++
	if off == 0 && len(p) == l2BinLen && !bytes.Equal(p[l2OffCsum:l2OffCsum+32], make([]byte, 32)) {
		c.headerDone = true
	}
	return c.f.WriteAt(p, off)
}
